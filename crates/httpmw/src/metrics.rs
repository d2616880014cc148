//! Route-pattern metrics (spec/ops.md §3.3): `coderd_api_requests_processed_total`,
//! `coderd_api_concurrent_requests` and `coderd_api_request_latencies_seconds`, and for
//! websocket upgrades `coderd_api_concurrent_websockets` and
//! `coderd_api_websocket_durations_seconds` instead of the last two, and
//! `coderd_api_websocket_probes_total` from the websocket liveness prober, labelled by the
//! matched route pattern (`UNKNOWN` / `STATIC` when nothing matched), never by the raw
//! path, so label cardinality stays bounded. One registry per app: tests get their own.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use axum::http::{Method, StatusCode};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use rustc_hash::FxBuildHasher;

/// Label values are shared (`Arc<str>`), so recording a request allocates nothing.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    code: u16,
    method: Arc<str>,
    path: Arc<str>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: Arc<str>,
    path: Arc<str>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TooLargeLabels {
    method: Arc<str>,
    path: Arc<str>,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    path: Arc<str>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    path: Arc<str>,
    result: &'static str,
}

/// One route's metric handles, resolved once per (pattern, method) and then shared: a
/// request takes one reference, not one per handle, and finds its status code's counter
/// without hashing its labels.
#[derive(Debug, Clone)]
pub struct RouteMetrics(Arc<RouteHandles>);

#[derive(Debug)]
struct RouteHandles {
    labels: RouteLabels,
    /// `requests_processed_total` by status code, as the route has answered so far.
    processed: RwLock<Vec<(u16, Counter)>>,
    concurrent: Gauge,
    latencies: Histogram,
    websockets: Gauge,
    websocket_durations: Histogram,
    /// The family, not its series: most routes are never probed, and a series appears
    /// only once a probe on the route has a result.
    probes: Family<ProbeLabels, Counter>,
}

impl RouteMetrics {
    /// The route pattern (`UNKNOWN` / `STATIC` for unmatched requests).
    pub fn path(&self) -> &str {
        &self.0.labels.path
    }

    /// Counts one websocket liveness probe on this route by its result.
    pub fn record_probe(&self, result: ProbeResult) {
        self.0
            .probes
            .get_or_create(&ProbeLabels {
                path: self.0.labels.path.clone(),
                result: result.as_str(),
            })
            .inc();
    }
}

/// How a websocket liveness probe (a ping) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    /// The pong came back before the next probe.
    Success,
    /// No pong by the next probe: the connection is closed as dead.
    Timeout,
    /// The ping could not be written: the connection is gone.
    Error,
}

impl ProbeResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeResult::Success => "success",
            ProbeResult::Timeout => "timeout",
            ProbeResult::Error => "error",
        }
    }
}

/// Patterns are bounded by the routing table, unmatched paths by the two fixed labels;
/// nobody outside chooses the keys, so a fast hash will do.
type RouteTable = HashMap<Box<str>, Vec<(Method, RouteMetrics)>, FxBuildHasher>;

const LATENCY_BUCKETS: [f64; 11] = [
    0.001, 0.005, 0.010, 0.025, 0.050, 0.100, 0.500, 1.0, 5.0, 10.0, 30.0,
];

/// 1 ms, 1 s, 1 min, 1 h, 15 h, 30 h (spec/ops.md §3.3.2).
const WEBSOCKET_BUCKETS: [f64; 6] = [0.001, 1.0, 60.0, 3600.0, 54000.0, 108000.0];

/// The API metric families and the registry that exposes them.
#[derive(Debug, Clone)]
pub struct ApiMetrics(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    registry: Registry,
    processed: Family<RequestLabels, Counter>,
    concurrent: Family<RouteLabels, Gauge>,
    latencies: Family<RouteLabels, Histogram>,
    websockets: Family<PathLabels, Gauge>,
    websocket_durations: Family<PathLabels, Histogram>,
    probes: Family<ProbeLabels, Counter>,
    too_large: Family<TooLargeLabels, Counter>,
    purge_durations: Family<SuccessLabels, Histogram>,
    purged: Family<RecordTypeLabels, Counter>,
    routes: RwLock<RouteTable>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SuccessLabels {
    success: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecordTypeLabels {
    record_type: &'static str,
}

/// spec/ops.md §11.5.
const PURGE_BUCKETS: [f64; 7] = [1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0];

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics::new()
    }
}

