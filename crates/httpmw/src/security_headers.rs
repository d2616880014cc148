//! Security headers (spec/ops.md §7; decisions.md 9, 40): the Content-Security-Policy of
//! HTML pages, with the workspace-app hosts that may be framed and connected to, and
//! Strict-Transport-Security for https deployments.

use axum::http::HeaderValue;

/// The hosts a page's CSP must let through besides itself.
#[derive(Debug, Clone, Default)]
pub struct CspHosts {
    /// `--wildcard-access-url` host pattern, e.g. `*.apps.example.com`.
    pub app_hosts: Vec<String>,
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
