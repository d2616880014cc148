//! Security headers (spec/ops.md §7; decisions.md 9, 40): the Content-Security-Policy of
//! HTML pages, with the workspace-app hosts that may be framed and connected to, and
//! Strict-Transport-Security for https deployments.

use std::sync::{Arc, PoisonError, RwLock};

use axum::http::HeaderValue;

/// The hosts a page's CSP must let through besides itself.
#[derive(Debug, Clone, Default)]
pub struct CspHosts {
    /// `--wildcard-access-url` host pattern, e.g. `*.apps.example.com`.
    pub app_hosts: Vec<String>,
    /// The registered workspace proxies (decisions.md 41).
    pub proxies: ProxyHosts,
}

/// A workspace proxy as the CSP sees it (spec/ops.md §7.1.5): where it answers, and the
/// pattern of its app hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHost {
    pub host: String,
    pub app_host: String,
}

impl ProxyHost {
    /// From a proxy's `path_app_url` and `wildcard_hostname`; `None` when the URL has no
    /// host.
    pub fn of(path_app_url: &str, wildcard_hostname: &str) -> Option<ProxyHost> {
        let url = url::Url::parse(path_app_url).ok()?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return None,
        };
        Some(ProxyHost {
            app_host: app_host_for_csp(&host, wildcard_hostname),
            host,
        })
    }
}

/// Coder's `ConvertAppHostForCSP` (spec/ops.md §7.1.7): a wildcard first label becomes
/// exactly `*` (`*--apps.coder.com` → `*.coder.com`); no wildcard, or one anywhere else,
/// gives the proxy's own host.
pub fn app_host_for_csp(host: &str, wildcard: &str) -> String {
    if wildcard.is_empty() {
        return host.to_owned();
    }
    let mut labels = wildcard.split('.');
    let Some(first) = labels.next() else {
        return host.to_owned();
    };
    let rest: Vec<&str> = labels.collect();
    if rest.iter().any(|l| l.contains('*')) {
        return host.to_owned();
    }
    if !first.contains('*') {
        return wildcard.to_owned();
    }
    std::iter::once("*")
        .chain(rest)
        .collect::<Vec<_>>()
        .join(".")
}

/// The proxy list the CSP reads on every page: replaced whole when the registry changes,
/// so a page never waits on the database for it.
#[derive(Debug, Clone, Default)]
pub struct ProxyHosts(Arc<RwLock<Arc<[ProxyHost]>>>);

impl ProxyHosts {
    pub fn snapshot(&self) -> Arc<[ProxyHost]> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn replace(&self, hosts: Vec<ProxyHost>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = hosts.into();
    }
}

/// The site CSP (spec/ops.md §7.1.2–7.1.5), with `form-action` widened by `form_targets`
/// (the consent page's redirect origin) and `request_host` for websocket connects.
pub fn site_csp(hosts: &CspHosts, request_host: Option<&str>, form_targets: &[&str]) -> String {
    let mut connect = vec!["'self'".to_owned()];
    if let Some(host) = request_host.filter(|h| !h.is_empty()) {
        connect.push(format!("wss://{host}"));
        connect.push(format!("ws://{host}"));
    }
    let mut frame = vec!["'self'".to_owned()];
    for app in &hosts.app_hosts {
        frame.push(app.clone());
        connect.push(format!("https://{app}"));
        connect.push(format!("http://{app}"));
        connect.push(format!("wss://{app}"));
        connect.push(format!("ws://{app}"));
    }
    for proxy in hosts.proxies.snapshot().iter() {
        frame.push(proxy.app_host.clone());
        if proxy.host == "*" {
            connect.push("*".to_owned());
            continue;
        }
        if request_host != Some(proxy.host.as_str()) {
            connect.push(format!("wss://{}", proxy.host));
            connect.push(format!("ws://{}", proxy.host));
        }
        // Latency checks reach every proxy over plain requests.
        connect.push(format!("https://{}", proxy.host));
        connect.push(format!("http://{}", proxy.host));
    }
    let mut form_action = vec!["'self'".to_owned()];
    form_action.extend(form_targets.iter().map(|t| (*t).to_owned()));
    [
        "default-src 'self'".to_owned(),
        format!("connect-src {}", connect.join(" ")),
        "child-src 'self'".to_owned(),
        "script-src 'self'".to_owned(),
        "style-src 'self' 'unsafe-inline'".to_owned(),
        "font-src 'self' data:".to_owned(),
        "worker-src 'self' blob:".to_owned(),
        "object-src 'self'".to_owned(),
        "manifest-src 'self' blob:".to_owned(),
        format!("frame-src {}", frame.join(" ")),
        "img-src 'self' https: data:".to_owned(),
        format!("form-action {}", form_action.join(" ")),
        "media-src 'self'".to_owned(),
        // No framing of our pages: this replaces X-Frame-Options (decisions.md 40).
        "frame-ancestors 'none'".to_owned(),
        "base-uri 'none'".to_owned(),
    ]
    .join("; ")
}

