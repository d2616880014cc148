//! One log event per request (spec/ops.md §4.1), enriched by inner layers through a
//! request-scoped [`RequestLog`]. Never logs a token, a cookie or a query string.

use std::{
    net::SocketAddr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use axum::{
    extract::Request,
    http::{Method, StatusCode, Uri},
};
use uuid::Uuid;

use crate::{
    authn::actor::Prechecked,
    metrics::{InFlight, ProbeResult, RequestKind, RouteMetrics, WebsocketDuration},
    request_id::RequestId,
};

/// What the gate knows of a request, shared with the layers and handlers inside it: its
/// id, its credential's precheck, and the fields inner layers add to its log event.
/// Set-once cells: no lock on the hot path. One request extension instead of one each:
/// every extension is a boxed value in a map that grows as they arrive.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Fields>);

#[derive(Debug, Default)]
struct Fields {
    request_id: RequestId,
    /// The client's address: the TCP peer, or what a trusted proxy reported
    /// ([`crate::client_ip`]). `None` when the request did not come over TCP.
    client: Option<SocketAddr>,
    /// The credential's precheck (spec/auth.md §1.8), when the gate ran one.
    prechecked: Option<Prechecked>,
    requestor: OnceLock<(Uuid, String)>,
    api_key_id: OnceLock<String>,
    auth_type: OnceLock<&'static str>,
    /// (workspace id, agent id, agent name) on agent-token routes (decisions.md 39).
    agent: OnceLock<(Uuid, Uuid, String)>,
    /// The matched route ([`crate::route_info`]) and its in-flight gauge, lowered when the
    /// last holder of this record (the gate, or the request if a handler keeps it) lets
    /// go, however the request ended.
    route: Option<(RouteMetrics, InFlight)>,
    /// The router's fallback answered: no route matched (the gate's debug check).
    route_missed: AtomicBool,
    /// For a websocket upgrade, when the gate saw it: its duration runs from there.
    websocket_since: Option<Instant>,
    /// A handler took the websocket over ([`RequestLog::hold_websocket`]).
    held_open: AtomicBool,
    /// A body limit refused the request (Coder's `httpapi.RecordRequestBodyLimit`).
    body_limit: AtomicBool,
}

/// An accepted websocket's hold on its route's metrics: `concurrent_websockets` stays up
/// and the duration keeps running until this is dropped, when the connection ends.
#[derive(Debug)]
pub struct WebsocketSpan {
    // Dropped in this order: the duration is observed, then the gauge lowered.
    _duration: WebsocketDuration,
    log: RequestLog,
}

impl WebsocketSpan {
    /// Counts a liveness probe of this connection on its route.
    pub fn record_probe(&self, result: ProbeResult) {
        if let Some(route) = self.log.route() {
            route.record_probe(result);
        }
    }
}

impl RequestLog {
    /// The record of a request; `websocket_since` is when the gate saw a websocket
    /// upgrade. A matched `route` counts the request in flight on it from now on.
    pub fn new(
        request_id: RequestId,
        client: Option<SocketAddr>,
        route: Option<RouteMetrics>,
        websocket_since: Option<Instant>,
        prechecked: Option<Prechecked>,
    ) -> RequestLog {
        let route = route.map(|route| {
            let in_flight = InFlight::start(&route, websocket_since.is_some());
            (route, in_flight)
        });
        RequestLog(Arc::new(Fields {
            request_id,
            client,
            prechecked,
            route,
            websocket_since,
            ..Fields::default()
        }))
    }

    /// The client address recorded by the gate for the request these extensions belong
    /// to.
    pub fn client_in(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
        extensions.get::<RequestLog>()?.0.client
    }

    /// The id of the request these extensions belong to; nil outside the gate.
    pub fn request_id_in(extensions: &axum::http::Extensions) -> uuid::Uuid {
        extensions
            .get::<RequestLog>()
            .map_or_else(uuid::Uuid::nil, |log| log.0.request_id.0)
    }

    /// The precheck of the request these extensions belong to, if the gate ran one.
    pub fn prechecked_in(extensions: &axum::http::Extensions) -> Option<&Prechecked> {
        extensions.get::<RequestLog>()?.0.prechecked.as_ref()
    }

    /// How the gate counts this request.
    pub fn kind(&self) -> RequestKind {
        match self.0.websocket_since {
            None => RequestKind::Http,
            Some(_) => RequestKind::Websocket {
                held_open: self.0.held_open.load(Ordering::Acquire),
            },
        }
    }

    /// For a websocket handler that accepted the upgrade: keeps the connection counted on
    /// its route until the returned span is dropped. `None` for anything but a websocket
    /// on a matched route, or when already taken.
    pub fn hold_websocket(&self) -> Option<WebsocketSpan> {
        let since = self.0.websocket_since?;
        let (route, _) = self.0.route.as_ref()?;
        if self.0.held_open.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(WebsocketSpan {
            _duration: WebsocketDuration::start(route, since),
            log: self.clone(),
        })
    }

    /// Marks the request as refused by a body limit, for `requests_too_large_total`.
    pub fn record_request_body_limit(&self) {
        self.0.body_limit.store(true, Ordering::Release);
    }

    pub fn body_limit_hit(&self) -> bool {
        self.0.body_limit.load(Ordering::Acquire)
    }

    pub fn set_requestor(&self, id: Uuid, name: &str) {
        let _ = self.0.requestor.set((id, name.to_owned()));
    }

    pub fn set_api_key_id(&self, id: &str) {
        let _ = self.0.api_key_id.set(id.to_owned());
    }

    /// The calling agent, so agent traffic can be traced to its workspace.
    pub fn set_agent(&self, workspace_id: Uuid, agent_id: Uuid, agent_name: &str) {
        let _ = self
            .0
            .agent
            .set((workspace_id, agent_id, agent_name.to_owned()));
    }

    /// The matched route, if there is one.
    pub fn route(&self) -> Option<&RouteMetrics> {
        self.0.route.as_ref().map(|(route, _)| route)
    }

    /// For the router's fallback: no route matched this request.
    pub fn record_route_miss(&self) {
        self.0.route_missed.store(true, Ordering::Release);
    }

    pub fn route_missed(&self) -> bool {
        self.0.route_missed.load(Ordering::Acquire)
    }

    /// `api_key`, `oauth2` or `agent` (decisions.md 39).
    pub fn set_auth_type(&self, auth_type: &'static str) {
        let _ = self.0.auth_type.set(auth_type);
    }
}

/// What kind of request this is, for attribution (decisions.md 39): a websocket upgrade,
/// an agent's call, or plain HTTP.
fn request_type(req: &Request, websocket: bool) -> &'static str {
    if websocket {
        "websocket"
    } else if req.uri().path().starts_with("/api/v2/workspaceagents/me/") {
        "agent-rpc"
    } else {
        "http"
    }
}

