//! One log event per request (spec/ops.md §4.1), enriched by inner layers through a
//! request-scoped [`RequestLog`]. Never logs a token, a cookie or a query string.

use std::{
    sync::{Arc, OnceLock},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use uuid::Uuid;

use crate::request_id::RequestId;

/// Fields inner layers add to the request's log event. Set-once cells: no lock on the
/// hot path.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Fields>);

#[derive(Debug, Default)]
struct Fields {
    requestor: OnceLock<(Uuid, String)>,
    api_key_id: OnceLock<String>,
}

impl RequestLog {
    pub fn set_requestor(&self, id: Uuid, name: &str) {
        let _ = self.0.requestor.set((id, name.to_owned()));
    }

    pub fn set_api_key_id(&self, id: &str) {
        let _ = self.0.api_key_id.set(id.to_owned());
    }
}

pub async fn log_requests(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0);
    let log = RequestLog::default();
    req.extensions_mut().insert(log.clone());
    let res = next.run(req).await;
    let took = start.elapsed();
    let status = res.status().as_u16();
    let (requestor_id, requestor_name) = log
        .0
        .requestor
        .get()
        .map_or((None, None), |(id, name)| (Some(*id), Some(name.as_str())));
    let auth_type = if requestor_id.is_some() {
        "api_key"
    } else {
        "none"
    };
    // Unmatched routes get a fixed label (decisions.md 40) so labels stay bounded.
    let unmatched = if path.starts_with("/api/") {
        "UNKNOWN"
    } else {
        "STATIC"
    };
    macro_rules! event {
        ($level:ident) => {
            tracing::$level!(
                request_id = %Opt(request_id),
                method = %method,
                path = %path,
                route = route.as_deref().unwrap_or(unmatched),
                status_code = status,
                took = ?took,
                latency_ms = took.as_millis() as u64,
                auth_type,
                requestor_id = %Opt(requestor_id),
                requestor_name = %Opt(requestor_name),
                api_key_id = %Opt(log.0.api_key_id.get()),
                "{method}"
            )
        };
    }
    // 5xx at warn, the rest at debug (Coder's levels).
    if status >= 500 {
        event!(warn);
    } else {
        event!(debug);
    }
    res
}

/// Displays the value, or nothing for `None`.
struct Opt<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for Opt<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => Ok(()),
        }
    }
}
