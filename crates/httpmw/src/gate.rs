//! The gate around the router (spec/ops.md §1.2): what every request gets, in one service
//! and one future instead of a boxed layer each — a fresh request id, the client address
//! behind trusted proxies, panic recovery, the request log, route metrics, and the
//! standard response headers. What depends on the route (authentication, limits) stays
//! on the routes; [`crate::route_info`] tells the gate which route answered.

use std::{
    convert::Infallible,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    extract::Request,
    http::{HeaderValue, header},
    response::Response,
};
use futures_util::FutureExt;
use tower::{Layer, Service, ServiceExt};

use crate::{
    apikey::{AuthState, precheck},
    client_ip::{TrustedProxies, rewrite_peer},
    metrics::ApiMetrics,
    recover::panic_response,
    request_id::{REQUEST_ID_HEADER, RequestId},
    request_log::{LogStart, RequestLog, is_websocket_upgrade, unmatched_route},
};

/// What the gate is configured with; built once at start-up.
#[derive(Clone, Default)]
pub struct GateConfig {
    pub metrics: ApiMetrics,
    /// Set only when `--proxy-trusted-*` are (decisions.md 8).
    pub trusted_proxies: Option<Arc<TrustedProxies>>,
    /// `Strict-Transport-Security`, when the access URL is https and it is enabled.
    pub hsts: Option<HeaderValue>,
    /// Responses under these path prefixes must not be cached (RFC 6749 §5.1: token
    /// responses carry `Cache-Control: no-store` and `Pragma: no-cache`).
    pub no_store_prefixes: &'static [&'static str],
    /// Resolves the credential of every request up front (it never rejects), so limits
    /// and the log know the caller; routes decide whether they require one.
    pub auth: Option<Arc<AuthState>>,
}

#[derive(Clone)]
pub struct GateLayer {
    config: Arc<GateConfig>,
}

impl GateLayer {
    pub fn new(config: GateConfig) -> GateLayer {
        GateLayer {
            config: Arc::new(config),
        }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            config: self.config.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    config: Arc<GateConfig>,
}

impl<S> Service<Request> for Gate<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The router is always ready; readiness is checked on the clone that is called.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let inner = self.inner.clone();
        let config = self.config.clone();
        Box::pin(async move {
            let start = Instant::now();
            let request_id = RequestId::fresh();
            // Before the log and every limiter read the client address (spec/ops.md §1.2
            // step 7).
            if let Some(trusted) = &config.trusted_proxies {
                rewrite_peer(trusted, &mut req);
            }
            let websocket = is_websocket_upgrade(&req);
            let websocket_since = websocket.then_some(start);
            let log_start = LogStart::of(&req, request_id, websocket);
            let method = req.method().clone();
            let no_store = config
                .no_store_prefixes
                .iter()
                .any(|prefix| req.uri().path().starts_with(prefix));
            let unmatched = unmatched_route(req.uri().path());
            let prechecked = match &config.auth {
                Some(auth) => Some(precheck(auth, &mut req, request_id).await),
                None => None,
            };
            let log = RequestLog::new(request_id, websocket_since, prechecked);
            req.extensions_mut().insert(log.clone());
            // A panic is answered as the 500 it becomes, logged and counted as one, and
            // still carries its request id.
            let mut res = match AssertUnwindSafe(inner.oneshot(req)).catch_unwind().await {
                Ok(Ok(res)) => res,
                Ok(Err(never)) => match never {},
                Err(panic) => panic_response(panic),
            };
            let took = start.elapsed();
            let route = match log.route() {
                Some(route) => route.clone(),
                None => config.metrics.route(&method, unmatched),
            };
            config
                .metrics
                .record(&route, log.kind(), res.status(), took, log.body_limit_hit());
            let headers = res.headers_mut();
            if no_store {
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            }
            headers.insert(REQUEST_ID_HEADER.clone(), request_id.header_value());
            if let Some(hsts) = &config.hsts {
                headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
            }
            // Every response says what it is (spec/ops.md §1.2 step 17).
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            log_start.finish(&log, res.status(), took);
            Ok(res)
        })
    }
}
