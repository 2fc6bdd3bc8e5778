//! `--filter` expressions: parsed, printed back, lowered for a site.
#![no_main]

#[path = "../checks/filter.rs"]
#[allow(dead_code)] // each target calls one of the shared checks
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::filter_text(data));
