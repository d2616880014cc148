//! The HTML pages Gatehouse serves itself (decisions.md 44): the login page. The consent
//! page belongs to the OAuth2 crate.

pub mod login;
pub mod login_csrf;
