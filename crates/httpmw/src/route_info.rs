//! Route info (spec/ops.md §3.1): the full pattern of the route that matched, resolved by
//! the router before the handler runs (so nested and merged routers give their whole
//! pattern, never `/*`), recorded in the request's [`RequestLog`] with its metric handles,
//! and the route's in-flight gauge raised. Unmatched requests never reach this layer; the
//! gate labels them `UNKNOWN` (under `/api/`) or `STATIC`.
//!
//! It is the only layer mounted on every route (`Router::route_layer`): the rest of the
//! per-request bookkeeping runs once, around the router, in [`crate::gate`].

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use axum::{
    extract::{MatchedPath, Request},
    response::Response,
};
use tower::{Layer, Service};

use crate::{metrics::ApiMetrics, request_log::RequestLog};

#[derive(Debug, Clone)]
pub struct RouteInfoLayer {
    metrics: ApiMetrics,
}

impl RouteInfoLayer {
    pub fn new(metrics: ApiMetrics) -> RouteInfoLayer {
        RouteInfoLayer { metrics }
    }
}

impl<S> Layer<S> for RouteInfoLayer {
    type Service = RouteInfo<S>;

    fn layer(&self, inner: S) -> RouteInfo<S> {
        RouteInfo {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RouteInfo<S> {
    inner: S,
    metrics: ApiMetrics,
}

impl<S> Service<Request> for RouteInfo<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> S::Future {
        if let (Some(matched), Some(log)) = (
            req.extensions().get::<MatchedPath>(),
            req.extensions().get::<RequestLog>(),
        ) {
            log.set_route(self.metrics.route(req.method(), matched.as_str()));
        }
        self.inner.call(req)
    }
}
