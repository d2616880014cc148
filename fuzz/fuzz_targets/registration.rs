//! RFC 7591 dynamic client registration: hostile client metadata is parsed and validated
//! exactly as `POST /oauth2/register` does, without storing anything.
#![no_main]

use gatehouse_oauth2::register::check_metadata;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = check_metadata(data) {
        // Refusals are client errors in the RFC 7591 §3.2.2 shape, never server errors.
        assert!(e.status.is_client_error(), "{e:?}");
    }
});
