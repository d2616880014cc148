//! AI Bridge pass-through (spec/ops.md §6; decisions.md 7): `/api/v2/aibridge/openai/v1/*`
//! and `/api/v2/aibridge/anthropic/v1/*` forward to the configured upstreams. The caller
//! authenticates with a Gatehouse token (`Authorization: Bearer`, `X-Api-Key` or
//! `Coder-Session-Token`), which is replaced by the upstream's key; bodies stream both
//! ways unchanged (SSE included). The overload layers in front are `ConcurrencyLimit`, then
//! `RateLimitByAuthToken`.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::{
    ApiError,
    apikey::{Outcome, RequestInfo, TokenSource, validate},
    rate_limit::bridge_token,
};
use url::Url;

use crate::app::AppState;

/// How an upstream takes its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamAuth {
    /// OpenAI: `Authorization: Bearer <key>`.
    Bearer,
    /// Anthropic: `x-api-key: <key>`.
    XApiKey,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    /// Where `<rest>` of `/api/v2/aibridge/<provider>/v1/<rest>` is appended; ends in `/`.
    pub base: Url,
    pub key: Option<String>,
    pub auth: UpstreamAuth,
}

#[derive(Debug)]
pub struct Bridge {
    client: reqwest::Client,
    pub openai: Upstream,
    pub anthropic: Upstream,
}

impl Bridge {
    pub fn new(openai: Upstream, anthropic: Upstream) -> anyhow::Result<Bridge> {
        let client = reqwest::Client::builder()
            // Never follow an upstream's redirect with our key attached.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Bridge {
            client,
            openai,
            anthropic,
        })
    }
}

/// A base URL whose path ends in `/`, so joining keeps it.
pub fn base_url(raw: &str) -> anyhow::Result<Url> {
    let mut url = Url::parse(raw).map_err(|e| anyhow::anyhow!("{raw:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        anyhow::bail!("{raw:?}: must be an http(s) URL");
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// RFC 9110 §7.6.1 connection-specific fields, never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Request fields that carry the caller's Gatehouse credential or are recomputed.
const STRIPPED_REQUEST: &[&str] = &[
    "host",
    "authorization",
    "x-api-key",
    "coder-session-token",
    "cookie",
    "content-length",
];

fn forwardable(name: &HeaderName, extra: &[&str]) -> bool {
    let n = name.as_str();
    !HOP_BY_HOP.contains(&n) && !extra.contains(&n)
}

/// Authenticates the bridge token as a Gatehouse API key of an active user.
pub async fn require_bridge_key(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = bridge_token(req.headers()).map(str::to_owned) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            gatehouse_sdk::error::messages::SIGNED_OUT,
        )
        .with_detail("An API key is required in Authorization: Bearer or X-Api-Key.")
        .into_response();
    };
    let mut info = RequestInfo::of(&req);
    // The bridge's own token sources (X-Api-Key included), not the API's.
    info.token = Some((token, TokenSource::Bearer));
    match validate(&app.auth, &info).await {
        Ok(Outcome::Authenticated(auth)) if auth.user.status == "active" => next.run(req).await,
        Ok(Outcome::Authenticated(_)) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "User is not active. Contact an admin to reactivate your account.",
        )
        .into_response(),
        Ok(Outcome::NoToken) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "No API key.").into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn forward(app: &AppState, upstream: &Upstream, rest: &str, req: Request) -> Response {
    let Some(bridge) = app.aibridge.as_ref() else {
        return ApiError::not_found().into_response();
    };
    let Ok(mut url) = upstream.base.join(rest.trim_start_matches('/')) else {
        return ApiError::bad_request("Invalid AI Bridge path.").into_response();
    };
    url.set_query(req.uri().query());
    let (parts, body) = req.into_parts();
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        if forwardable(name, STRIPPED_REQUEST) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(key) = &upstream.key {
        let (name, value) = match upstream.auth {
            UpstreamAuth::Bearer => (header::AUTHORIZATION, format!("Bearer {key}")),
            UpstreamAuth::XApiKey => (HeaderName::from_static("x-api-key"), key.clone()),
        };
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    let sent = bridge
        .client
        .request(parts.method, url)
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let upstream_res = match sent {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "AI Bridge upstream request failed");
            return ApiError::new(
                StatusCode::BAD_GATEWAY,
                "AI Bridge upstream request failed.",
            )
            .into_response();
        }
    };
    let status = upstream_res.status();
    let mut out_headers = HeaderMap::with_capacity(upstream_res.headers().len());
    for (name, value) in upstream_res.headers() {
        if forwardable(name, &["content-length"]) {
            out_headers.append(name.clone(), value.clone());
        }
    }
    let mut res = Response::new(Body::from_stream(upstream_res.bytes_stream()));
    *res.status_mut() = status;
    *res.headers_mut() = out_headers;
    res
}

pub async fn openai(
    State(app): State<AppState>,
    Path(rest): Path<String>,
    req: Request,
) -> Response {
    let Some(bridge) = app.aibridge.clone() else {
        return ApiError::not_found().into_response();
    };
    forward(&app, &bridge.openai, &rest, req).await
}

pub async fn anthropic(
    State(app): State<AppState>,
    Path(rest): Path<String>,
    req: Request,
) -> Response {
    let Some(bridge) = app.aibridge.clone() else {
        return ApiError::not_found().into_response();
    };
    // The Anthropic base is the host root; the API version is part of the path.
    forward(&app, &bridge.anthropic, &format!("v1/{rest}"), req).await
}

pub type SharedBridge = Arc<Bridge>;