/// `Upgrade: websocket` (Coder's `httpapi.IsWebsocketUpgrade`).
pub fn is_websocket_upgrade(req: &Request) -> bool {
    req.headers()
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The query parameters safe to log (spec/ops.md §4.2): `page`, `limit`, `offset` and
/// `path` by value, `ids` and `template_ids` as counts; nothing else (tokens, `q`, …).
pub fn safe_query(query: &str) -> String {
    use std::collections::BTreeMap;
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let lower = key.to_ascii_lowercase();
        if matches!(lower.as_str(), "page" | "limit" | "offset" | "path") {
            values
                .entry(key.into_owned())
                .or_default()
                .push(value.into_owned());
        } else if matches!(lower.as_str(), "ids" | "template_ids") {
            *counts.entry(key.into_owned()).or_default() += value.split(',').count();
        }
    }
    let mut out: Vec<String> = values
        .into_iter()
        .map(|(k, v)| {
            if v.len() == 1 {
                format!("query_{k}={}", v[0])
            } else {
                format!("query_{k}={v:?}")
            }
        })
        .collect();
    out.extend(
        counts
            .into_iter()
            .map(|(k, n)| format!("query_{k}_count={n}")),
    );
    out.join(" ")
}

/// What the log needs from the request, taken before the request is handed on. Cheap
/// handles (reference-counted), turned into text only if an event is written.
#[derive(Debug)]
pub struct LogStart {
    method: Method,
    uri: Uri,
    request_id: RequestId,
    request_type: &'static str,
}