/// `Strict-Transport-Security` when the access URL is https and a max-age is set
/// (decisions.md 9); `Err` names an unknown option.
pub fn hsts(
    access_url: &str,
    max_age: u64,
    options: &[String],
) -> Result<Option<HeaderValue>, String> {
    let mut value = format!("max-age={max_age}");
    for option in options {
        match option.to_ascii_lowercase().as_str() {
            "includesubdomains" => value.push_str("; includeSubDomains"),
            "preload" => value.push_str("; preload"),
            _ => {
                return Err(format!(
                    "unknown --strict-transport-security-options value {option:?} (use includeSubDomains or preload)"
                ));
            }
        }
    }
    if max_age == 0 || !access_url.starts_with("https://") {
        return Ok(None);
    }
    Ok(HeaderValue::from_str(&value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_lets_app_hosts_frame_and_connect() {
        let hosts = CspHosts {
            app_hosts: vec!["*.apps.example.com".to_owned()],
            ..CspHosts::default()
        };
        let csp = site_csp(
            &hosts,
            Some("coder.example.com"),
            &["https://client.example"],
        );
        assert!(csp.contains("frame-src 'self' *.apps.example.com;"));
        assert!(csp.contains("connect-src 'self' wss://coder.example.com ws://coder.example.com https://*.apps.example.com"));
        assert!(csp.contains("form-action 'self' https://client.example;"));
        assert!(csp.contains("frame-ancestors 'none'"));
    }

    /// spec/ops.md §7.1.11, the three proxies of Coder's csp_test.
    #[test]
    fn proxies_join_frame_src_and_connect_src() {
        let hosts = CspHosts::default();
        hosts.proxies.replace(vec![
            ProxyHost::of("https://test.com", "*.test.com").unwrap(),
            ProxyHost::of("https://coder.com", "*.coder.com").unwrap(),
            ProxyHost::of("https://example.com", "*.coder2.com").unwrap(),
        ]);
        let csp = site_csp(&hosts, Some("example.com"), &[]);
        assert!(
            csp.contains("frame-src 'self' *.test.com *.coder.com *.coder2.com;"),
            "{csp}"
        );
        assert!(
            csp.contains(
                "connect-src 'self' wss://example.com ws://example.com wss://test.com ws://test.com \
                 https://test.com http://test.com wss://coder.com ws://coder.com https://coder.com \
                 http://coder.com https://example.com http://example.com;"
            ),
            "{csp}"
        );
    }

    #[test]
    fn app_hosts_for_csp() {
        assert_eq!(app_host_for_csp("us.coder.com", ""), "us.coder.com");
        assert_eq!(
            app_host_for_csp("us.coder.com", "*--apps.coder.com"),
            "*.coder.com"
        );
        assert_eq!(
            app_host_for_csp("us.coder.com", "*.us.coder.com"),
            "*.us.coder.com"
        );
        assert_eq!(
            app_host_for_csp("us.coder.com", "apps.*.coder.com"),
            "us.coder.com"
        );
        assert_eq!(
            ProxyHost::of("https://eu.example.com:8443/", "").unwrap(),
            ProxyHost {
                host: "eu.example.com:8443".to_owned(),
                app_host: "eu.example.com:8443".to_owned()
            }
        );
        assert_eq!(ProxyHost::of("not a url", ""), None);
    }

    #[test]
    fn hsts_only_for_https_with_a_max_age() {
        let opts = vec!["includeSubDomains".to_owned(), "PRELOAD".to_owned()];
        assert_eq!(
            hsts("https://c.example.com", 31_536_000, &opts)
                .unwrap()
                .unwrap(),
            "max-age=31536000; includeSubDomains; preload"
        );
        assert_eq!(hsts("http://c.example.com", 100, &[]).unwrap(), None);
        assert_eq!(hsts("https://c.example.com", 0, &[]).unwrap(), None);
        assert!(hsts("https://c.example.com", 1, &["bogus".to_owned()]).is_err());
    }
}
