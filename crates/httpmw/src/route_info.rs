//! Route info (spec/ops.md §3.1): the full pattern of the route a request is for, resolved
//! by the gate before the router runs, from a table of every pattern the router holds.
//!
//! The table is flat: a merged or nested router contributes its routes with their whole
//! pattern (`/api/v2/users/{user}`), never a mount point's `/*` (Coder's workspace-proxy
//! bug). It matches with the same matcher (matchit) and the same patterns as axum's
//! router, so both pick the same route for a path; the gate checks that agreement on
//! every request in debug builds ([`RouteTable::check_agreement`]). Requests no pattern
//! matches are labelled `UNKNOWN` (under `/api/`) or `STATIC` by the gate.
//!
//! Why not read axum's `MatchedPath` in a layer on every route, as before: that layer
//! wrapped every route in one more boxed service, and the extension cost a map insert;
//! together with the lookup of the route's metrics, about a tenth of a health check's
//! instructions (cachegrind, session 11).

use std::sync::{Arc, OnceLock};

use axum::http::Method;

use crate::metrics::{ApiMetrics, RouteMetrics};

/// Every route pattern of the application, and each one's metric handles per method.
#[derive(Debug, Default)]
pub struct RouteTable {
    matcher: matchit::Router<usize>,
    routes: Vec<Route>,
}

#[derive(Debug)]
struct Route {
    pattern: Arc<str>,
    /// Created on a method's first request, so only routes that answered appear in the
    /// exposition (as when each request looked its handles up).
    by_method: [OnceLock<RouteMetrics>; COMMON_METHODS],
}

const COMMON_METHODS: usize = 7;

fn method_slot(method: &Method) -> Option<usize> {
    Some(match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        Method::OPTIONS => 6,
        _ => return None,
    })
}

/// A pattern the router holds that the table could not take.
#[derive(Debug, thiserror::Error)]
#[error("route pattern {pattern:?}: {reason}")]
pub struct RouteTableError {
    pattern: String,
    reason: String,
}

/// Where a request is going: a route of the table, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteId(Option<usize>);

impl RouteId {
    pub fn is_matched(self) -> bool {
        self.0.is_some()
    }
}

impl RouteTable {
    /// Adds a pattern in axum's syntax (`{param}`, `{*rest}`). The same pattern may be
    /// added more than once (a path with several documented operations); the router
    /// itself refuses real conflicts, and so does the table.
    pub fn insert(&mut self, pattern: &str) -> Result<(), RouteTableError> {
        if self.routes.iter().any(|r| &*r.pattern == pattern) {
            return Ok(());
        }
        self.matcher
            .insert(pattern, self.routes.len())
            .map_err(|e| RouteTableError {
                pattern: pattern.to_owned(),
                reason: e.to_string(),
            })?;
        self.routes.push(Route {
            pattern: Arc::from(pattern),
            by_method: Default::default(),
        });
        Ok(())
    }

    /// The route for a request path (the raw path, as axum's router matches it).
    pub fn find(&self, path: &str) -> RouteId {
        RouteId(self.matcher.at(path).ok().map(|m| *m.value))
    }

    /// The metric handles of a matched route for a method.
    pub fn metrics(
        &self,
        metrics: &ApiMetrics,
        route: RouteId,
        method: &Method,
    ) -> Option<RouteMetrics> {
        let route = &self.routes[route.0?];
        Some(match method_slot(method) {
            Some(slot) => route.by_method[slot]
                .get_or_init(|| metrics.route(method, &route.pattern))
                .clone(),
            None => metrics.route(method, &route.pattern),
        })
    }

    /// Every pattern, in the order they were added.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| &*r.pattern)
    }

    /// Debug builds: the table and the router agree on whether a route matched. The
    /// router's fallback marks the requests it answered
    /// ([`crate::request_log::RequestLog::record_route_miss`]); a CORS layer
    /// around the router may answer a preflight (`OPTIONS`) before either looks.
    pub fn check_agreement(route: RouteId, router_missed: bool, method: &Method, path: &str) {
        if cfg!(debug_assertions) && *method != Method::OPTIONS {
            assert!(
                route.is_matched() != router_missed,
                "the gate's route table and the router disagree about {method} {path}: \
                 table matched = {}, router matched = {}; register the route's pattern",
                route.is_matched(),
                !router_missed,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(patterns: &[&str]) -> RouteTable {
        let mut table = RouteTable::default();
        for pattern in patterns {
            table.insert(pattern).unwrap();
        }
        table
    }

    fn label(table: &RouteTable, path: &str) -> Option<String> {
        let metrics = ApiMetrics::default();
        table
            .metrics(&metrics, table.find(path), &Method::GET)
            .map(|route| route.path().to_owned())
    }

    #[test]
    fn requests_get_the_whole_pattern_of_their_route() {
        let table = table(&[
            "/api/v2/users/{user}",
            "/api/v2/users/me/keys",
            "/api/v2/aibridge/openai/v1/{*rest}",
            "/healthz",
        ]);
        assert_eq!(
            label(&table, "/api/v2/users/alice").as_deref(),
            Some("/api/v2/users/{user}")
        );
        // A static segment wins over a parameter, as in axum's router.
        assert_eq!(
            label(&table, "/api/v2/users/me/keys").as_deref(),
            Some("/api/v2/users/me/keys")
        );
        assert_eq!(
            label(&table, "/api/v2/aibridge/openai/v1/chat/completions").as_deref(),
            Some("/api/v2/aibridge/openai/v1/{*rest}")
        );
        assert_eq!(label(&table, "/healthz/extra"), None);
        assert_eq!(label(&table, "/api/v2/users/alice/keys"), None);
        assert_eq!(label(&table, "/static/app.js"), None);
    }

    #[test]
    fn a_pattern_added_twice_is_one_route_and_conflicts_are_refused() {
        let mut table = table(&["/api/v2/users/{user}", "/api/v2/users/{user}"]);
        assert_eq!(table.patterns().count(), 1);
        assert!(table.insert("/api/v2/users/{id}").is_err());
    }

    #[test]
    fn each_method_has_its_own_series_and_invented_ones_share_one() {
        use std::time::Duration;

        use axum::http::StatusCode;

        use crate::metrics::RequestKind;

        let table = table(&["/api/v2/users/{user}"]);
        let metrics = ApiMetrics::default();
        let route = table.find("/api/v2/users/me");
        for method in [
            Method::GET,
            Method::GET,
            Method::from_bytes(b"BREW").unwrap(),
        ] {
            let series = table.metrics(&metrics, route, &method).unwrap();
            metrics.record(
                &series,
                RequestKind::Http,
                StatusCode::OK,
                Duration::ZERO,
                false,
            );
        }
        let text = metrics.render();
        for line in [
            r#"coderd_api_requests_processed_total{code="200",method="GET",path="/api/v2/users/{user}"} 2"#,
            r#"coderd_api_requests_processed_total{code="200",method="OTHER",path="/api/v2/users/{user}"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in {text}");
        }
    }
}
