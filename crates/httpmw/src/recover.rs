//! Panic recovery: a panicking handler answers 500 JSON and the panic is logged at warn.

use std::any::Any;

use axum::{http::StatusCode, response::Response};

use crate::error::json_response;

pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic>".to_owned());
    tracing::warn!(panic = %text, "panic serving http request (recovered)");
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &gatehouse_sdk::Response::message("An internal server error occurred."),
    )
}
