//! A fresh request id per request (incoming ids are ignored, decisions.md 40), sent back
//! in `X-Coder-Request-Id`.

use axum::http::{HeaderName, HeaderValue};
use uuid::Uuid;

pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-coder-request-id");

/// The nil id (the default) stands for a request that did not pass the gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestId(pub Uuid);

impl RequestId {
    /// A random (v4) id from the thread's CSPRNG: no system call per request.
    pub fn fresh() -> RequestId {
        RequestId(uuid::Builder::from_random_bytes(rand::random()).into_uuid())
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
}
