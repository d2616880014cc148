//! The AI Bridge service (spec/ops.md §6; decisions.md 7): forwards a request to the
//! configured OpenAI or Anthropic upstream, with the caller's Gatehouse credential
//! replaced by the upstream's key; bodies stream both ways unchanged (SSE included). The
//! caller has already been authenticated (`authn::Scheme::BridgeKey`) and passed the
//! overload layers; the handlers are in [`crate::api::aibridge`].

use std::sync::Arc;

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::ApiError;
use url::Url;

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
    /// `client` comes from the outbound factory ([`crate::outbound`]), which never follows
    /// a redirect: an upstream's redirect must not carry the deployment's key elsewhere.
    pub fn new(openai: Upstream, anthropic: Upstream, client: reqwest::Client) -> Bridge {
        Bridge {
            client,
            openai,
            anthropic,
        }
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

/// Gatehouse's own credential query parameters (Coder's token sources): never forwarded.
const CREDENTIAL_PARAMS: &[&str] = &["coder_session_token", "access_token"];

/// Upstream response fields the caller's browser must never act on: a cookie set for the
/// upstream's site would land on Gatehouse's origin.
const STRIPPED_RESPONSE: &[&str] = &["content-length", "set-cookie", "set-cookie2"];

/// Why a path cannot be forwarded.
#[derive(Debug, PartialEq, Eq)]
pub struct UnsafePath;

fn percent_decode(raw: &str) -> Result<Vec<u8>, UnsafePath> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(UnsafePath)?;
            let hex = std::str::from_utf8(hex).map_err(|_| UnsafePath)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UnsafePath)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The upstream URL for `rest`, the raw (still percent-encoded) tail of the request path
/// after the provider's prefix, or `UnsafePath` when it could leave the base path: a dot
/// segment, or an encoded `/` or `\` that the upstream (or a proxy before it) may decode
/// into one, in any encoding; an empty segment or a control character. The caller's key is
/// replaced by the deployment's, so a path that climbs out of the base would carry the
/// deployment's key anywhere on the upstream host (issue #29).
pub fn upstream_url(base: &Url, rest: &str, query: Option<&str>) -> Result<Url, UnsafePath> {
    let segments: Vec<&str> = rest.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let decoded = percent_decode(segment)?;
        let last = i + 1 == segments.len();
        if (decoded.is_empty() && !last)
            || decoded == b"."
            || decoded == b".."
            || decoded
                .iter()
                .any(|b| matches!(b, b'/' | b'\\' | b'%') || b.is_ascii_control())
        {
            return Err(UnsafePath);
        }
    }
    let mut url = base.clone();
    url.set_path(&format!("{}{rest}", base.path()));
    url.set_query(
        query
            .map(without_credentials)
            .as_deref()
            .filter(|q| !q.is_empty()),
    );
    // Belt and braces: whatever the URL parser made of it must still lie under the base.
    if url.origin() != base.origin() || !url.path().starts_with(base.path()) {
        return Err(UnsafePath);
    }
    Ok(url)
}

