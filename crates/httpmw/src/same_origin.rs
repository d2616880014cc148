//! Whether a browser sent a request from another site (issue #29: login CSRF). A request
//! that sets a session must come from Gatehouse's own pages or from a client that is not a
//! browser: otherwise any page could sign the visitor's browser in as its author.

use axum::http::{HeaderMap, HeaderName};

static SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// `true` when the browser says the request came from elsewhere than `access_origin`
/// (`scheme://host[:port]`, the access URL's origin):
/// - `Sec-Fetch-Site` (Fetch Metadata), when sent, decides: only `same-origin` and `none`
///   (the user typed or bookmarked it) pass. `same-site` does not: workspace apps are
///   served on sibling hosts of the same site.
/// - else `Origin`, when sent, must be the access URL's origin (`null` never is).
/// - a request with neither comes from a client that is not a browser, and passes.
pub fn is_cross_site(headers: &HeaderMap, access_origin: &str) -> bool {
    if let Some(site) = headers.get(&SEC_FETCH_SITE) {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    match headers.get(axum::http::header::ORIGIN) {
        Some(origin) => !origin
            .to_str()
            .is_ok_and(|o| o.eq_ignore_ascii_case(access_origin)),
        None => false,
    }
}

/// The origin (`scheme://host[:port]`) of an access URL.
pub fn origin_of(access_url: &str) -> String {
    url::Url::parse(access_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn only_this_origin_or_no_browser_passes() {
        let here = "https://coder.example.com";
        assert!(!is_cross_site(&with(&[]), here));
        assert!(!is_cross_site(&with(&[("origin", here)]), here));
        assert!(!is_cross_site(
            &with(&[("sec-fetch-site", "same-origin")]),
            here
        ));
        assert!(!is_cross_site(&with(&[("sec-fetch-site", "none")]), here));
        assert!(is_cross_site(
            &with(&[("origin", "https://evil.example")]),
            here
        ));
        assert!(is_cross_site(&with(&[("origin", "null")]), here));
        assert!(is_cross_site(
            &with(&[("origin", "http://coder.example.com")]),
            here
        ));
        assert!(is_cross_site(
            &with(&[("sec-fetch-site", "cross-site")]),
            here
        ));
        assert!(is_cross_site(
            &with(&[("sec-fetch-site", "same-site")]),
            here
        ));
        // Fetch metadata wins over an Origin that names this site.
        assert!(is_cross_site(
            &with(&[("sec-fetch-site", "cross-site"), ("origin", here)]),
            here
        ));
    }

    #[test]
    fn origins_of_access_urls() {
        assert_eq!(
            origin_of("https://coder.example.com"),
            "https://coder.example.com"
        );
        assert_eq!(origin_of("http://127.0.0.1:3000"), "http://127.0.0.1:3000");
        assert_eq!(
            origin_of("https://coder.example.com:443"),
            "https://coder.example.com"
        );
    }
}
