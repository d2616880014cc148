//! The purge job (spec/ops.md §11) on both backends, and its lock on PostgreSQL.

use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use gatehouse_server::jobs::purge;
use gatehouse_store::Db;

use crate::{
    harness::TestApp,
    oauth2::{code_for, confidential_app, exchange},
    on_both_backends,
};

async fn purge_deletes_what_retention_says(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let old = app
        .token(&owner, serde_json::json!({"token_name": "old"}))
        .await;
    let recent = app
        .token(&owner, serde_json::json!({"token_name": "recent"}))
        .await;
    let now = Utc::now();
    let id = |t: &str| t.split('-').next().unwrap().to_owned();
    app.set_key_times(
        &id(&old),
        now - TimeDelta::days(9),
        now - TimeDelta::days(8),
    )
    .await;
    app.set_key_times(
        &id(&recent),
        now - TimeDelta::days(2),
        now - TimeDelta::days(1),
    )
    .await;
    // An OAuth2 access token expired long ago whose refresh token is still valid stays, so
    // the client can still refresh.
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    let (code, verifier) = code_for(&app, &owner, &client_id, &[]).await;
    let tokens = exchange(&app, &client_id, &secret, &code, &verifier)
        .await
        .json();
    let access = tokens["access_token"].as_str().unwrap();
    app.set_key_times(
        &id(access),
        now - TimeDelta::days(9),
        now - TimeDelta::days(8),
    )
    .await;
    // An expired code goes.
    code_for(&app, &owner, &client_id, &[]).await;
    app.exec_at(
        "UPDATE oauth2_provider_app_codes SET expires_at = $1 WHERE used_at IS NULL",
        now - TimeDelta::minutes(1),
    )
    .await;

    let purged = purge::tick(&app.state.store, &app.state.metrics, app.state.retention())
        .await
        .expect("the lock is free");
    assert_eq!(purged.expired_api_keys, 1);
    assert_eq!(purged.oauth2_codes, 1);
    const KEY: &str = "SELECT COUNT(*) FROM api_keys WHERE token_name = 'old'";
    assert_eq!(app.count(KEY).await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM api_keys WHERE token_name = 'recent'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM api_keys WHERE login_type = 'oauth2_provider_app'")
            .await,
        1
    );
    let res = crate::oauth2::refresh_grant(
        &app,
        &client_id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let metrics = app.state.metrics.render();
    assert!(
        metrics.contains("coderd_dbpurge_records_purged_total{record_type=\"expired_api_keys\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("coderd_dbpurge_iteration_duration_seconds_count{success=\"true\"} 1"),
        "{metrics}"
    );
}

on_both_backends!(purge_deletes_what_retention_says);

/// Replicas sharing PostgreSQL: while one holds the purge lock, another's tick skips.
#[tokio::test]
async fn a_second_replica_skips_while_the_lock_is_held() {
    let Some(app) = TestApp::postgres().await else {
        return;
    };
    let Db::Postgres(pool) = app.state.store.db() else {
        unreachable!("a PostgreSQL test app");
    };
    let mut other = pool.begin().await.unwrap();
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(0x6462_5f70_7572_6765_i64)
        .fetch_one(&mut *other)
        .await
        .unwrap();
    assert!(held);
    assert_eq!(
        purge::tick(&app.state.store, &app.state.metrics, app.state.retention()).await,
        None
    );
    other.rollback().await.unwrap();
    assert!(
        purge::tick(&app.state.store, &app.state.metrics, app.state.retention())
            .await
            .is_some()
    );
}
