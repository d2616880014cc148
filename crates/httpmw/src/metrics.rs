//! Route-pattern metrics (spec/ops.md §3.3): `coderd_api_requests_processed_total`,
//! `coderd_api_concurrent_requests` and `coderd_api_request_latencies_seconds`, labelled by
//! the matched route pattern (`UNKNOWN` / `STATIC` when nothing matched), never by the raw
//! path, so label cardinality stays bounded. One registry per app: tests get their own.

use std::{sync::Arc, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    code: String,
    method: String,
    path: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    path: String,
}

const LATENCY_BUCKETS: [f64; 11] = [
    0.001, 0.005, 0.010, 0.025, 0.050, 0.100, 0.500, 1.0, 5.0, 10.0, 30.0,
];

/// The API metric families and the registry that exposes them.
#[derive(Debug, Clone)]
pub struct ApiMetrics(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    registry: Registry,
    processed: Family<RequestLabels, Counter>,
    concurrent: Family<RouteLabels, Gauge>,
    latencies: Family<RouteLabels, Histogram>,
    purge_durations: Family<SuccessLabels, Histogram>,
    purged: Family<RecordTypeLabels, Counter>,
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
            purge_durations,
            purged,
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
}

/// Lowers the in-flight gauge when the request ends, however it ends (panics included).
struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Records one request. Install with `Router::layer` so the matched pattern is known.
pub async fn record_metrics(
    State(metrics): State<ApiMetrics>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let path = match req.extensions().get::<MatchedPath>() {
        Some(matched) => matched.as_str().to_owned(),
        None if req.uri().path().starts_with("/api/") => "UNKNOWN".to_owned(),
        None => "STATIC".to_owned(),
    };
    let route = RouteLabels { method, path };
    let gauge = metrics.0.concurrent.get_or_create(&route).clone();
    gauge.inc();
    let in_flight = InFlight(gauge);
    let res = next.run(req).await;
    drop(in_flight);
    metrics
        .0
        .latencies
        .get_or_create(&route)
        .observe(start.elapsed().as_secs_f64());
    let labels = RequestLabels {
        code: res.status().as_u16().to_string(),
        method: route.method,
        path: route.path,
    };
    metrics.0.processed.get_or_create(&labels).inc();
    res
}
