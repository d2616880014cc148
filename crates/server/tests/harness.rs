//! `TestApp`: a fresh database per test (a SQLite file, or a PostgreSQL schema when
//! `TEST_POSTGRES_URL` is set), the real router, requests in process.

use std::path::PathBuf;

use axum::{
    body::Body,
    http::{HeaderMap, Method, Request, StatusCode},
};
use chrono::{DateTime, Utc};
use gatehouse_server::{app::AppState, config::ServerConfig, router};
use gatehouse_store::Db;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

pub const ACCESS_URL: &str = "http://gatehouse.test";
pub const OWNER_EMAIL: &str = "owner@example.com";
pub const OWNER_PASSWORD: &str = "SomeSecurePassword!";

// The server's tests run their scenarios on a whole app per backend
// (`crate::on_both_backends!`, from the shared test-support crate).
gatehouse_test_support::backends!(TestApp);

pub struct TestApp {
    pub state: AppState,
    pub router: router::App,
    pub sqlite_path: Option<PathBuf>,
    /// (url, schema) of a PostgreSQL test app.
    pub postgres: Option<(String, String)>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(path) = &self.sqlite_path {
            gatehouse_test_support::remove_sqlite_files(path);
        }
    }
}

pub fn config() -> ServerConfig {
    ServerConfig::for_tests()
}

impl TestApp {
    pub async fn sqlite() -> TestApp {
        TestApp::sqlite_with(config()).await
    }

    pub async fn sqlite_with(config: ServerConfig) -> TestApp {
        TestApp::sqlite_busy(config, std::time::Duration::from_secs(5)).await
    }

    /// A SQLite app that gives up on a lock held elsewhere after `busy_timeout`.
    pub async fn sqlite_busy(config: ServerConfig, busy_timeout: std::time::Duration) -> TestApp {
        let path =
            std::env::temp_dir().join(format!("gatehouse-test-{}.db", Uuid::new_v4().simple()));
        let db = Db::sqlite_with_busy_timeout(&path, busy_timeout)
            .await
            .expect("open sqlite");
        let mut app = TestApp::with_db(db, config).await;
        app.sqlite_path = Some(path);
        app
    }

    /// `None` (and a note on stderr) when `TEST_POSTGRES_URL` is not set (outside CI:
    /// [`gatehouse_test_support::postgres_url`]).
    pub async fn postgres() -> Option<TestApp> {
        TestApp::postgres_with(config()).await
    }

    pub async fn postgres_with(config: ServerConfig) -> Option<TestApp> {
        let url = gatehouse_test_support::postgres_url()?;
        Some(TestApp::postgres_at(&url, config).await)
    }

    /// An app on the PostgreSQL server at `url`, in a fresh schema of its own.
    pub async fn postgres_at(url: &str, config: ServerConfig) -> TestApp {
        let url = url.to_owned();
        let schema = gatehouse_test_support::fresh_schema(&url, "gh_test").await;
        let db = Db::postgres(&url, Some(&schema))
            .await
            .expect("connect to test schema");
        let mut app = TestApp::with_db(db, config).await;
        app.postgres = Some((url, schema));
        app.wait_for_auth_cache().await;
        app
    }

    /// A second Gatehouse replica on this app's PostgreSQL schema: its own pools, cache
    /// and listener, sharing only the database. `None` on SQLite.
    pub async fn replica(&self) -> Option<TestApp> {
        self.replica_with(config()).await
    }

    /// As [`TestApp::replica`], configured with `config`.
    pub async fn replica_with(&self, config: ServerConfig) -> Option<TestApp> {
        let (url, schema) = self.postgres.as_ref()?;
        let db = Db::postgres(url, Some(schema))
            .await
            .expect("connect the replica");
        let mut replica = TestApp::with_db(db, config).await;
        replica.postgres = Some((url.clone(), schema.clone()));
        replica.wait_for_auth_cache().await;
        Some(replica)
    }

