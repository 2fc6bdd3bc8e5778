//! Static archives (and ELF files) through the reader's byte entry point.
#![no_main]

#[path = "../checks/reader.rs"]
#[allow(dead_code)] // each target calls one of the shared checks
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::archive(data));
