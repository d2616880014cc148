//! Route-pattern metrics (spec/ops.md §3.3).

use axum::http::StatusCode;

use crate::harness::TestApp;

#[tokio::test]
async fn requests_are_counted_by_route_pattern() {
    let app = TestApp::sqlite().await;
    let (_, owner) = app.first_user().await;
    for user in ["me", "owner"] {
        assert_eq!(
            app.get(&format!("/api/v2/users/{user}"))
                .token(&owner)
                .send()
                .await
                .status,
            StatusCode::OK
        );
    }
    app.get("/api/v2/weird_path").send().await;
    app.get("/static/bundle.js").send().await;
    let text = app.state.metrics.render();
    let has = |line: &str| text.lines().any(|l| l == line);
    assert!(
        has(
            r#"coderd_api_requests_processed_total{code="200",method="GET",path="/api/v2/users/{user}"} 2"#
        ),
        "{text}"
    );
    assert!(
        has(r#"coderd_api_requests_processed_total{code="404",method="GET",path="UNKNOWN"} 1"#),
        "{text}"
    );
    assert!(
        has(r#"coderd_api_requests_processed_total{code="404",method="GET",path="STATIC"} 1"#),
        "{text}"
    );
    assert!(
        has(r#"coderd_api_concurrent_requests{method="GET",path="/api/v2/users/{user}"} 0"#),
        "{text}"
    );
    assert!(has(r#"coderd_api_request_latencies_seconds_bucket{le="30.0",method="GET",path="/api/v2/users/{user}"} 2"#)
        || text.contains(r#"coderd_api_request_latencies_seconds_count{method="GET",path="/api/v2/users/{user}"} 2"#), "{text}");
    assert!(
        text.contains("# TYPE coderd_api_request_latencies_seconds histogram"),
        "{text}"
    );
    // Raw paths never become labels.
    assert!(!text.contains("/api/v2/users/owner"), "{text}");

    let router = gatehouse_server::router::metrics_router(&app.state);
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let res = router
        .oneshot(
            axum::http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("coderd_api_requests_processed_total"));
}

/// The in-flight gauge counts a request on its route while the handler runs, and drops
/// back when the client goes away before the answer.
#[tokio::test]
async fn a_request_is_in_flight_on_its_route_until_it_ends() {
    use std::sync::Arc;

    use axum::{extract::Path, routing::get};
    use tokio::sync::Notify;
    use tower::ServiceExt;

    let app = TestApp::sqlite().await;
    let release = Arc::new(Notify::new());
    let waiting = release.clone();
    let router = gatehouse_server::router::build_with(
        app.state.clone(),
        vec![(
            "/api/v2/slow/{id}",
            get(move |Path(_id): Path<String>| {
                let waiting = waiting.clone();
                async move {
                    waiting.notified().await;
                    "done"
                }
            }),
        )],
    );
    let gauge = |value: u32| {
        format!(
            r#"coderd_api_concurrent_requests{{method="GET",path="/api/v2/slow/{{id}}"}} {value}"#
        )
    };
    let request = |id: &str| {
        axum::http::Request::get(format!("/api/v2/slow/{id}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let finishing = tokio::spawn(router.clone().oneshot(request("a")));
    let abandoned = tokio::spawn(router.clone().oneshot(request("b")));
    let mut seen = String::new();
    for _ in 0..100 {
        seen = app.state.metrics.render();
        if seen.lines().any(|l| l == gauge(2)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(seen.lines().any(|l| l == gauge(2)), "{seen}");
    abandoned.abort();
    let _ = abandoned.await;
    let after_abort = app.state.metrics.render();
    assert!(after_abort.lines().any(|l| l == gauge(1)), "{after_abort}");
    release.notify_waiters();
    let res = finishing.await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let done = app.state.metrics.render();
    assert!(done.lines().any(|l| l == gauge(0)), "{done}");
}

/// Methods are routable on `any()` routes, but invented ones share one label: a client
/// cannot grow the label sets by making methods up.
#[tokio::test]
async fn invented_methods_share_one_label() {
    let app = TestApp::sqlite().await;
    for method in ["BREW", "WHEN", "PROPFIND"] {
        let res = app
            .req(
                axum::http::Method::from_bytes(method.as_bytes()).unwrap(),
                "/api/v2/nothing",
            )
            .send()
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
    }
    let text = app.state.metrics.render();
    assert!(
        text.lines().any(|l| l
            == r#"coderd_api_requests_processed_total{code="404",method="OTHER",path="UNKNOWN"} 3"#),
        "{text}"
    );
    assert!(!text.contains("BREW"), "{text}");
}

/// spec/ops.md T17: a 413 from a body limit counts as `request_body`, any other 413 as
/// `other`, and other statuses not at all.
#[tokio::test]
async fn answers_413_are_counted_by_reason() {
    use axum::{http::StatusCode as Status, routing::post};
    use tower::ServiceExt;

    let app = TestApp::sqlite().await;
    let (_, owner) = app.first_user().await;
    let router = gatehouse_server::router::build_with(
        app.state.clone(),
        vec![(
            "/api/v2/refuses",
            post(|| async { Status::PAYLOAD_TOO_LARGE }),
        )],
    );
    let huge = format!(r#"{{"token_name": "{}"}}"#, "x".repeat(2 << 20));
    let res = app
        .post("/api/v2/users/me/keys/tokens")
        .token(&owner)
        .body_with_type("application/json", &huge)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.text());
    let res = app
        .post("/api/v2/users/me/keys/tokens")
        .token(&owner)
        .json(&serde_json::json!({"token_name": "fits"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let res = router
        .oneshot(
            axum::http::Request::post("/api/v2/refuses")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let text = app.state.metrics.render();
    let count = |labels: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(&format!("coderd_api_requests_too_large_total{{{labels}}} "))
            })
            .map(str::to_owned)
    };
    assert_eq!(
        count(r#"method="POST",path="/api/v2/users/{user}/keys/tokens",reason="request_body""#)
            .as_deref(),
        Some("1"),
        "{text}"
    );
    assert_eq!(
        count(r#"method="POST",path="/api/v2/refuses",reason="other""#).as_deref(),
        Some("1"),
        "{text}"
    );
    assert_eq!(
        text.matches("coderd_api_requests_too_large_total{").count(),
        2,
        "{text}"
    );
}

/// The gate labels requests from its own table of route patterns; in debug builds it
/// checks on every request that the table and the router agree on whether a route
/// matched (a pattern the router lacks, or one the table lacks, panics the request). So
/// every test's request checks its route, and this one sends one to every pattern in the
/// table, with every optional route group on.
#[tokio::test]
async fn every_pattern_in_the_route_table_is_routed() {
    let mut config = crate::harness::config();
    config.aibridge_enabled = true;
    config.aibridge_openai_base_url = "http://127.0.0.1:9/v1/".to_owned();
    config.aibridge_anthropic_base_url = "http://127.0.0.1:9/".to_owned();
    let app = TestApp::sqlite_with(config).await;
    let patterns: Vec<String> = app.router.route_patterns().map(str::to_owned).collect();
    for expected in [
        "/healthz",
        "/api/v2/users/{user}",
        "/api/experimental/mcp/http",
        "/api/v2/aibridge/openai/v1/{*rest}",
        "/.well-known/oauth-protected-resource/{*suffix}",
        "/external-auth/{id}/callback",
    ] {
        assert!(
            patterns.iter().any(|p| p == expected),
            "{expected} not in {patterns:?}"
        );
    }
    let placeholder = regex::Regex::new(r"\{\*?[a-z_]+\}").unwrap();
    for pattern in &patterns {
        let path = placeholder.replace_all(pattern, "x");
        let res = app.get(&path).send().await;
        assert!(
            res.status.as_u16() < 500,
            "{pattern} ({path}): {}",
            res.text()
        );
    }
    assert!(
        app.get("/api/v2/no/such/route").send().await.status == StatusCode::NOT_FOUND,
        "the fallback answers the rest"
    );
}
