//! D provider files (`stap-sdt dtrace -h/-G` input).
#![no_main]

#[path = "../checks/header.rs"]
#[allow(dead_code)] // each target calls one of the shared checks
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::provider_file(data));