    /// On PostgreSQL the authentication cache goes live once its listener has
    /// subscribed; tests start from that state so query counts do not depend on timing.
    pub async fn wait_for_auth_cache(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.state.store.auth_cache().is_enabled() {
            assert!(
                std::time::Instant::now() < deadline,
                "the auth cache listener did not subscribe"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    async fn with_db(db: Db, config: ServerConfig) -> TestApp {
        let access_url = config.access_url.as_ref().map_or_else(
            || ACCESS_URL.to_owned(),
            |u| gatehouse_server::app::normalise_access_url(u.as_str()),
        );
        let state = AppState::start(db, config, access_url)
            .await
            .expect("start app");
        let router = router::build(state.clone());
        TestApp {
            state,
            router,
            sqlite_path: None,
            postgres: None,
        }
    }

    /// Serves the app on a loopback port through the real connection loop (TCP, or TLS
    /// when `limits` carry an acceptor), until the test ends.
    pub async fn serve_tcp(
        &self,
        limits: gatehouse_server::serve::ConnectionLimits,
    ) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(gatehouse_server::serve::serve_connections(
            listener,
            self.router.clone(),
            self.state.shutdown.clone(),
            limits,
            std::time::Duration::from_secs(1),
            std::future::pending(),
        ));
        address
    }

    pub fn get(&self, path: &str) -> Req<'_> {
        self.req(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Req<'_> {
        self.req(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> Req<'_> {
        self.req(Method::PUT, path)
    }

    pub fn delete(&self, path: &str) -> Req<'_> {
        self.req(Method::DELETE, path)
    }

    pub fn req(&self, method: Method, path: &str) -> Req<'_> {
        Req {
            app: self,
            builder: Request::builder().method(method).uri(path),
            body: Body::empty(),
        }
    }

    /// Creates the first user through the API and logs in; returns (user id, session token).
    pub async fn first_user(&self) -> (Uuid, String) {
        let res = self
            .post("/api/v2/users/first")
            .json(&json!({"email": OWNER_EMAIL, "username": "owner", "password": OWNER_PASSWORD}))
            .send()
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        let id: Uuid = res.json()["user_id"].as_str().unwrap().parse().unwrap();
        let token = self.login(OWNER_EMAIL, OWNER_PASSWORD).await;
        (id, token)
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let res = self
            .post("/api/v2/users/login")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        res.json()["session_token"].as_str().unwrap().to_owned()
    }

    /// Creates an active user with the given site roles (as the owner) and logs in.
    pub async fn user_with_roles(
        &self,
        owner_token: &str,
        username: &str,
        roles: &[&str],
    ) -> (Uuid, String) {
        let email = format!("{username}@example.com");
        let res = self
            .post("/api/v2/users")
            .token(owner_token)
            .json(&json!({
                "email": email,
                "username": username,
                "password": OWNER_PASSWORD,
                "organization_ids": [self.state.default_org.id],
                "roles": roles,
                "user_status": "active",
            }))
            .send()
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        let id: Uuid = res.json()["id"].as_str().unwrap().parse().unwrap();
        (id, self.login(&email, OWNER_PASSWORD).await)
    }

    /// Creates a token for `user` with a raw request body.
    pub async fn token(&self, token: &str, body: Value) -> String {
        let res = self
            .post("/api/v2/users/me/keys/tokens")
            .token(token)
            .json(&body)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        res.json()["key"].as_str().unwrap().to_owned()
    }

    /// Sets a key's `last_used` and `expires_at` directly, to stage time-dependent cases.
    pub async fn set_key_times(
        &self,
        key_id: &str,
        last_used: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) {
        const SQL: &str = "UPDATE api_keys SET last_used = $2, expires_at = $3 WHERE id = $1";
        let done = match self.state.store.db() {
            Db::Sqlite { write, .. } => sqlx::query(SQL)
                .bind(key_id)
                .bind(last_used)
                .bind(expires_at)
                .execute(write)
                .await
                .map(|r| r.rows_affected()),
            Db::Postgres(pool) => sqlx::query(SQL)
                .bind(key_id)
                .bind(last_used)
                .bind(expires_at)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        };
        assert_eq!(done.unwrap(), 1);
        // A change behind the store's back: drop what the cache built from the old row.
        self.state.store.auth_cache().invalidate_all();
    }

    /// Runs a statement that binds one timestamp (`$1`), to stage time-dependent cases.
    pub async fn exec_at(&self, sql: &'static str, at: DateTime<Utc>) -> u64 {
        let done = match self.state.store.db() {
            Db::Sqlite { write, .. } => sqlx::query(sql)
                .bind(at)
                .execute(write)
                .await
                .map(|r| r.rows_affected()),
            Db::Postgres(pool) => sqlx::query(sql)
                .bind(at)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        }
        .unwrap();
        self.state.store.auth_cache().invalidate_all();
        done
    }

    /// One text value straight from the database.
    pub async fn text_value(&self, sql: &'static str) -> String {
        match self.state.store.db() {
            Db::Sqlite { read, .. } => sqlx::query_scalar(sql).fetch_one(read).await,
            Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .unwrap()
    }

    /// A `SELECT COUNT(*) …` straight from the database.
    pub async fn count(&self, sql: &'static str) -> i64 {
        match self.state.store.db() {
            Db::Sqlite { read, .. } => sqlx::query_scalar(sql).fetch_one(read).await,
            Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .unwrap()
    }

    /// Reads a key's stored row through the API as its owner.
    pub async fn key_row(&self, token: &str) -> Value {
        let id = token.split('-').next().unwrap();
        let res = self
            .get(&format!("/api/v2/users/me/keys/{id}"))
            .token(token)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        res.json()
    }
}

pub struct Req<'a> {
    app: &'a TestApp,
    builder: axum::http::request::Builder,
    body: Body,
}

impl Req<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// Sends the request as if it arrived over TCP from `peer` (`ip:port`).
    pub fn peer(mut self, peer: &str) -> Self {
        let addr: std::net::SocketAddr = peer.parse().unwrap();
        self.builder = self.builder.extension(axum::extract::ConnectInfo(addr));
        self
    }

    /// Authenticates with the `Coder-Session-Token` header.
    pub fn token(self, token: &str) -> Self {
        self.header("Coder-Session-Token", token)
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.builder = self.builder.header("content-type", "application/json");
        self.body = Body::from(serde_json::to_vec(body).unwrap());
        self
    }

    pub fn body_with_type(mut self, content_type: &str, body: &str) -> Self {
        self.builder = self.builder.header("content-type", content_type);
        self.body = Body::from(body.to_owned());
        self
    }

    /// A body with no `Content-Type` at all.
    pub fn raw_body_untyped(mut self, body: &str) -> Self {
        self.body = Body::from(body.to_owned());
        self
    }

    pub fn raw_body(mut self, body: &str) -> Self {
        self.builder = self.builder.header("content-type", "application/json");
        self.body = Body::from(body.to_owned());
        self
    }

    pub async fn send(self) -> TestResponse {
        let req = self.builder.body(self.body).unwrap();
        let res = self.app.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        TestResponse {
            status,
            headers,
            body,
        }
    }
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    /// Every `Set-Cookie` header, whole.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The cookies set, as a browser would send them back (`a=1; b=2`).
    pub fn cookie_pairs(&self) -> String {
        self.set_cookies()
            .iter()
            .map(|c| c.split(';').next().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}
