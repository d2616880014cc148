//! The login form's CSRF token (issue #29): a double submit whose token only this
//! deployment can make. The token is sealed (XChaCha20-Poly1305, the deployment's token
//! key, so every replica accepts it) around the time it was issued and a random nonce; the
//! form and a cookie must carry the same one, it must open under the key, and it must be
//! younger than [`TOKEN_TTL`]. A cookie an attacker planted (`x` and `csrf_token=x`) fails
//! all three. On https the cookie is `__Host-` prefixed and `Secure`, so a sibling host of
//! the same site cannot set it either.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use gatehouse_store::{crypto::TokenCipher, models::now};
use subtle::ConstantTimeEq;

/// Long enough to type a password, short enough that a harvested token soon expires.
pub const TOKEN_TTL: i64 = 3600;

/// What the seal is bound to, so no other sealed value can stand in for a token.
const CONTEXT: &[u8] = b"gatehouse-login-csrf-v1";

/// The cookie's name and attributes for an access URL: `__Host-` requires `Secure`,
/// `Path=/` and no `Domain` (RFC 6265bis §4.1.3.2), which only https can carry.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-gatehouse_login_csrf"
    } else {
        "gatehouse_login_csrf"
    }
}

pub fn set_cookie(secure: bool, token: &str) -> String {
    if secure {
        format!(
            "{}={token}; Path=/; Max-Age={TOKEN_TTL}; HttpOnly; Secure; SameSite=Strict",
            cookie_name(true)
        )
    } else {
        format!(
            "{}={token}; Path=/login; Max-Age={TOKEN_TTL}; HttpOnly; SameSite=Strict",
            cookie_name(false)
        )
    }
}

/// A fresh token; empty without a key (then every submit fails, closed).
pub fn issue(cipher: Option<&TokenCipher>) -> String {
    let Some(cipher) = cipher else {
        return String::new();
    };
    let mut plain = [0u8; 24];
    plain[..8].copy_from_slice(&now().timestamp().to_be_bytes());
    plain[8..].copy_from_slice(&rand::random::<[u8; 16]>());
    URL_SAFE_NO_PAD.encode(cipher.encrypt(&plain, CONTEXT))
}

/// Whether the form's token and the cookie's are one token this deployment issued within
/// [`TOKEN_TTL`].
pub fn verify(cipher: Option<&TokenCipher>, form: &str, cookie: &str) -> bool {
    let Some(cipher) = cipher else {
        return false;
    };
    if form.is_empty() || !bool::from(form.as_bytes().ct_eq(cookie.as_bytes())) {
        return false;
    }
    let Some(plain) = URL_SAFE_NO_PAD
        .decode(form)
        .ok()
        .and_then(|sealed| cipher.decrypt(&sealed, CONTEXT))
    else {
        return false;
    };
    let Some(issued) = plain
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(i64::from_be_bytes)
    else {
        return false;
    };
    let age = now().timestamp() - issued;
    (0..=TOKEN_TTL).contains(&age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> TokenCipher {
        TokenCipher::new(&[[7u8; 32]]).unwrap()
    }

    #[test]
    fn only_an_issued_token_in_both_places_passes() {
        let c = cipher();
        let token = issue(Some(&c));
        assert!(verify(Some(&c), &token, &token));
        assert!(!verify(Some(&c), &token, ""));
        assert!(!verify(Some(&c), "x", "x"), "a planted pair");
        assert!(!verify(Some(&c), "", ""));
        let other = issue(Some(&c));
        assert!(!verify(Some(&c), &token, &other));
        // Sealed under another deployment's key.
        let foreign = issue(Some(&TokenCipher::new(&[[8u8; 32]]).unwrap()));
        assert!(!verify(Some(&c), &foreign, &foreign));
        assert!(!verify(None, &token, &token));
        assert_eq!(issue(None), "");
    }

    #[test]
    fn an_old_token_has_expired() {
        let c = cipher();
        let mut plain = [0u8; 24];
        plain[..8].copy_from_slice(&(now().timestamp() - TOKEN_TTL - 1).to_be_bytes());
        let old = URL_SAFE_NO_PAD.encode(c.encrypt(&plain, CONTEXT));
        assert!(!verify(Some(&c), &old, &old));
    }
}
