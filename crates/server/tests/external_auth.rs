//! External auth against a real OAuth2 provider (oidc-provider, `tests/idp.rs`): linking
//! with PKCE S256 (the provider requires and checks the verifier) and with PKCE turned
//! off (`none`), then a workspace agent reading its owner's token, refreshed when
//! expired; on both backends.

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use gatehouse_server::{config::ServerConfig, external_auth::config::parse};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    harness::{TestApp, config},
    idp::Idp,
    workspaces::{create_workspace, run_jobs, world},
};

const SECRET: &str = "external-auth-test-secret-external-auth-test-secret";

fn client(id: &str, pkce_required: bool) -> Value {
    json!({
        "client_id": id,
        "client_secret": SECRET,
        "redirect_uris": [format!("http://gatehouse.test/external-auth/{id}/callback")],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_post",
        "pkce_required": pkce_required,
    })
}

fn providers_config(idp: &Idp) -> ServerConfig {
    let mut vars = Vec::new();
    for (n, (id, pkce)) in [("git-s256", None), ("git-plain", Some("none"))]
        .iter()
        .enumerate()
    {
        let var = |f: &str| format!("CODER_EXTERNAL_AUTH_{n}_{f}");
        vars.push((var("ID"), (*id).to_owned()));
        vars.push((var("CLIENT_ID"), (*id).to_owned()));
        vars.push((var("CLIENT_SECRET"), SECRET.to_owned()));
        vars.push((var("AUTH_URL"), format!("{}/auth", idp.issuer)));
        vars.push((var("TOKEN_URL"), format!("{}/token", idp.issuer)));
        vars.push((var("SCOPES"), "openid".to_owned()));
        vars.push((var("REGEX"), format!(r"^https://{id}\.example/.*$")));
        if let Some(p) = pkce {
            vars.push((var("PKCE_METHODS"), (*p).to_owned()));
        }
    }
    ServerConfig {
        external_auth: parse(vars).unwrap(),
        ssl_cert_file: Some(idp.ca.file.clone()),
        ..config()
    }
}

/// Links the owner's account at `provider` through the provider's login form.
async fn link(app: &TestApp, idp: &Idp, owner: &str, provider: &str) -> url::Url {
    let start = app
        .get(&format!("/external-auth/{provider}/callback"))
        .token(owner)
        .send()
        .await;
    assert_eq!(
        start.status,
        StatusCode::TEMPORARY_REDIRECT,
        "{}",
        start.text()
    );
    let authorize = url::Url::parse(start.header("location").unwrap()).unwrap();
    let back = idp.sign_in(authorize.as_str(), "dev").await;
    let done = app
        .get(&format!("{}?{}", back.path(), back.query().unwrap()))
        .token(owner)
        .header("cookie", &start.cookie_pairs())
        .send()
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert!(done.text().contains("account is connected"));
    authorize
}

