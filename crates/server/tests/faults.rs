//! Faults (issue #9): the database goes away under load and comes back; many writers race
//! on SQLite. Clients see 503s while the database is gone (never a 500, never a 401 that
//! would sign them out), the server recovers by itself, and nothing is half-written.

use std::{
    path::PathBuf,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use gatehouse_server::config::ServerConfig;
use serde_json::json;
use tokio::sync::Mutex;

use crate::{
    harness::{TestApp, config},
    on_both_backends,
};

on_both_backends!(a_job_silent_for_five_minutes_is_ended_as_hung);

/// The load is the point here, not the limits.
fn unlimited() -> ServerConfig {
    let mut config = config();
    config.dangerous_disable_rate_limits = true;
    config
}

/// A PostgreSQL cluster of this test's own (the machine's binaries, run as the `postgres`
/// user), so it can be stopped without disturbing the tests that share the main server.
struct PrivateCluster {
    dir: PathBuf,
    port: u16,
}

fn pg_bin(name: &str) -> PathBuf {
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL binaries under /usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = versions.filter_map(|e| e.ok().map(|e| e.path())).collect();
    versions.sort();
    versions
        .pop()
        .expect("a PostgreSQL version")
        .join("bin")
        .join(name)
}

fn as_postgres(args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .expect("runuser");
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivateCluster {
    fn start() -> PrivateCluster {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dir =
            std::env::temp_dir().join(format!("gatehouse-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        as_postgres(&["true"]);
        Command::new("chown")
            .arg("postgres")
            .arg(&dir)
            .status()
            .unwrap();
        let data = dir.join("data");
        as_postgres(&[
            pg_bin("initdb").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
        ]);
        let cluster = PrivateCluster { dir, port };
        cluster.up();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        as_postgres(&[
            pg_bin("pg_ctl").to_str().unwrap(),
            "-D",
            self.data().to_str().unwrap(),
            "-o",
            &options,
            "-l",
            self.dir.join("log").to_str().unwrap(),
            "-w",
            "start",
        ]);
    }

    /// Stops the way a crash does: no shutdown checkpoint, connections cut.
    fn crash(&self) {
        as_postgres(&[
            pg_bin("pg_ctl").to_str().unwrap(),
            "-D",
            self.data().to_str().unwrap(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]);
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("pg_ctl"))
            .args([
                "-D",
                self.data().to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the load saw: each answer's status, and the tokens answered 201.
#[derive(Default)]
struct Seen {
    statuses: Vec<StatusCode>,
    created: Vec<String>,
    bad: Vec<String>,
}

/// Creates tokens and lists them, over and over, until `until`.
async fn load(
    app: Arc<TestApp>,
    owner: String,
    seen: Arc<Mutex<Seen>>,
    until: Instant,
    worker: usize,
) {
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        let res = app
            .post("/api/v2/users/me/keys/tokens")
            .token(&owner)
            .json(&json!({"token_name": format!("w{worker}-{n}")}))
            .send()
            .await;
        let mut record = seen.lock().await;
        record.statuses.push(res.status);
        match res.status {
            StatusCode::CREATED => record
                .created
                .push(res.json()["key"].as_str().unwrap().to_owned()),
            StatusCode::SERVICE_UNAVAILABLE => {
                if res.json()["message"]
                    != "The database is temporarily unavailable. Please try again."
                {
                    record.bad.push(res.text());
                }
            }
            other => record.bad.push(format!("{other}: {}", res.text())),
        }
        drop(record);
        let res = app
            .get("/api/v2/users/me/keys/tokens")
            .token(&owner)
            .send()
            .await;
        if !matches!(res.status, StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE) {
            seen.lock()
                .await
                .bad
                .push(format!("list {}: {}", res.status, res.text()));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and the machine's PostgreSQL binaries (scripts/test.sh runs it)"]
async fn postgres_stopped_and_restarted_under_load() {
    let cluster = PrivateCluster::start();
    let app = Arc::new(TestApp::postgres_at(&cluster.url(), unlimited()).await);
    let (_, owner) = app.first_user().await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let until = Instant::now() + Duration::from_secs(11);
    let workers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(load(app.clone(), owner.clone(), seen.clone(), until, w)))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_crash = seen.lock().await.created.len();
    cluster.crash();
    // Longer than the pool's 5 s acquire timeout, so requests give up with a 503 rather
    // than wait the outage out.
    tokio::time::sleep(Duration::from_millis(6500)).await;
    let during_outage = seen.lock().await.statuses.len();
    cluster.up();
    for w in workers {
        w.await.unwrap();
    }
    let seen = seen.lock().await;
    assert!(
        seen.bad.is_empty(),
        "answers other than 201/200/503: {:#?}",
        seen.bad
    );
    let unavailable = seen
        .statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(before_crash > 0, "no token was created before the crash");
    assert!(
        unavailable > 0,
        "the outage was never seen ({during_outage} answers)"
    );
    // It came back by itself: tokens were created after the restart.
    let last = seen.statuses.last().copied();
    assert_eq!(
        last,
        Some(StatusCode::CREATED),
        "not recovered: {:?}",
        &seen.statuses[seen.statuses.len().saturating_sub(10)..]
    );
    assert!(seen.created.len() > before_crash);

    // Nothing half-written: every token answered 201 works. A commit whose acknowledgement
    // died with the database leaves a whole row behind a 503 (the client cannot tell);
    // there can be no more of those than there were 503s.
    for token in &seen.created {
        let res = app.get("/api/v2/users/me").token(token).send().await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    }
    let listed = app
        .get("/api/v2/users/me/keys/tokens")
        .token(&owner)
        .send()
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    let rows = listed.json().as_array().unwrap().len();
    assert!(
        rows >= seen.created.len(),
        "{rows} rows, {} answered 201",
        seen.created.len()
    );
    assert!(
        rows - seen.created.len() <= unavailable,
        "{rows} rows for {} answers",
        seen.statuses.len()
    );
    eprintln!(
        "postgres outage: {} answers, {} tokens created, {} answered 503",
        seen.statuses.len(),
        seen.created.len(),
        unavailable
    );
}

/// Many concurrent writers on SQLite: every write waits its turn; `database is locked`
/// never reaches a client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_writers_all_succeed() {
    let app = Arc::new(TestApp::sqlite_with(unlimited()).await);
    let (_, owner) = app.first_user().await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let app = app.clone();
            let owner = owner.clone();
            tokio::spawn(async move {
                let created = app
                    .post("/api/v2/users/me/keys/tokens")
                    .token(&owner)
                    .json(&json!({"token_name": format!("t{i}")}))
                    .send()
                    .await;
                let login = app
                    .post("/api/v2/users/login")
                    .json(&json!({"email": crate::harness::OWNER_EMAIL, "password": crate::harness::OWNER_PASSWORD}))
                    .send()
                    .await;
                (created.status, created.text(), login.status, login.text())
            })
        })
        .collect();
    for task in tasks {
        let (created, created_body, login, login_body) = task.await.unwrap();
        assert_eq!(created, StatusCode::CREATED, "{created_body}");
        assert_eq!(login, StatusCode::CREATED, "{login_body}");
    }
    let listed = app
        .get("/api/v2/users/me/keys/tokens")
        .token(&owner)
        .send()
        .await;
    assert_eq!(listed.json().as_array().unwrap().len(), 64);
}

/// The real binary on SQLite, on a port of its own.
struct Binary {
    child: std::process::Child,
    base: String,
}

impl Binary {
    async fn start(data_dir: &std::path::Path) -> Binary {
        Binary::launch(data_dir, 0, None).await
    }

    async fn start_with(data_dir: &std::path::Path, daemons: u32) -> Binary {
        Binary::launch(data_dir, daemons, None).await
    }

    /// The binary on SQLite in `data_dir`, or on the PostgreSQL database at `postgres`.
    async fn launch(data_dir: &std::path::Path, daemons: u32, postgres: Option<&str>) -> Binary {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["server", "--http-address", &format!("127.0.0.1:{port}")])
            .args(["--access-url", &base, "--dangerous-disable-rate-limits"])
            .args(["--provisioner-daemons", &daemons.to_string(), "--data-dir"])
            .arg(data_dir)
            .args(
                postgres
                    .map(|url| ["--postgres-url", url])
                    .into_iter()
                    .flatten(),
            )
            .env_remove("CODER_PG_CONNECTION_URL")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Dropped (killed and reaped) if it never answers.
        let server = Binary { child, base };
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if http
                .get(format!("{}/healthz", server.base))
                .send()
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the server did not start");
    }

    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
    }

    fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < within, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn owner_session(http: &reqwest::Client, base: &str) -> String {
    let first = http
        .post(format!("{base}/api/v2/users/first"))
        .json(&json!({"email": crate::harness::OWNER_EMAIL, "username": "owner", "password": crate::harness::OWNER_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(first.status().is_success() || first.status() == StatusCode::CONFLICT);
    let login: serde_json::Value = http
        .post(format!("{base}/api/v2/users/login"))
        .json(&json!({"email": crate::harness::OWNER_EMAIL, "password": crate::harness::OWNER_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["session_token"].as_str().unwrap().to_owned()
}

/// `kill -9` while tokens are being issued: after a restart, every token whose 201
/// reached its client works, and SQLite passes its integrity check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_token_issuance_loses_no_answered_token_sqlite() {
    kill_9_during_token_issuance(None).await;
}

/// The same on PostgreSQL, in a database of the test's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_token_issuance_loses_no_answered_token_postgres() {
    let Some(admin_url) = gatehouse_test_support::postgres_url() else {
        return;
    };
    let name = format!("gh_kill_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let base_url = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    kill_9_during_token_issuance(Some(format!("{base_url}/{name}"))).await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await;
}

async fn kill_9_during_token_issuance(postgres: Option<String>) {
    let dir =
        std::env::temp_dir().join(format!("gatehouse-kill-{}", uuid::Uuid::new_v4().simple()));
    let mut server = Binary::launch(&dir, 0, postgres.as_deref()).await;
    let http = reqwest::Client::new();
    let owner = owner_session(&http, &server.base).await;
    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (http, base, owner, answered) = (
                http.clone(),
                server.base.clone(),
                owner.clone(),
                answered.clone(),
            );
            tokio::spawn(async move {
                for n in 0.. {
                    let res = http
                        .post(format!("{base}/api/v2/users/me/keys/tokens"))
                        .header("Coder-Session-Token", &owner)
                        .json(&json!({"token_name": format!("w{w}-{n}")}))
                        .send()
                        .await;
                    // The connection dies with the server: the loop ends.
                    let Ok(res) = res else { break };
                    if res.status() != StatusCode::CREATED {
                        break;
                    }
                    let Ok(body) = res.json::<serde_json::Value>().await else {
                        break;
                    };
                    answered
                        .lock()
                        .await
                        .push(body["key"].as_str().unwrap().to_owned());
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.signal("KILL");
    server.wait(Duration::from_secs(5));
    for w in workers {
        w.await.unwrap();
    }
    let answered = answered.lock().await.clone();
    assert!(answered.len() > 10, "too little load: {}", answered.len());

    let server = Binary::launch(&dir, 0, postgres.as_deref()).await;
    assert_tokens_work(&http, &server.base, &answered).await;
    let listed: serde_json::Value = http
        .get(format!("{}/api/v2/users/me/keys/tokens", server.base))
        .header("Coder-Session-Token", &owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Rows committed whose answer never left are allowed; missing rows are not.
    assert!(listed.as_array().unwrap().len() >= answered.len());
    drop(server);
    if postgres.is_none() {
        assert_sqlite_intact(&dir.join("gatehouse.db"));
    }
    eprintln!(
        "kill -9 ({}): {} tokens answered 201, all present after restart",
        if postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        answered.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM with a request in flight: the request finishes, then the server exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let dir =
        std::env::temp_dir().join(format!("gatehouse-term-{}", uuid::Uuid::new_v4().simple()));
    let mut server = Binary::start(&dir).await;
    let http = reqwest::Client::new();
    let owner = owner_session(&http, &server.base).await;
    // A CPU profile takes as long as it is asked to: a request that is surely in flight.
    let slow = {
        let (http, base, owner) = (http.clone(), server.base.clone(), owner.clone());
        tokio::spawn(async move {
            http.get(format!("{base}/api/v2/debug/pprof/profile?seconds=2"))
                .header("Coder-Session-Token", &owner)
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.signal("TERM");
    let res = slow
        .await
        .unwrap()
        .expect("the in-flight request was cut off");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.bytes().await.unwrap().is_empty());
    let status = server.wait(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut req = http
        .request(method, url)
        .header("Coder-Session-Token", token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or_default())
}

/// Polls `url` until its JSON satisfies `done`; returns that JSON.
async fn poll_until(
    http: &reqwest::Client,
    url: String,
    token: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..400 {
        let (_, value) = send(http, reqwest::Method::GET, url.clone(), token, None).await;
        if done(&value) {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} never got there");
}

/// Starts a build of `workspace` with `transition`; returns the build.
async fn new_build(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    workspace: &serde_json::Value,
    transition: &str,
) -> serde_json::Value {
    let url = format!(
        "{base}/api/v2/workspaces/{}/builds",
        workspace["id"].as_str().unwrap()
    );
    let body = json!({"transition": transition});
    let (status, build) = send(http, reqwest::Method::POST, url, token, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{build}");
    build
}

/// Polls a build until its job has ended; returns the build.
async fn ended_build(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
) -> serde_json::Value {
    let url = format!("{base}/api/v2/workspacebuilds/{id}");
    poll_until(http, url, token, |build| {
        !matches!(build["job"]["status"].as_str(), Some("pending" | "running"))
    })
    .await
}

/// `kill -9` while a stop build runs: after the restart the build has ended failed
/// (its job would otherwise run forever), the workspace can be built again, and the
/// database passes its integrity check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_build_transition_leaves_nothing_hanging() {
    use reqwest::Method;

    let dir = std::env::temp_dir().join(format!(
        "gatehouse-build-kill-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let mut server = Binary::start_with(&dir, 1).await;
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let owner = owner_session(&http, &base).await;
    let agent = uuid::Uuid::new_v4();
    let plan = json!({
        "resources": [{"name": "dev", "type": "echo_container", "agents": [
            {"name": "main", "auth_token": agent, "os": "linux", "architecture": "amd64"}
        ]}],
        "apply_delay_ms": {"start": 0, "stop": 20000, "delete": 0}
    });
    let file: serde_json::Value = http
        .post(format!("{base}/api/v2/files"))
        .header("Coder-Session-Token", &owner)
        .header("content-type", "application/json")
        .body(plan.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, version) = send(
        &http,
        Method::POST,
        format!("{base}/api/v2/organizations/default/templateversions"),
        &owner,
        Some(json!({"storage_method": "file", "file_id": file["hash"], "provisioner": "echo"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{version}");
    let version_url = format!(
        "{base}/api/v2/templateversions/{}",
        version["id"].as_str().unwrap()
    );
    poll_until(&http, version_url, &owner, |v| {
        v["job"]["status"] == "succeeded"
    })
    .await;
    let (status, template) = send(
        &http,
        Method::POST,
        format!("{base}/api/v2/organizations/default/templates"),
        &owner,
        Some(json!({"name": "echo", "template_version_id": version["id"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{template}");
    let (status, workspace) = send(
        &http,
        Method::POST,
        format!("{base}/api/v2/users/me/workspaces"),
        &owner,
        Some(json!({"template_id": template["id"], "name": "dev"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{workspace}");
    let start = ended_build(
        &http,
        &base,
        &owner,
        workspace["latest_build"]["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(start["job"]["status"], "succeeded", "{start}");
    let stop = new_build(&http, &base, &owner, &workspace, "stop").await;
    let stop_url = format!(
        "{base}/api/v2/workspacebuilds/{}",
        stop["id"].as_str().unwrap()
    );
    poll_until(&http, stop_url, &owner, |b| b["job"]["status"] == "running").await;
    server.signal("KILL");
    server.wait(Duration::from_secs(5));

    let server = Binary::start_with(&dir, 1).await;
    let base = server.base.clone();
    let stop = ended_build(&http, &base, &owner, stop["id"].as_str().unwrap()).await;
    assert_eq!(stop["job"]["status"], "failed", "{stop}");
    assert!(
        stop["job"]["error"]
            .as_str()
            .unwrap()
            .contains("server stopped while this job was running"),
        "{stop}"
    );
    // The workspace is not stuck: it can be built again.
    let again = new_build(&http, &base, &owner, &workspace, "start").await;
    let again = ended_build(&http, &base, &owner, again["id"].as_str().unwrap()).await;
    assert_eq!(again["job"]["status"], "succeeded", "{again}");
    drop(server);
    assert_sqlite_intact(&dir.join("gatehouse.db"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The hung-job detector (every backend): a running job its provisioner stopped beating
/// for five minutes fails, its build with it; a job that beats is left alone.
async fn a_job_silent_for_five_minutes_is_ended_as_hung(app: TestApp) {
    use gatehouse_store::system::provisionerd;

    let (_, owner) = app.first_user().await;
    let upload = |name: &'static str| {
        let app = &app;
        let owner = owner.clone();
        async move {
            let res = app
                .post("/api/v2/files")
                .token(&owner)
                .body_with_type(
                    "application/json",
                    &format!("{{\"resources\": [], \"n\": \"{name}\"}}"),
                )
                .send()
                .await;
            let file = res.json()["hash"].as_str().unwrap().to_owned();
            let res = app
                .post("/api/v2/organizations/default/templateversions")
                .token(&owner)
                .json(&json!({"storage_method": "file", "file_id": file, "provisioner": "echo"}))
                .send()
                .await;
            assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
            res.json()["id"].as_str().unwrap().to_owned()
        }
    };
    let silent = upload("silent").await;
    let beating = upload("beating").await;
    let worker = uuid::Uuid::new_v4();
    for _ in 0..2 {
        let taken = app
            .state
            .store
            .acquire_job(provisionerd(), worker)
            .await
            .unwrap();
        assert!(taken.is_some());
    }
    let six_minutes_ago = chrono::Utc::now() - chrono::TimeDelta::minutes(6);
    app.exec_at(
        "UPDATE provisioner_jobs SET updated_at = $1 WHERE id = (SELECT job_id FROM template_versions ORDER BY created_at, id LIMIT 1)",
        six_minutes_ago,
    )
    .await;
    let ended = app
        .state
        .provisioner
        .fail_abandoned_jobs(false)
        .await
        .unwrap();
    assert_eq!(ended, 1);
    let job = |id: String| {
        let app = &app;
        let owner = owner.clone();
        async move {
            app.get(&format!("/api/v2/templateversions/{id}"))
                .token(&owner)
                .send()
                .await
                .json()["job"]
                .clone()
        }
    };
    let hung = job(silent).await;
    assert_eq!(hung["status"], "failed", "{hung}");
    assert!(
        hung["error"]
            .as_str()
            .unwrap()
            .contains("hung for 5 minutes"),
        "{hung}"
    );
    let alive = job(beating).await;
    assert_eq!(alive["status"], "running", "{alive}");
}

/// A small filesystem of this test's own (tmpfs), unmounted when dropped.
struct TinyDisk {
    path: PathBuf,
}

impl TinyDisk {
    fn mount(size: &str) -> TinyDisk {
        let path =
            std::env::temp_dir().join(format!("gatehouse-disk-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(mounted.success(), "mounting a tmpfs needs root");
        TinyDisk { path }
    }

    /// Writes a file until the disk refuses more.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).and_then(|()| file.flush()).is_ok() {}
        filler
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A full disk under SQLite: writes are a 503 with the JSON message (never a 500), reads
/// go on, writes resume by themselves once space is freed, and the database passes its
/// integrity check with every answered token in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a tmpfs (scripts/test.sh runs it)"]
async fn a_full_disk_is_a_clear_503_and_corrupts_nothing() {
    let disk = TinyDisk::mount("16m");
    let data = disk.path.join("data");
    let mut server = Binary::start(&data).await;
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let owner = owner_session(&http, &base).await;
    let create = |n: usize| {
        let (http, base, owner) = (http.clone(), base.clone(), owner.clone());
        async move {
            let res = http
                .post(format!("{base}/api/v2/users/me/keys/tokens"))
                .header("Coder-Session-Token", &owner)
                .json(&json!({"token_name": format!("t{n}")}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            (
                status,
                res.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let mut answered = Vec::new();
    for n in 0..5 {
        let (status, body) = create(n).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        answered.push(body["key"].as_str().unwrap().to_owned());
    }
    let filler = disk.fill();
    let mut refused = 0;
    for n in 5..40 {
        let (status, body) = create(n).await;
        match status {
            StatusCode::CREATED => answered.push(body["key"].as_str().unwrap().to_owned()),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(
                    body["message"], "The database is temporarily unavailable. Please try again.",
                    "{body}"
                );
                refused += 1;
            }
            other => panic!("a full disk answered {other}: {body}"),
        }
    }
    assert!(refused > 0, "the full disk was never felt");
    // Reads go on (with a key in use: a key's first use records it, which is a write).
    let res = http
        .get(format!("{base}/api/v2/users/me"))
        .header("Coder-Session-Token", &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    std::fs::remove_file(filler).unwrap();
    let (status, body) = create(100).await;
    assert_eq!(status, StatusCode::CREATED, "writes did not resume: {body}");
    answered.push(body["key"].as_str().unwrap().to_owned());
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(10)).success());
    assert_sqlite_intact(&data.join("gatehouse.db"));
    let server = Binary::start(&data).await;
    assert_tokens_work(&http, &server.base, &answered).await;
    eprintln!(
        "full disk: {} tokens answered, {refused} writes refused with 503",
        answered.len()
    );
}

/// SQLite's own check of the file: pages, indexes and constraints.
fn assert_sqlite_intact(db: &std::path::Path) {
    let check = Command::new("sqlite3")
        .arg(db)
        .arg("PRAGMA integrity_check;")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "ok");
}

/// Every token a client was answered 201 for authenticates.
async fn assert_tokens_work(http: &reqwest::Client, base: &str, tokens: &[String]) {
    for token in tokens {
        let res = http
            .get(format!("{base}/api/v2/users/me"))
            .header("Coder-Session-Token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "a token answered 201 was lost"
        );
    }
}
