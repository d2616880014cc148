//! Redirect-URI validation (RFC 6749 §3.1.2, RFC 8252 §7.3/§8.4, OAuth 2.1 §2.3.1) and
//! matching: open redirects, userinfo, fragments, loopback ports, case and dots.
#![no_main]

use gatehouse_oauth2::redirect_uri::{matches, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (registered, presented) = text.split_once('\n').unwrap_or((text, text));
    for public in [false, true] {
        if let Ok(url) = validate(registered, public) {
            // A valid URI carries no fragment and no credentials (RFC 6749 §3.1.2).
            assert!(url.fragment().is_none(), "{registered:?}");
            assert!(
                url.username().is_empty() && url.password().is_none(),
                "{registered:?}"
            );
            assert!(
                matches(registered, registered),
                "{registered:?} does not match itself"
            );
        }
    }
    let _ = matches(registered, presented);
});
