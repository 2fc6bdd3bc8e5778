//! `--format` templates. The parser is the binary crate's own file,
//! included here by path (the binary has no library to link against).
#![no_main]

#[path = "../../src/trace/printf.rs"]
#[allow(dead_code)]
mod printf;

#[path = "../checks/format.rs"]
#[allow(dead_code)] // each target calls one of the shared checks
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::template_text(data));
