//! Replays the fuzz corpus and every crash input the fuzzers found
//! (`fuzz/corpus/TARGET/`, `fuzz/regressions/TARGET/`) through the same
//! property checks the fuzz targets run (`header.rs`), so that
//! `cargo test` holds what the campaign established without nightly or
//! cargo-fuzz. See docs/fuzzing.md.

#[path = "../../fuzz/checks/header.rs"]
mod checks;

use test_support::fuzz::replay;

#[test]
fn provider_files() {
    replay("provider", checks::provider_file);
}
