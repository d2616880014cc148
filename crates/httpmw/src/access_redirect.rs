//! Sending a request to the access URL instead of answering it (Coder's
//! `redirectToAccessURL`): plain HTTP when the deployment serves HTTPS itself and its
//! access URL is https (issue #24), and, with `--redirect-to-access-url`, a request for a
//! host that is neither the access URL's nor a workspace-app host. `/healthz` is always
//! answered where it is asked, so a liveness probe is never bounced.
//!
//! The gate asks it first, knowing the connection's transport; a request it redirects
//! never reaches the router but is still logged and counted, with its request id. Coder
//! answers with the bare access URL; the redirect here keeps the path and query, so a
//! bookmarked `http://` link lands where it pointed.

use std::sync::Arc;

use axum::{
    body::Body,
    http::{HeaderValue, Request, StatusCode, header},
    response::Response,
};

/// What the access URL asks of requests that did not come its way.
#[derive(Debug)]
pub struct AccessRedirect {
    /// `scheme://host[:port]` of the access URL, without a trailing slash.
    origin: String,
    /// The access URL's `host[:port]`, as a `Host` header names it.
    authority: String,
    /// Plain-HTTP requests go to the https access URL.
    upgrade_plain_http: bool,
    /// Requests for another host go to the access URL (`--redirect-to-access-url`).
    other_hosts: bool,
    /// The workspace-app wildcard (`*.apps.example.com`), split at its `*`.
    app_hosts: Option<(String, String)>,
}

impl AccessRedirect {
    /// `None` when nothing is ever redirected (the usual case: no cost per request).
    pub fn new(
        access_url: &url::Url,
        serving_tls: bool,
        redirect_to_access_url: bool,
        // As the CSP holds it: no scheme, no trailing `/`.
        wildcard_access_url: Option<&str>,
    ) -> Option<Arc<AccessRedirect>> {
        let upgrade_plain_http = serving_tls && access_url.scheme() == "https";
        if !upgrade_plain_http && !redirect_to_access_url {
            return None;
        }
        let host = access_url.host_str()?;
        let authority = match access_url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let app_hosts = wildcard_access_url.and_then(|w| {
            let w = w.split(['/', ':']).next().unwrap_or_default();
            w.split_once('*')
                .map(|(pre, post)| (pre.to_ascii_lowercase(), post.to_ascii_lowercase()))
        });
        Some(Arc::new(AccessRedirect {
            origin: format!("{}://{authority}", access_url.scheme()),
            authority: authority.to_ascii_lowercase(),
            upgrade_plain_http,
            other_hosts: redirect_to_access_url,
            app_hosts,
        }))
    }

    /// Where `req` must go instead, if anywhere.
    pub fn target<B>(&self, secure: bool, req: &Request<B>) -> Option<String> {
        let path = req.uri().path();
        if path == "/healthz" {
            return None;
        }
        let to_access_url = || {
            let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
            Some(format!("{}{path_and_query}", self.origin))
        };
        if self.upgrade_plain_http && !secure {
            return to_access_url();
        }
        if !self.other_hosts {
            return None;
        }
        let header_is_ours = |name: header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|host| host.eq_ignore_ascii_case(&self.authority))
        };
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or_default();
        if host.eq_ignore_ascii_case(&self.authority)
            || header_is_ours(header::HeaderName::from_static("x-forwarded-host"))
            || self.is_app_host(host)
        {
            return None;
        }
        to_access_url()
    }

    fn is_app_host(&self, host: &str) -> bool {
        let Some((pre, post)) = &self.app_hosts else {
            return false;
        };
        let name = host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        });
        let name = name.to_ascii_lowercase();
        name.len() > pre.len() + post.len()
            && name.starts_with(pre.as_str())
            && name.ends_with(post.as_str())
            && !name[pre.len()..name.len() - post.len()].contains('.')
    }
}

/// 307, as Coder answers: the method and body are kept, and nothing is cached.
pub fn redirect(location: &str) -> Response {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    if let Ok(value) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, value);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str, host: &str) -> Request<()> {
        Request::builder()
            .uri(uri)
            .header(header::HOST, host)
            .body(())
            .unwrap()
    }

    #[test]
    fn plain_http_goes_to_the_https_access_url_with_its_path() {
        let url = url::Url::parse("https://dev.example.com").unwrap();
        let r = AccessRedirect::new(&url, true, false, None).unwrap();
        assert_eq!(
            r.target(false, &get("/api/v2/users/me?x=1", "10.0.0.1:3000"))
                .as_deref(),
            Some("https://dev.example.com/api/v2/users/me?x=1")
        );
        assert_eq!(r.target(true, &get("/api/v2/users/me", "other")), None);
        assert_eq!(r.target(false, &get("/healthz", "10.0.0.1")), None);
        // An http access URL, or no TLS of our own: nothing to do.
        assert!(AccessRedirect::new(&url, false, false, None).is_none());
        let http = url::Url::parse("http://dev.example.com").unwrap();
        assert!(AccessRedirect::new(&http, true, false, None).is_none());
    }

    #[test]
    fn other_hosts_go_to_the_access_url_but_app_hosts_stay() {
        let url = url::Url::parse("http://dev.example.com:8080").unwrap();
        let r = AccessRedirect::new(&url, false, true, Some("*.apps.example.com")).unwrap();
        assert_eq!(r.target(false, &get("/", "DEV.example.com:8080")), None);
        assert_eq!(
            r.target(false, &get("/x", "app--ws.apps.example.com")),
            None
        );
        assert_eq!(
            r.target(false, &get("/x", "a.b.apps.example.com"))
                .as_deref(),
            Some("http://dev.example.com:8080/x")
        );
        assert_eq!(
            r.target(false, &get("/login", "10.1.2.3:8080")).as_deref(),
            Some("http://dev.example.com:8080/login")
        );
        let forwarded = Request::builder()
            .uri("/")
            .header(header::HOST, "10.1.2.3")
            .header("x-forwarded-host", "dev.example.com:8080")
            .body(())
            .unwrap();
        assert_eq!(r.target(false, &forwarded), None);
    }
}
