//! The OAuth2 authorize and token request parsers: form/query parameters (duplicates are
//! errors, RFC 6749 §3.1), the code and refresh-token shapes, PKCE values (RFC 7636 §4.1)
//! and the S256 check.
#![no_main]

use gatehouse_oauth2::{params::Params, pkce, secrets::Presented};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let params = Params::parse(data);
    for name in [
        "grant_type",
        "code",
        "refresh_token",
        "code_verifier",
        "code_challenge",
        "code_challenge_method",
        "redirect_uri",
        "client_id",
        "client_secret",
        "resource",
        "scope",
        "state",
    ] {
        match params.one(name) {
            Ok(Some(value)) => {
                assert!(params.has(name));
                if let Some(presented) = Presented::parse(value) {
                    assert!(value.contains(presented.prefix));
                    assert!(value.contains(presented.secret));
                }
                if pkce::well_formed(value) {
                    assert!((43..=128).contains(&value.len()));
                }
                let _ = pkce::verify_s256(value, value);
            }
            // RFC 6749 §3.1: a parameter sent without a value counts as omitted.
            Ok(None) => assert!(params.iter().all(|(k, v)| k != name || v.is_empty())),
            Err(_) => {
                let sent = params.iter().filter(|(k, v)| *k == name && !v.is_empty());
                assert!(sent.count() > 1);
            }
        }
    }
});