impl ApiMetrics {
    pub fn new() -> ApiMetrics {
        let mut registry = Registry::default();
        let api = registry
            .sub_registry_with_prefix("coderd")
            .sub_registry_with_prefix("api");
        let processed = Family::<RequestLabels, Counter>::default();
        // Registered without `_total`: the encoder appends it.
        api.register(
            "requests_processed",
            "The total number of processed API requests",
            processed.clone(),
        );
        let concurrent = Family::<RouteLabels, Gauge>::default();
        api.register(
            "concurrent_requests",
            "The number of concurrent API requests",
            concurrent.clone(),
        );
        let latencies = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(LATENCY_BUCKETS)
        });
        api.register(
            "request_latencies_seconds",
            "Latency distribution of requests in seconds",
            latencies.clone(),
        );
        let websockets = Family::<PathLabels, Gauge>::default();
        api.register(
            "concurrent_websockets",
            "The total number of concurrent API websockets",
            websockets.clone(),
        );
        let websocket_durations = Family::<PathLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(WEBSOCKET_BUCKETS)
        });
        api.register(
            "websocket_durations_seconds",
            "Websocket duration distribution of requests in seconds",
            websocket_durations.clone(),
        );
        let probes = Family::<ProbeLabels, Counter>::default();
        api.register(
            "websocket_probes",
            "The total number of websocket liveness probes, by result",
            probes.clone(),
        );
        let too_large = Family::<TooLargeLabels, Counter>::default();
        api.register(
            "requests_too_large",
            "The total number of requests answered 413, by why",
            too_large.clone(),
        );
        let purge = registry
            .sub_registry_with_prefix("coderd")
            .sub_registry_with_prefix("dbpurge");
        let purge_durations = Family::<SuccessLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(PURGE_BUCKETS)
        });
        purge.register(
            "iteration_duration_seconds",
            "Time each purge iteration takes",
            purge_durations.clone(),
        );
        let purged = Family::<RecordTypeLabels, Counter>::default();
        purge.register(
            "records_purged",
            "Total number of records purged by type",
            purged.clone(),
        );
        ApiMetrics(Arc::new(Inner {
            registry,
            processed,
            concurrent,
            latencies,
            websockets,
            websocket_durations,
            probes,
            too_large,
            purge_durations,
            purged,
            routes: RwLock::default(),
        }))
    }

    /// Records one purge iteration (spec/ops.md §11.5).
    pub fn record_purge(&self, success: bool, seconds: f64, purged: &[(&'static str, u64)]) {
        let success = if success { "true" } else { "false" };
        self.0
            .purge_durations
            .get_or_create(&SuccessLabels { success })
            .observe(seconds);
        for (record_type, count) in purged {
            self.0
                .purged
                .get_or_create(&RecordTypeLabels { record_type })
                .inc_by(*count);
        }
    }

    /// The Prometheus text exposition (format 0.0.4, as Coder's Go client writes it).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.0.registry)
        {
            tracing::warn!(error = %e, "metrics did not encode");
        }
        out
    }

    /// The handles for requests to `path` (a route pattern, or `UNKNOWN` / `STATIC`)
    /// with `method`: one shared read lock on the hot path.
    pub fn route(&self, method: &Method, path: &str) -> RouteMetrics {
        let method = &bounded(method);
        if let Some(found) = read(&self.0.routes).get(path).and_then(|by_method| {
            by_method
                .iter()
                .find(|(m, _)| m == method)
                .map(|(_, r)| r.clone())
        }) {
            return found;
        }
        let labels = RouteLabels {
            method: Arc::from(method.as_str()),
            path: Arc::from(path),
        };
        let by_path = PathLabels {
            path: labels.path.clone(),
        };
        let route = RouteMetrics(Arc::new(RouteHandles {
            processed: RwLock::default(),
            concurrent: self.0.concurrent.get_or_create_owned(&labels),
            latencies: self.0.latencies.get_or_create_owned(&labels),
            websockets: self.0.websockets.get_or_create_owned(&by_path),
            websocket_durations: self.0.websocket_durations.get_or_create_owned(&by_path),
            probes: self.0.probes.clone(),
            labels,
        }));
        let mut routes = self
            .0
            .routes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let by_method = routes.entry(Box::from(path)).or_default();
        match by_method.iter().find(|(m, _)| m == method) {
            Some((_, existing)) => existing.clone(),
            None => {
                by_method.push((method.clone(), route.clone()));
                route
            }
        }
    }

    /// Records one finished request on its route. A websocket's duration is observed
    /// here only when no handler kept it open (its span observes it otherwise). A 413 is
    /// also counted in `requests_too_large_total`, as `request_body` when a body limit
    /// was what refused it (`body_limit`), else `other` (spec/ops.md §3.3.2, T17).
    pub fn record(
        &self,
        route: &RouteMetrics,
        kind: RequestKind,
        status: StatusCode,
        took: Duration,
        body_limit: bool,
    ) {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            let reason = if body_limit { "request_body" } else { "other" };
            self.0
                .too_large
                .get_or_create(&TooLargeLabels {
                    method: route.0.labels.method.clone(),
                    path: route.0.labels.path.clone(),
                    reason,
                })
                .inc();
        }
        match kind {
            RequestKind::Http => route.0.latencies.observe(took.as_secs_f64()),
            RequestKind::Websocket { held_open: false } => {
                route.0.websocket_durations.observe(took.as_secs_f64());
            }
            RequestKind::Websocket { held_open: true } => {}
        }
        self.count_processed(route, status.as_u16());
    }

    fn count_processed(&self, route: &RouteMetrics, code: u16) {
        let count = |by_code: &[(u16, Counter)]| {
            by_code
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, counter)| counter.inc())
                .is_some()
        };
        let processed = &route.0.processed;
        if count(&processed.read().unwrap_or_else(PoisonError::into_inner)) {
            return;
        }
        let mut by_code = processed.write().unwrap_or_else(PoisonError::into_inner);
        if !count(&by_code) {
            let counter = self.0.processed.get_or_create_owned(&RequestLabels {
                code,
                method: route.0.labels.method.clone(),
                path: route.0.labels.path.clone(),
            });
            counter.inc();
            by_code.push((code, counter));
        }
    }
}

