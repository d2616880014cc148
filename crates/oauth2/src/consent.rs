//! The consent page and the authorization server's HTML error page (askama, escaped).

use askama::Template;
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub app_name: &'a str,
    pub app_icon: &'a str,
    pub username: &'a str,
    /// Where the browser goes after consent (the MCP rules make showing it a MUST).
    pub redirect_host: &'a str,
    pub full_access: bool,
    pub scopes: Vec<String>,
    pub csrf_token: &'a str,
    /// The form's explicit target: this URL, query included (decisions.md 32).
    pub action: &'a str,
    pub cancel_url: &'a str,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub code: &'a str,
    pub description: &'a str,
}

/// Renders a page with a CSP whose `form-action` is `'self'` plus `form_target` (the
/// validated redirect URI's origin, which the consent POST redirects to).
pub fn html(
    status: StatusCode,
    body: Result<String, askama::Error>,
    form_target: Option<&str>,
) -> Response {
    let Ok(body) = body else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response();
    };
    let form_action = match form_target {
        Some(t) => format!("'self' {t}"),
        None => "'self'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; img-src 'self' https: data:; style-src 'unsafe-inline'; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut res = (status, body).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

pub fn error_page(status: StatusCode, code: &str, description: &str) -> Response {
    let page = ErrorPage {
        title: "Authorization failed",
        code,
        description,
    };
    html(status, page.render(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_it_shows() {
        let page = ConsentPage {
            app_name: "<script>alert(1)</script>",
            app_icon: "\" onerror=\"x",
            username: "u",
            redirect_host: "example.com",
            full_access: false,
            scopes: vec!["<b>".into()],
            csrf_token: "t",
            action: "/oauth2/authorize?a=1&b=2",
            cancel_url: "https://example.com/cb?error=access_denied",
        }
        .render()
        .unwrap();
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&#60;script&#62;"));
        assert!(!page.contains("\" onerror=\"x"));
        assert!(!page.contains("<b>"));
    }
}
