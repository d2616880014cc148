//! Why a credential did not authenticate, before it is an HTTP answer
//! ([`crate::authn::challenge`] makes it one).

use crate::error::ApiError;

/// Which `WWW-Authenticate` challenge a 401 carries (decisions.md 12; RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// No credential: `Bearer` with no error code.
    Missing,
    Expired,
    Invalid,
    /// An OAuth2 token for another resource (RFC 8707).
    Audience,
    /// No `WWW-Authenticate` at all (agent tokens: spec/auth.md §5.1).
    None,
}

/// A refusal, or a failure to decide.
#[derive(Debug, Clone)]
pub enum Reason {
    /// The credential is refused: 401 with this message and detail.
    Refused {
        challenge: Challenge,
        message: String,
        detail: String,
    },
    /// The server could not decide (the store is down, a row is corrupt): answered as is.
    Broken(ApiError),
}

impl Reason {
    pub fn refused(
        challenge: Challenge,
        message: impl Into<String>,
        detail: impl Into<String>,
    ) -> Reason {
        Reason::Refused {
            challenge,
            message: message.into(),
            detail: detail.into(),
        }
    }
}

/// Go's `%q` for the ASCII text of messages and challenges.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quoting_escapes_quotes_and_backslashes() {
        assert_eq!(go_quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
