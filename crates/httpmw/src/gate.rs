//! The gate around the router (spec/ops.md §1.2): what every request gets, in one service
//! and one future instead of a boxed layer each — a fresh request id, the client address
//! behind trusted proxies, the route it is for, panic recovery, the request log, route
//! metrics, and the standard response headers. What depends on the route
//! (authentication, limits) stays on the routes.
//!
//! The gate's future is a plain state machine, not a boxed `async` block: hyper keeps the
//! in-flight future of a connection in one allocation it reuses, so a request that carries
//! no credential is served without the gate allocating a future or copying the router's
//! into one.

use std::{
    convert::Infallible,
    net::SocketAddr,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Instant,
};

use axum::{
    extract::{ConnectInfo, Request},
    http::{HeaderValue, header},
    response::Response,
};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::{
    access_redirect::{self, AccessRedirect},
    authn::{
        actor::Prechecked,
        api_key::{Precheck, precheck},
        state::AuthState,
    },
    client_ip::{TrustedProxies, client_address},
    error::ErrorCause,
    metrics::ApiMetrics,
    recover::panic_response,
    request_id::{REQUEST_ID_HEADER, RequestId},
    request_log::{LogStart, RequestLog, is_websocket_upgrade, unmatched_route},
    route_info::{RouteId, RouteTable},
};

/// What the gate is configured with; built once at start-up.
#[derive(Default)]
pub struct GateConfig {
    pub metrics: ApiMetrics,
    /// Every route pattern the router holds ([`crate::route_info`]).
    pub routes: RouteTable,
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
    /// Requests that go to the access URL instead (plain HTTP beside HTTPS,
    /// `--redirect-to-access-url`); `None` when nothing ever does.
    pub redirect: Option<Arc<AccessRedirect>>,
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
            peer: None,
            secure: false,
        }
    }
}

#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    config: Arc<GateConfig>,
    /// The TCP peer of the connection this copy serves; without one (a request built in
    /// process), a `ConnectInfo` extension stands in.
    peer: Option<SocketAddr>,
    /// The connection speaks TLS.
    secure: bool,
}

impl<S> Gate<S> {
    /// The route patterns the gate labels requests with.
    pub fn route_patterns(&self) -> impl Iterator<Item = &str> {
        self.config.routes.patterns()
    }
}

impl<S: Clone> Gate<S> {
    /// A copy of the gate for one connection from `peer`, over TLS when `secure`.
    pub fn for_connection(&self, peer: SocketAddr, secure: bool) -> Gate<S> {
        Gate {
            inner: self.inner.clone(),
            config: self.config.clone(),
            peer: Some(peer),
            secure,
        }
    }
}

impl<S> Service<Request> for Gate<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GateFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> GateFuture<S> {
        let start = Instant::now();
        let request_id = RequestId::fresh();
        let config = &self.config;
        // Before the log and every limiter read the client address (spec/ops.md §1.2
        // step 7).
        let client = self
            .peer
            .or_else(|| {
                req.extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0)
            })
            .map(|peer| client_address(config.trusted_proxies.as_deref(), peer, req.headers()));
        let route = config.routes.find(req.uri().path());
        let websocket = is_websocket_upgrade(&req);
        let bookkeeping = Bookkeeping {
            start,
            route,
            client,
            websocket,
            log_start: LogStart::of(&req, request_id, websocket),
            no_store: config
                .no_store_prefixes
                .iter()
                .any(|prefix| req.uri().path().starts_with(prefix)),
            unmatched: unmatched_route(req.uri().path()),
            routed: true,
            config: config.clone(),
        };
        if let Some(location) = config
            .redirect
            .as_ref()
            .and_then(|r| r.target(self.secure, &req))
        {
            let state = bookkeeping.answer_now(access_redirect::redirect(&location));
            return GateFuture {
                state,
                bookkeeping: Some(Bookkeeping {
                    routed: false,
                    ..bookkeeping
                }),
            };
        }
        let check = config.auth.as_ref().map(|auth| {
            let ip = client.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |c| c.ip());
            precheck(auth, &req, request_id, ip)
        });
        let state = match check {
            Some(Precheck::Pending(validation)) => {
                // The router was readied for this call: it goes with the request, and a
                // clone takes its place (tower's clone-and-swap).
                let clone = self.inner.clone();
                State::Prechecking {
                    pending: Box::new(Pending {
                        validation,
                        req,
                        inner: std::mem::replace(&mut self.inner, clone),
                    }),
                }
            }
            Some(Precheck::Ready(prechecked)) => {
                bookkeeping.enter(&mut self.inner, req, Some(prechecked))
            }
            None => bookkeeping.enter(&mut self.inner, req, None),
        };
        GateFuture {
            state,
            bookkeeping: Some(bookkeeping),
        }
    }
}

/// What the gate keeps of a request while the router answers it. The request's id and
/// method are the log's ([`LogStart`]).
struct Bookkeeping {
    start: Instant,
    route: RouteId,
    client: Option<SocketAddr>,
    websocket: bool,
    log_start: LogStart,
    no_store: bool,
    unmatched: &'static str,
    /// The router answered (not the gate itself): its route match can be checked.
    routed: bool,
    config: Arc<GateConfig>,
}