async fn agent_git(app: &TestApp, agent: Uuid, query: &str) -> Value {
    let res = app
        .get(&format!("/api/v2/workspaceagents/me/external-auth?{query}"))
        .header("Coder-Session-Token", &agent.to_string())
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

/// Over HTTPS, as every Git host is (issue #24): the provider's certificate comes from a
/// test CA that the server trusts through `SSL_CERT_FILE`.
#[tokio::test]
async fn linking_with_and_without_pkce_and_the_agent_reads_the_token() {
    let idp =
        Idp::start(json!({"clients": [client("git-s256", true), client("git-plain", false)]}));
    let trusting = || providers_config(&idp);
    let mut apps = vec![TestApp::sqlite_with(trusting()).await];
    if let Some(app) = TestApp::postgres_with(trusting()).await {
        apps.push(app);
    }
    for app in apps {
        let agent = Uuid::new_v4();
        let w = world(&app, agent, 0, false).await;
        create_workspace(&app, &w.owner, &w.template, "dev").await;
        run_jobs(&app).await;
        // Not linked yet: the agent is told where its owner links the account.
        let unlinked = agent_git(&app, agent, "id=git-s256").await;
        assert_eq!(unlinked["access_token"], "");
        assert_eq!(
            unlinked["url"],
            "http://gatehouse.test/external-auth/git-s256"
        );

        // S256: a challenge on the way out, the verifier on the exchange, and the
        // provider (which requires PKCE for this client) accepted it.
        let authorize = link(&app, &idp, &w.owner, "git-s256").await;
        let query: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["code_challenge"].len(), 43);
        let exchange = last_code_exchange(&idp, "git-s256").await;
        assert!(exchange["form"]["code_verifier"].as_str().unwrap().len() >= 43);

        // none: no challenge, no verifier, and the flow still finishes.
        let authorize = link(&app, &idp, &w.owner, "git-plain").await;
        assert!(!authorize.query().unwrap().contains("code_challenge"));
        let exchange = last_code_exchange(&idp, "git-plain").await;
        assert!(
            exchange["form"].get("code_verifier").is_none(),
            "{exchange}"
        );

        // The agent gets the owner's token, by id or by matching the repository URL.
        let by_id = agent_git(&app, agent, "id=git-s256").await;
        let token = by_id["access_token"].as_str().unwrap().to_owned();
        assert!(!token.is_empty());
        assert_eq!(by_id["username"], token);
        assert_eq!(by_id["url"], "");
        let by_match = agent_git(&app, agent, "match=https://git-plain.example/org/repo.git").await;
        assert!(!by_match["access_token"].as_str().unwrap().is_empty());
        assert_ne!(by_match["access_token"], by_id["access_token"]);

        // Expired: the agent's request refreshes it at the provider first.
        app.exec_at(
            "UPDATE external_auth_links SET oauth_expiry = $1 WHERE provider_id = 'git-s256'",
            Utc::now() - Duration::minutes(1),
        )
        .await;
        let refreshed = agent_git(&app, agent, "id=git-s256").await;
        assert_ne!(refreshed["access_token"], token.as_str());
        assert!(!refreshed["access_token"].as_str().unwrap().is_empty());
        let refreshes = idp
            .requests()
            .await
            .iter()
            .filter(|r| {
                r["form"]["grant_type"] == "refresh_token" && r["form"]["client_id"] == "git-s256"
            })
            .count();
        assert!(refreshes >= 1);

        // Unknown provider and a missing parameter.
        let res = app
            .get("/api/v2/workspaceagents/me/external-auth?id=nope")
            .header("Coder-Session-Token", &agent.to_string())
            .send()
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        let res = app
            .get("/api/v2/workspaceagents/me/external-auth")
            .header("Coder-Session-Token", &agent.to_string())
            .send()
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        let res = app
            .get("/api/v2/workspaceagents/me/external-auth?id=a&id=b")
            .header("Coder-Session-Token", &agent.to_string())
            .send()
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            res.json()["message"],
            "Query parameters have invalid values."
        );
    }
}

async fn last_code_exchange(idp: &Idp, client_id: &str) -> Value {
    idp.requests()
        .await
        .into_iter()
        .rev()
        .find(|r| {
            r["form"]["grant_type"] == "authorization_code" && r["form"]["client_id"] == client_id
        })
        .expect("a code exchange")
}

#[tokio::test]
async fn the_callback_needs_a_session_and_checks_state_and_pkce() {
    let idp = Idp::start(json!({"clients": [client("git-s256", true)]}));
    let app = TestApp::sqlite_with(providers_config(&idp)).await;
    let (_, owner) = app.first_user().await;
    let res = app.get("/external-auth/git-s256/callback").send().await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let res = app
        .get("/external-auth/nope/callback")
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let res = app
        .get("/gitauth/git-s256/callback?code=x&state=s")
        .token(&owner)
        .header("cookie", "oauth_state=s")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["message"], "PKCE challenge must be provided.");
    let res = app
        .get("/external-auth/git-s256/callback?code=x&state=s")
        .token(&owner)
        .header("cookie", "oauth_state=t")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["message"], "State mismatched.");
}
