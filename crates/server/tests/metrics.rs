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
