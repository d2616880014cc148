//! The echo provisioner's plan files (uploaded by template authors): parsed as a build
//! parses them. A plan is refused with a message, never a panic.
#![no_main]

use gatehouse_server::echo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = echo::parse(data);
});
