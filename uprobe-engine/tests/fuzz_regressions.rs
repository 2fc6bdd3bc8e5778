//! Replays the fuzz corpus and every crash input the fuzzers found
//! (`fuzz/corpus/TARGET/`, `fuzz/regressions/TARGET/`) through the same
//! property checks the fuzz targets run (`filter.rs`), so that
//! `cargo test` holds what the campaign established without nightly or
//! cargo-fuzz. See docs/fuzzing.md.

#[path = "../../fuzz/checks/filter.rs"]
mod checks;

use test_support::fuzz::replay;

#[test]
fn filter_expressions() {
    replay("filter", checks::filter_text);
}
