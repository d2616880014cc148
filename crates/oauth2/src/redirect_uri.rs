//! Redirect URIs: what may be registered (spec/oauth2.md §11.3 rule 7) and when a
//! presented URI matches a registered one (rule 8; decisions.md 31; RFC 8252 §7.3).

use url::{Host, Url};

pub const MAX_URIS: usize = 32;
pub const MAX_URI_LEN: usize = 2048;
const OOB: &str = "urn:ietf:wg:oauth:2.0:oob";

/// Why a redirect URI cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRedirectUri {
    #[error("redirect URI is empty")]
    Empty,
    #[error("redirect URI is longer than {MAX_URI_LEN} bytes")]
    TooLong,
    #[error("redirect URI is not a valid absolute URI")]
    Unparseable,
    #[error("redirect URI must not contain a fragment")]
    Fragment,
    #[error("redirect URI scheme {0:?} is not allowed")]
    BlockedScheme(String),
    #[error("only the urn:ietf:wg:oauth:2.0:oob URN is allowed")]
    Urn,
    #[error("http redirect URIs are only allowed for loopback hosts; use https")]
    InsecureHttp,
    #[error("redirect URI must have a host")]
    NoHost,
    #[error("redirect URI must not contain user information")]
    UserInfo,
}

fn is_loopback(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn is_localhost_subdomain(host: Option<Host<&str>>) -> bool {
    matches!(host, Some(Host::Domain(d)) if d.to_ascii_lowercase().ends_with(".localhost"))
}

/// Checks one URI for registration; `public` clients get the stricter rules.
pub fn validate(raw: &str, public: bool) -> Result<Url, InvalidRedirectUri> {
    if raw.is_empty() {
        return Err(InvalidRedirectUri::Empty);
    }
    if raw.len() > MAX_URI_LEN {
        return Err(InvalidRedirectUri::TooLong);
    }
    // RFC 6749 §3.1.2: the endpoint URI MUST NOT include a fragment component.
    if raw.contains('#') {
        return Err(InvalidRedirectUri::Fragment);
    }
    let url = Url::parse(raw).map_err(|_| InvalidRedirectUri::Unparseable)?;
    let scheme = url.scheme();
    if matches!(
        scheme,
        "javascript" | "data" | "file" | "ftp" | "vbscript" | "blob"
    ) {
        return Err(InvalidRedirectUri::BlockedScheme(scheme.to_owned()));
    }
    if scheme == "urn" {
        return if raw.eq_ignore_ascii_case(OOB) {
            Ok(url)
        } else {
            Err(InvalidRedirectUri::Urn)
        };
    }
    // Not a place a browser can be sent back to with a code.
    if matches!(scheme, "mailto" | "tel" | "sms") {
        return Err(InvalidRedirectUri::BlockedScheme(scheme.to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InvalidRedirectUri::UserInfo);
    }
    match scheme {
        "http" | "https" if url.host().is_none() => Err(InvalidRedirectUri::NoHost),
        "http" if is_loopback(url.host()) => Ok(url),
        "http" if !public && is_localhost_subdomain(url.host()) => Ok(url),
        "http" => Err(InvalidRedirectUri::InsecureHttp),
        "https" => Ok(url),
        // Custom schemes (RFC 8252 §7.1) need a host or an absolute path:
        // `com.example.app:/cb`, not the opaque `com.example.app:cb`.
        _ if url.cannot_be_a_base() => Err(InvalidRedirectUri::Unparseable),
        _ => Ok(url),
    }
}

/// Whether `presented` names the registered URI `registered`: equal after parsing and
/// serialising, except that for a registered `http` loopback URI the port is ignored
/// (RFC 8252 §7.3). No prefix, subpath, subdomain or scheme leeway.
pub fn matches(registered: &str, presented: &str) -> bool {
    if presented.contains('#') {
        return false;
    }
    let (Ok(mut reg), Ok(mut pre)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    if !pre.username().is_empty() || pre.password().is_some() {
        return false;
    }
    if reg.scheme() == "http" && is_loopback(reg.host()) {
        // Setting the port only fails for URLs that cannot have one, which a loopback
        // http URL always can.
        let _ = reg.set_port(None);
        if pre.scheme() == "http" {
            let _ = pre.set_port(None);
        }
    }
    reg.as_str() == pre.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        for ok in [
            "https://example.com/cb",
            "http://localhost:9876/callback",
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
            "vscode://coder.coder-remote/cb",
            "com.example.app:/cb",
            "urn:ietf:wg:oauth:2.0:oob",
        ] {
            assert!(validate(ok, true).is_ok(), "{ok} refused");
        }
        assert!(validate("http://app.localhost/cb", false).is_ok());
        for (bad, public) in [
            ("", true),
            ("javascript:alert(1)", false),
            ("data:text/html,hi", false),
            ("file:///etc/passwd", false),
            ("ftp://example.com/", false),
            ("JavaScript:alert(1)", false),
            ("http://example.com/cb", false),
            ("http://app.localhost/cb", true),
            ("https://example.com/cb#frag", false),
            ("https://example.com/cb#", false),
            ("urn:ietf:wg:oauth:2.0:other", false),
            ("com.example.app:callback", false),
            ("mailto:a@example.com", true),
            ("https://user@example.com/cb", false),
            ("relative/path", false),
        ] {
            assert!(validate(bad, public).is_err(), "{bad} accepted");
        }
        assert_eq!(
            validate(&format!("https://e.com/{}", "a".repeat(2048)), false),
            Err(InvalidRedirectUri::TooLong)
        );
    }

    #[test]
    fn matching_is_exact_except_loopback_ports() {
        let reg = "https://example.com/cb";
        assert!(matches(reg, "https://example.com/cb"));
        for bad in [
            "https://example.com:8443/cb",
            "https://other.com/cb",
            "https://example.com/cb/nested",
            "https://example.com/c",
            "https://sub.example.com/cb",
            "http://example.com/cb",
            "https://example.com/cb?x=1",
            "https://example.com/cb#x",
            "https://example.com./cb",
            "https://example.com/CB",
            "https://attacker.com@example.com/cb",
        ] {
            assert!(!matches(reg, bad), "{bad} matched");
        }
        let loopback = "http://127.0.0.1:3000/callback";
        assert!(matches(loopback, "http://127.0.0.1:51234/callback"));
        assert!(matches(loopback, "http://127.0.0.1/callback"));
        assert!(!matches(loopback, "http://127.0.0.1:5/other"));
        assert!(!matches(loopback, "https://127.0.0.1:5/callback"));
        assert!(matches("http://localhost/cb", "http://localhost:9/cb"));
        assert!(matches("http://[::1]:1/cb", "http://[::1]:2/cb"));
        assert!(!matches(
            "http://app.localhost:1/cb",
            "http://app.localhost:2/cb"
        ));
    }
}
