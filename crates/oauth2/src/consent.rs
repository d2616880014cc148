//! The consent page and the authorization server's HTML error page (askama, escaped).

use askama::Template;
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::security_headers::{CspHosts, site_csp};

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

/// Renders a page with the site CSP, whose `form-action` also allows `form_target` (the
/// validated redirect URI's origin, which the consent POST redirects to; decisions.md 32).
pub fn html(
    status: StatusCode,
    body: Result<String, askama::Error>,
    hosts: &CspHosts,
    form_target: Option<&str>,
) -> Response {
    let Ok(body) = body else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response();
    };
    let targets: Vec<&str> = form_target.into_iter().collect();
    let csp = site_csp(hosts, None, &targets);
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

pub fn error_page(status: StatusCode, hosts: &CspHosts, code: &str, description: &str) -> Response {
    let page = ErrorPage {
        title: "Authorization failed",
        code,
        description,
    };
    html(status, page.render(), hosts, None)
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
