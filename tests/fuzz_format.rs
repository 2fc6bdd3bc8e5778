//! Replays the fuzz corpus and every crash input the fuzzers found
//! (`fuzz/corpus/TARGET/`, `fuzz/regressions/TARGET/`) through the same
//! property checks the fuzz targets run (`fuzz/checks/format.rs`), so that
//! `cargo test` holds what the campaign established without nightly or
//! cargo-fuzz. See docs/fuzzing.md.

// The binary crate has no library: the template parser is included from
// its own file, as the fuzz target does.
#[path = "../src/trace/printf.rs"]
#[allow(dead_code)]
mod printf;

#[path = "../fuzz/checks/format.rs"]
mod checks;

use test_support::fuzz::replay;

#[test]
fn format_templates() {
    replay("format", checks::template_text);
}