impl Bookkeeping {
    /// Records the request and hands it to the router; a panic while the router takes
    /// it is answered like a panic in its future.
    fn enter<S>(&self, inner: &mut S, mut req: Request, prechecked: Option<Prechecked>) -> State<S>
    where
        S: Service<Request, Response = Response, Error = Infallible>,
    {
        let route =
            self.config
                .routes
                .metrics(&self.config.metrics, self.route, self.log_start.method());
        let log = RequestLog::new(
            self.log_start.request_id(),
            self.client,
            route,
            self.websocket.then_some(self.start),
            prechecked,
        );
        req.extensions_mut().insert(log.clone());
        match catch_unwind(AssertUnwindSafe(|| inner.call(req))) {
            Ok(response) => State::Routing { response, log },
            Err(panic) => State::Done {
                answer: Some((panic_response(panic), log)),
            },
        }
    }

    /// Answers without the router (the access-URL redirect), still logged and counted.
    fn answer_now<S: Service<Request>>(&self, res: Response) -> State<S> {
        let route =
            self.config
                .routes
                .metrics(&self.config.metrics, self.route, self.log_start.method());
        let log = RequestLog::new(self.log_start.request_id(), self.client, route, None, None);
        State::Done {
            answer: Some((res, log)),
        }
    }

    /// Counts, logs and finishes the response (spec/ops.md §1.2 steps 15–17).
    fn finish(self, mut res: Response, log: &RequestLog) -> Response {
        let took = self.start.elapsed();
        let method = self.log_start.method();
        if self.routed {
            RouteTable::check_agreement(
                self.route,
                log.route_missed(),
                method,
                self.log_start.path(),
            );
        }
        let metrics = &self.config.metrics;
        let unmatched;
        let route = match log.route() {
            Some(route) => route,
            None => {
                unmatched = metrics.route(method, self.unmatched);
                &unmatched
            }
        };
        metrics.record(route, log.kind(), res.status(), took, log.body_limit_hit());
        let headers = res.headers_mut();
        if self.no_store {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        }
        headers.insert(
            REQUEST_ID_HEADER.clone(),
            self.log_start.request_id().header_value(),
        );
        if let Some(hsts) = &self.config.hsts {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
        // Every response says what it is (spec/ops.md §1.2 step 17).
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        let cause = res.extensions_mut().remove::<ErrorCause>();
        self.log_start.finish(
            log,
            res.status(),
            took,
            cause.as_ref().map(|c| c.0.as_str()),
        );
        res
    }
}

pin_project! {
    /// The gate's future: waiting for the credential's validation (only when one was
    /// presented), then for the router's answer.
    pub struct GateFuture<S: Service<Request>> {
        #[pin]
        state: State<S>,
        bookkeeping: Option<Bookkeeping>,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateReplace]
    enum State<S: Service<Request>> {
        // Boxed: only requests that present a credential wait here, and the request and
        // the router together would otherwise set the size of every request's future.
        Prechecking {
            pending: Box<Pending<S>>,
        },
        Routing {
            #[pin]
            response: S::Future,
            log: RequestLog,
        },
        Done {
            answer: Option<(Response, RequestLog)>,
        },
    }
}

/// A request waiting for its credential's validation, with the router readied for it.
struct Pending<S> {
    validation: Pin<Box<dyn Future<Output = Prechecked> + Send>>,
    req: Request,
    inner: S,
}

impl<S> Future for GateFuture<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let (res, log) = match this.state.as_mut().project() {
                StateProj::Prechecking { pending } => {
                    let prechecked = ready!(pending.validation.as_mut().poll(cx));
                    let taken = this
                        .state
                        .as_mut()
                        .project_replace(State::Done { answer: None });
                    if let (StateReplace::Prechecking { pending }, Some(bookkeeping)) =
                        (taken, this.bookkeeping.as_ref())
                    {
                        let Pending { req, mut inner, .. } = *pending;
                        let next = bookkeeping.enter(&mut inner, req, Some(prechecked));
                        this.state.set(next);
                    }
                    continue;
                }
                StateProj::Routing { response, log } => {
                    // A panic is answered as the 500 it becomes, logged and counted as
                    // one, and still carries its request id.
                    let res = match catch_unwind(AssertUnwindSafe(|| response.poll(cx))) {
                        Ok(Poll::Pending) => return Poll::Pending,
                        Ok(Poll::Ready(Ok(res))) => res,
                        Ok(Poll::Ready(Err(never))) => match never {},
                        Err(panic) => panic_response(panic),
                    };
                    let log = log.clone();
                    this.state.set(State::Done { answer: None });
                    (res, log)
                }
                StateProj::Done { answer } => match answer.take() {
                    Some(answer) => answer,
                    // Polled after it finished (a future's caller must not): nothing
                    // more to give.
                    None => return Poll::Pending,
                },
            };
            return match this.bookkeeping.take() {
                Some(bookkeeping) => Poll::Ready(Ok(bookkeeping.finish(res, &log))),
                None => Poll::Ready(Ok(res)),
            };
        }
    }
}
