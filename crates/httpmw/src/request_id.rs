//! A fresh request id per request (incoming ids are ignored, decisions.md 40), sent back
//! in `X-Coder-Request-Id`.

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use uuid::Uuid;

pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-coder-request-id");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(pub Uuid);

pub async fn attach_request_id(mut req: Request, next: Next) -> Response {
    let id = Uuid::new_v4();
    req.extensions_mut().insert(RequestId(id));
    let mut res = next.run(req).await;
    if let Ok(value) = HeaderValue::from_str(&id.hyphenated().to_string()) {
        res.headers_mut().insert(REQUEST_ID_HEADER.clone(), value);
    }
    res
}
