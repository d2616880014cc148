//! The baseline the load harness compares Gatehouse with: axum with no middleware, one
//! plain-text route and one that checks a static bearer token, on the same runtime shape
//! (`bench/run` pins it to one core like the server).

#![forbid(unsafe_code)]

use axum::{
    Router,
    http::{HeaderMap, StatusCode},
    routing::get,
};

const TOKEN: &str = "Bearer baseline-token";

async fn hello() -> &'static str {
    "Hello, World!"
}

async fn bearer(headers: HeaderMap) -> Result<&'static str, StatusCode> {
    match headers.get("authorization") {
        Some(v) if v.as_bytes() == TOKEN.as_bytes() => Ok("{\"username\":\"baseline\"}"),
        _ => Err(StatusCode::UNAUTHORIZED),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3100".to_owned());
    let app = Router::new()
        .route("/", get(hello))
        .route("/me", get(bearer));
    let listener = tokio::net::TcpListener::bind(&address).await?;
    axum::serve(listener, app).await
}
