//! `gatehouse server`: logging, database, listener, graceful shutdown.

use anyhow::Context;
use gatehouse_httpmw::body_deadline::DeadlineBody;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::{
    app::{AppState, normalise_access_url, open_database},
    config::{LogFormat, ServerConfig},
    conn_limit::{AtCap, ConnectionCap, REFUSAL},
    head_timeout::HeadTimeouts,
    router,
    shutdown::Shutdown,
    tls_server::{HANDSHAKE_TIMEOUT, TlsServer},
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

/// Prints where the server listens. A closed stdout (a supervisor that stopped reading)
/// must not take the server down, so write errors are ignored instead of panicking.
fn announce(access_url: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Started HTTP listener at {access_url}");
    let _ = writeln!(out);
    let _ = writeln!(out, "View the Web UI:");
    let _ = writeln!(out, "{access_url}");
    let _ = out.flush();
}

/// Runs until SIGINT or SIGTERM, then lets in-flight requests finish.
pub async fn run(mut config: ServerConfig) -> anyhow::Result<()> {
    init_logging(&config);
    config.external_auth = crate::external_auth::config::from_env().map_err(anyhow::Error::msg)?;
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
    // HTTPS beside HTTP (Coder serves both), when `--tls-enable`.
    let tls = match config.tls.tls_enable {
        false => None,
        true => {
            let server = TlsServer::new(&config.tls)?;
            let address = config
                .tls
                .tls_address
                .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 3443)));
            let tls_listener = TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} (--tls-address)"))?;
            Some((server, tls_listener))
        }
    };
    let default_access_url = match &tls {
        Some((_, l)) => format!("https://{}", l.local_addr()?),
        None => format!("http://{bound}"),
    };
    let access_url = normalise_access_url(
        &config
            .access_url
            .as_ref()
            .map_or(default_access_url, ToString::to_string),
    );
    // A certificate that names some other host would have every client refuse the access
    // URL: refuse to start instead (only for an access URL that was given; the default
    // one is this listener's address).
    if let (Some((server, _)), Some(given)) = (&tls, &config.access_url)
        && given.scheme() == "https"
        && let Some(host) = given.host_str()
    {
        server.require_name(host.trim_start_matches('[').trim_end_matches(']'))?;
    }
    let grace = config.graceful_shutdown_timeout;
    let state = AppState::start(db.clone(), config, access_url.clone()).await?;
    // Before any daemon takes a job: what a crash left running is ended, not left hanging.
    state
        .provisioner
        .fail_abandoned_jobs(true)
        .await
        .context("cannot recover provisioner jobs")?;
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
    // Other replicas register and remove proxies too: their hosts reach this replica's
    // CSP as soon as PostgreSQL says so (this replica's own changes apply at once).
    crate::proxy_hosts::spawn_proxy_refresh(state.store.clone(), state.csp_hosts.proxies.clone());
    let limits = ConnectionLimits {
        read_header_timeout: state.config.http_read_header_timeout,
        read_body_timeout: state.config.http_read_body_timeout,
        per_address: ConnectionCap::new(
            state.config.http_max_connections_per_address,
            state.config.proxy_trusted_origins.clone(),
        ),
        tls: None,
    };
    let shutdown = state.shutdown.clone();
    let app = router::build(state);
    tracing::info!(address = %bound, access_url = %access_url, "listening");
    announce(&access_url);
    // One signal stops both listeners.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let told = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let https = async {
        if let Some((server, tls_listener)) = tls {
            tracing::info!(address = %tls_listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "listening with TLS");
            server.watch();
            let limits = ConnectionLimits {
                tls: Some(server.acceptor.clone()),
                ..limits.clone()
            };
            serve_connections(
                tls_listener,
                app.clone(),
                shutdown.clone(),
                limits,
                grace,
                told(stopping.clone()),
            )
            .await;
        }
    };
    let http = serve_connections(
        listener,
        app.clone(),
        shutdown.clone(),
        limits.clone(),
        grace,
        told(stopping.clone()),
    );
    tokio::join!(http, https);
    tokio::time::timeout(grace, db.close()).await.ok();
    tracing::info!("stopped");
    Ok(())
}

