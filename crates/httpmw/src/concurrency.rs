//! `ConcurrencyLimit` (spec/ops.md §6; decisions.md 40): one in-flight counter for a route
//! group; over the limit, 503 at once. A request counts until its response body is done, so
//! a long stream holds its slot as it does in Coder (whose handler returns after streaming).

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt;

use crate::error::ApiError;

pub const AT_CAPACITY: &str = "AI Bridge is currently at capacity. Please try again later.";

#[derive(Debug, Clone)]
pub struct ConcurrencyLimit {
    max: usize,
    in_flight: Arc<AtomicUsize>,
}

impl ConcurrencyLimit {
    /// `None` when `max` is 0 (off).
    pub fn new(max: usize) -> Option<ConcurrencyLimit> {
        (max > 0).then(|| ConcurrencyLimit {
            max,
            in_flight: Arc::default(),
        })
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn try_acquire(&self) -> Option<Slot> {
        let mut current = self.in_flight.load(Ordering::Relaxed);
        loop {
            if current >= self.max {
                return None;
            }
            match self.in_flight.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(Slot(self.in_flight.clone()));
                }
                Err(seen) => current = seen,
            }
        }
    }
}

/// A held slot; released on drop.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub async fn concurrency_limit(
    State(limit): State<ConcurrencyLimit>,
    req: Request,
    next: Next,
) -> Response {
    let Some(slot) = limit.try_acquire() else {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, AT_CAPACITY).into_response();
    };
    let res = next.run(req).await;
    let (parts, body) = res.into_parts();
    // The slot lives as long as the body: released when the stream ends or is dropped.
    let body = body.map_frame(move |frame| {
        let _held = &slot;
        frame
    });
    Response::from_parts(parts, Body::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_released_on_drop() {
        let limit = ConcurrencyLimit::new(2).unwrap();
        let a = limit.try_acquire().unwrap();
        let b = limit.try_acquire().unwrap();
        assert!(limit.try_acquire().is_none());
        drop(a);
        assert_eq!(limit.in_flight(), 1);
        assert!(limit.try_acquire().is_some());
        drop(b);
        assert!(ConcurrencyLimit::new(0).is_none());
    }
}