impl LogStart {
    /// `websocket`: the request is a websocket upgrade ([`is_websocket_upgrade`]).
    pub fn of(req: &Request, request_id: RequestId, websocket: bool) -> LogStart {
        LogStart {
            method: req.method().clone(),
            uri: req.uri().clone(),
            request_id,
            request_type: request_type(req, websocket),
        }
    }

    /// The request's path.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn request_id(&self) -> RequestId {
        self.request_id
    }

    /// Writes the request's one event: 5xx at warn, the rest at debug (Coder's levels),
    /// skipping the formatting when the subscriber would drop the event anyway. `cause` is
    /// an error's internal cause ([`crate::error::ErrorCause`]): logged here, never sent.
    pub fn finish(
        self,
        log: &RequestLog,
        status: StatusCode,
        took: std::time::Duration,
        cause: Option<&str>,
    ) {
        let status = status.as_u16();
        let enabled = if status >= 500 {
            tracing::enabled!(tracing::Level::WARN)
        } else {
            tracing::enabled!(tracing::Level::DEBUG)
        };
        if !enabled {
            return;
        }
        let LogStart {
            method,
            uri,
            request_id,
            request_type,
        } = self;
        let path = uri.path();
        let agent = log.0.agent.get();
        let (workspace_id, agent_id, agent_name) = match agent {
            Some((w, a, n)) => (Some(*w), Some(*a), Some(n.as_str())),
            None => (None, None, None),
        };
        let query = uri.query().map(safe_query).unwrap_or_default();
        let (requestor_id, requestor_name) = log
            .0
            .requestor
            .get()
            .map_or((None, None), |(id, name)| (Some(*id), Some(name.as_str())));
        let auth_type = match log.0.auth_type.get() {
            Some(t) => *t,
            None if requestor_id.is_some() => "api_key",
            None => "none",
        };
        // Unmatched routes get a fixed label (decisions.md 40) so labels stay bounded.
        let route = match log.route() {
            Some(route) => route.path(),
            None => unmatched_route(path),
        };
        macro_rules! event {
            ($level:ident) => {
                tracing::$level!(
                    service = "http-api",
                    request_type,
                    request_id = %request_id.0,
                    method = %method,
                    path = %path,
                    query = %query,
                    route,
                    status_code = status,
                    took = ?took,
                    latency_ms = took.as_millis() as u64,
                    auth_type,
                    requestor_id = %Opt(requestor_id),
                    requestor_name = %Opt(requestor_name),
                    api_key_id = %Opt(log.0.api_key_id.get()),
                    workspace_id = %Opt(workspace_id),
                    agent_id = %Opt(agent_id),
                    agent_name = %Opt(agent_name),
                    cause = %Opt(cause),
                    "{method}"
                )
            };
        }
        if status >= 500 {
            event!(warn);
        } else {
            event!(debug);
        }
    }
}

/// The route label of a request no route matched (decisions.md 40).
pub fn unmatched_route(path: &str) -> &'static str {
    if path.starts_with("/api/") {
        "UNKNOWN"
    } else {
        "STATIC"
    }
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

/// [`RequestLog::record_request_body_limit`] for code that holds only the request's
/// extensions.
pub fn record_request_body_limit(extensions: &axum::http::Extensions) {
    if let Some(log) = extensions.get::<RequestLog>() {
        log.record_request_body_limit();
    }
}

#[cfg(test)]
mod tests {
    use super::safe_query;

    #[test]
    fn only_safe_parameters_are_logged() {
        assert_eq!(
            safe_query(
                "page=2&LIMIT=10&offset=5&path=/x&q=owner:me&coder_session_token=abc-def&access_token=t&ids=a,b,c&ids=d&template_ids=x"
            ),
            "query_LIMIT=10 query_offset=5 query_page=2 query_path=/x query_ids_count=4 query_template_ids_count=1"
        );
        assert_eq!(safe_query("limit=1&limit=2"), "query_limit=[\"1\", \"2\"]");
        assert_eq!(safe_query("coder_session_token=secret"), "");
    }
}
