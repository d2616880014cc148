//! A fresh request id per request (incoming ids are ignored, decisions.md 40), sent back
//! in `X-Coder-Request-Id`.

use std::cell::RefCell;

use axum::http::{HeaderName, HeaderValue};
use rand::{Rng, SeedableRng, rngs::SmallRng};
use uuid::Uuid;

pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-coder-request-id");

thread_local! {
    static ID_SOURCE: RefCell<SmallRng> = RefCell::new(SmallRng::from_seed(rand::random()));
}

/// The nil id (the default) stands for a request that did not pass the gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestId(pub Uuid);

impl RequestId {
    /// A random (v4) id. An id has to be unique, not unpredictable: nothing trusts one
    /// (incoming ids are ignored, and it authorizes nothing), so it comes from a fast
    /// per-thread generator seeded from the thread's CSPRNG rather than from the CSPRNG
    /// itself, whose cost per id was a tenth of the gate's own work.
    pub fn fresh() -> RequestId {
        let mut bytes = [0; 16];
        ID_SOURCE.with_borrow_mut(|source| source.fill_bytes(&mut bytes));
        RequestId(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }

    pub fn header_value(self) -> HeaderValue {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = self.0.hyphenated().encode_lower(&mut buf);
        // A hyphenated UUID is always a valid header value.
        HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

#[cfg(test)]
mod tests {
    use super::RequestId;

    #[test]
    fn fresh_ids_are_distinct_v4_uuids() {
        let a = RequestId::fresh();
        let b = RequestId::fresh();
        assert_ne!(a, b);
        assert_eq!(a.0.get_version_num(), 4);
        assert_eq!(a.header_value().to_str().unwrap(), a.0.to_string());
    }

    #[test]
    fn threads_draw_different_ids() {
        let here: Vec<RequestId> = (0..4).map(|_| RequestId::fresh()).collect();
        let there = std::thread::spawn(|| (0..4).map(|_| RequestId::fresh()).collect::<Vec<_>>())
            .join()
            .unwrap();
        assert!(here.iter().all(|id| !there.contains(id)));
        assert!(there.iter().all(|id| id.0.get_version_num() == 4));
    }
}