fn read(routes: &RwLock<RouteTable>) -> std::sync::RwLockReadGuard<'_, RouteTable> {
    routes.read().unwrap_or_else(PoisonError::into_inner)
}

/// Any method is routable (`any()` routes), so extension methods share one label: a
/// client inventing methods must not grow the route table or the label sets.
fn bounded(method: &Method) -> Method {
    match *method {
        Method::GET
        | Method::HEAD
        | Method::POST
        | Method::PUT
        | Method::DELETE
        | Method::PATCH
        | Method::OPTIONS
        | Method::CONNECT
        | Method::TRACE => method.clone(),
        _ => Method::from_bytes(b"OTHER").unwrap_or_default(),
    }
}

/// How a request is counted: plain HTTP, or a websocket upgrade (spec/ops.md §3.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Http,
    /// `held_open`: a handler accepted it and keeps the connection (and its gauge).
    Websocket {
        held_open: bool,
    },
}

/// Holds a route's in-flight gauge up while its request runs and lowers it however the
/// request ends (an answer, a panic, or the client going away). A websocket counts in
/// `concurrent_websockets` instead, for as long as its connection is held.
#[derive(Debug)]
pub struct InFlight(Gauge);

impl InFlight {
    pub fn start(route: &RouteMetrics, websocket: bool) -> InFlight {
        let gauge = if websocket {
            &route.0.websockets
        } else {
            &route.0.concurrent
        };
        gauge.inc();
        InFlight(gauge.clone())
    }
}

/// A websocket connection's time on its route, observed when the connection ends.
#[derive(Debug)]
pub struct WebsocketDuration {
    histogram: Histogram,
    since: std::time::Instant,
}

impl WebsocketDuration {
    pub fn start(route: &RouteMetrics, since: std::time::Instant) -> WebsocketDuration {
        WebsocketDuration {
            histogram: route.0.websocket_durations.clone(),
            since,
        }
    }
}

impl Drop for WebsocketDuration {
    fn drop(&mut self) {
        self.histogram.observe(self.since.elapsed().as_secs_f64());
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