/// What one connection may take: its head's time, its body's time, and how many
/// connections its address may hold at once.
#[derive(Clone)]
pub struct ConnectionLimits {
    pub read_header_timeout: std::time::Duration,
    pub read_body_timeout: std::time::Duration,
    pub per_address: Option<std::sync::Arc<ConnectionCap>>,
    /// Set: every connection speaks TLS first (the `--tls-address` listener).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for ConnectionLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionLimits")
            .field("read_header_timeout", &self.read_header_timeout)
            .field("read_body_timeout", &self.read_body_timeout)
            .field("per_address", &self.per_address)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl ConnectionLimits {
    /// Only the head timeout (tests of the connection loop).
    pub fn head_only(read_header_timeout: std::time::Duration) -> ConnectionLimits {
        ConnectionLimits {
            read_header_timeout,
            read_body_timeout: std::time::Duration::ZERO,
            per_address: None,
            tls: None,
        }
    }
}

/// Accepts connections until SIGINT/SIGTERM, then lets in-flight requests finish for the
/// grace period. A client must send its request head within `read_header_timeout` and
/// its body within `read_body_timeout`, and one address may hold only so many
/// connections, so a slow-loris client cannot hold connections (and their memory) open.
/// Connections may be
/// upgraded (websockets); hyper-util's `GracefulShutdown` cannot watch those, so every
/// connection task, like every websocket a handler accepted, holds on to `shutdown`,
/// which tells them all to finish and says when the last has.
pub async fn serve_connections(
    listener: TcpListener,
    app: crate::router::App,
    shutdown: Shutdown,
    limits: ConnectionLimits,
    grace: std::time::Duration,
    signal: impl std::future::Future<Output = ()>,
) {
    use hyper_util::{rt::TokioIo, service::TowerToHyperService};
    tokio::pin!(signal);
    let head_timeouts = HeadTimeouts::start(limits.read_header_timeout);
    let body_timeout = limits.read_body_timeout;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let admitted = match limits.per_address.as_ref().map(|cap| cap.admit(peer.ip())) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(held))) => Some(held),
            Some(Err(AtCap)) => {
                tracing::warn!(peer = %peer, "connection refused: too many open from this address");
                tokio::spawn(refuse(stream));
                continue;
            }
        };
        // The gate records the peer in each request's log record: one request extension
        // fewer than `ConnectInfo` (past three, their map allocates again).
        let service = tower::ServiceExt::map_request(
            app.for_connection(peer, limits.tls.is_some()),
            move |req: axum::http::Request<hyper::body::Incoming>| {
                req.map(|body| axum::body::Body::new(DeadlineBody::new(body, body_timeout)))
            },
        );
        let timer = head_timeouts.connection();
        let header_timeout = limits.read_header_timeout;
        let mut held = shutdown.hold();
        let tls = limits.tls.clone();
        // One connection over any transport (TCP, or TLS over it): serve it until it ends,
        // or finish its request in flight when the server stops.
        macro_rules! drive {
            ($io:expr) => {{
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(timer)
                    .header_read_timeout(header_timeout)
                    .serve_connection(TokioIo::new($io), TowerToHyperService::new(service))
                    .with_upgrades();
                tokio::pin!(conn);
                let finished = tokio::select! {
                    result = conn.as_mut() => Some(result),
                    () = held.stopping() => None,
                };
                let result = match finished {
                    Some(result) => result,
                    None => {
                        // Finish the request in flight, then close (no keep-alive).
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, peer = %peer, "connection ended with an error");
                }
            }};
        }
        tokio::spawn(async move {
            let _admitted = admitted;
            match tls {
                None => drive!(stream),
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => drive!(stream),
                        // Plain HTTP or garbage on the TLS port: dropped; the log line is
                        // rate-limited so a scanner cannot flood the log.
                        Ok(Err(e)) => crate::tls_server::handshake_failed(peer, &e),
                        Err(_) => crate::tls_server::handshake_failed(peer, &"timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    shutdown.begin();
    tokio::select! {
        () = shutdown.all_let_go() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(grace_seconds = grace.as_secs(), "grace period over; closing remaining connections");
        }
    }
}

/// Tells a connection over its address's cap why it is closed, then closes it.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sent = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        stream.write_all(REFUSAL).await?;
        stream.shutdown().await?;
        // Read what the client sent until it closes: closing with unread data would
        // reset the connection, and the client might never see the answer.
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
    if let Ok(Err(e)) = sent {
        tracing::debug!(error = %e, "could not send the connection refusal");
    }
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
