//! `gatehouse server`: logging, database, listener, graceful shutdown.

use std::{future::IntoFuture, net::SocketAddr};

use anyhow::Context;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::{
    app::{AppState, normalise_access_url, open_database},
    config::{LogFormat, ServerConfig},
    router,
};

fn init_logging(config: &ServerConfig) {
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Human => builder.init(),
    }
}

#[expect(
    clippy::print_stdout,
    reason = "the access URL is the server's one line of user output"
)]
fn announce(access_url: &str) {
    println!("Started HTTP listener at {access_url}");
    println!();
    println!("View the Web UI:");
    println!("{access_url}");
}

/// Runs until SIGINT or SIGTERM, then lets in-flight requests finish.
pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    init_logging(&config);
    let db = open_database(&config)
        .await
        .with_context(|| match &config.postgres_url {
            Some(_) => {
                "cannot connect to PostgreSQL (--postgres-url / CODER_PG_CONNECTION_URL)".to_owned()
            }
            None => format!(
                "cannot open the SQLite database in {}",
                config.data_dir().display()
            ),
        })?;
    tracing::info!(backend = db.backend(), "database ready");
    let listener = TcpListener::bind(config.http_address)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_address))?;
    let bound = listener.local_addr()?;
    let access_url = normalise_access_url(
        &config
            .access_url
            .as_ref()
            .map_or_else(|| format!("http://{bound}"), ToString::to_string),
    );
    let grace = config.graceful_shutdown_timeout;
    let state = AppState::start(db.clone(), config, access_url.clone()).await?;
    state
        .provisioner
        .clone()
        .spawn_daemons(state.config.provisioner_daemons, state.jobs.clone());
    crate::jobs::purge::spawn(
        state.store.clone(),
        state.metrics.clone(),
        state.retention(),
    )
    .context("cannot start the purge job")?;
    if state.config.prometheus_enable {
        let address = state.config.prometheus_address;
        let metrics = router::metrics_router(&state);
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address} for Prometheus metrics"))?;
        tracing::info!(address = %address, "serving Prometheus metrics");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, metrics).await {
                tracing::warn!(error = %e, "the metrics server stopped");
            }
        });
    }
    let app = router::build(state);
    tracing::info!(address = %bound, access_url = %access_url, "listening");
    announce(&access_url);
    // In-flight requests get the grace period once a signal arrives; then the rest are cut.
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown_signal().await;
        let _ = stopping_tx.send(true);
    };
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .into_future();
    tokio::select! {
        result = server => result.context("server error")?,
        () = async {
            let _ = stopping.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_seconds = grace.as_secs(), "grace period over; closing remaining connections");
        }
    }
    tokio::time::timeout(grace, db.close()).await.ok();
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