/// The query without Gatehouse's credential parameters, the rest byte for byte.
fn without_credentials(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            let name: String = url::form_urlencoded::parse(name.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            !CREDENTIAL_PARAMS
                .iter()
                .any(|c| c.eq_ignore_ascii_case(&name))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The fields a `Connection` header names are connection-specific too (RFC 9110 §7.6.1:
/// a proxy MUST remove them before forwarding).
fn connection_named(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn copy_headers(from: &HeaderMap, extra: &[&str]) -> HeaderMap {
    let named = connection_named(from);
    let mut out = HeaderMap::with_capacity(from.len());
    for (name, value) in from {
        if forwardable(name, extra) && !named.iter().any(|n| n == name.as_str()) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Which upstream a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Anthropic,
}

pub const OPENAI_PREFIX: &str = "/api/v2/aibridge/openai/v1/";
pub const ANTHROPIC_PREFIX: &str = "/api/v2/aibridge/anthropic/v1/";

impl Bridge {
    /// Forwards `req` (still under its `/api/v2/aibridge/<provider>/v1/` path) to the
    /// provider's upstream, at the rest of the path below its base.
    pub async fn forward(&self, provider: Provider, req: Request) -> Response {
        let (upstream, route_prefix, upstream_prefix) = match provider {
            Provider::OpenAi => (&self.openai, OPENAI_PREFIX, ""),
            // The Anthropic base is the host root; the API version is part of the path.
            Provider::Anthropic => (&self.anthropic, ANTHROPIC_PREFIX, "v1/"),
        };
        let rest = req
            .uri()
            .path()
            .strip_prefix(route_prefix)
            .unwrap_or_default();
        let rest = format!("{upstream_prefix}{rest}");
        let Ok(url) = upstream_url(&upstream.base, &rest, req.uri().query()) else {
            tracing::warn!(path = %req.uri().path(), "AI Bridge path refused: it could leave the upstream's base path");
            return ApiError::bad_request("Invalid AI Bridge path.")
                .with_detail(
                    "The path must not contain dot segments, empty segments, encoded slashes or backslashes.",
                )
                .into_response();
        };
        let (parts, body) = req.into_parts();
        let mut headers = copy_headers(&parts.headers, STRIPPED_REQUEST);
        if let Some(key) = &upstream.key {
            let (name, value) = match upstream.auth {
                UpstreamAuth::Bearer => (header::AUTHORIZATION, format!("Bearer {key}")),
                UpstreamAuth::XApiKey => (HeaderName::from_static("x-api-key"), key.clone()),
            };
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        let sent = self
            .client
            .request(parts.method, url)
            .headers(headers)
            .body(reqwest::Body::wrap_stream(body.into_data_stream()))
            .send()
            .await;
        let upstream_res = match sent {
            Ok(r) => r,
            Err(e) => {
                let reason = crate::outbound::describe(&e);
                tracing::warn!(error = %reason, "AI Bridge upstream request failed");
                return ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "AI Bridge upstream request failed.",
                )
                .with_detail(reason)
                .into_response();
            }
        };
        let status = upstream_res.status();
        let out_headers = copy_headers(upstream_res.headers(), STRIPPED_RESPONSE);
        let mut res = Response::new(Body::from_stream(upstream_res.bytes_stream()));
        *res.status_mut() = status;
        *res.headers_mut() = out_headers;
        res
    }
}

pub type SharedBridge = Arc<Bridge>;

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        base_url("http://up.example/gw/openai/v1/").unwrap()
    }

    #[test]
    fn paths_below_the_base_are_forwarded_as_sent() {
        let url = upstream_url(&base(), "chat/completions", Some("stream=true")).unwrap();
        assert_eq!(
            url.as_str(),
            "http://up.example/gw/openai/v1/chat/completions?stream=true"
        );
        let url = upstream_url(&base(), "files/file-a%20b/content", None).unwrap();
        assert_eq!(url.path(), "/gw/openai/v1/files/file-a%20b/content");
        assert_eq!(
            upstream_url(&base(), "models/", None).unwrap().path(),
            "/gw/openai/v1/models/"
        );
    }

    #[test]
    fn every_way_out_of_the_base_is_refused() {
        for rest in [
            "..",
            "../../internal-admin",
            "%2e%2e/%2e%2e/internal-admin",
            "%2E%2e/x",
            ".%2e/x",
            "chat/./x",
            "chat/%2e/x",
            "..%2finternal-admin",
            "..%2Finternal-admin",
            "..%5cinternal-admin",
            "..\\internal-admin",
            "a%2fb",
            "%252e%252e/x",
            "a//b",
            "/x",
            "a%00b",
            "a%0d%0aHost:%20evil",
            "a%zz",
            "a%2",
        ] {
            assert_eq!(upstream_url(&base(), rest, None), Err(UnsafePath), "{rest}");
        }
    }

    #[test]
    fn credential_parameters_stay_here() {
        let url = upstream_url(
            &base(),
            "models",
            Some("coder_session_token=abc&limit=5&Access_Token=x&after=a%26b"),
        )
        .unwrap();
        assert_eq!(url.query(), Some("limit=5&after=a%26b"));
        let url = upstream_url(&base(), "models", Some("coder_session_token=abc")).unwrap();
        assert_eq!(url.query(), None);
    }
}
