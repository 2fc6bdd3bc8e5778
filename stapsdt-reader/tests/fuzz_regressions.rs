//! Replays the fuzz corpus and every crash input the fuzzers found
//! (`fuzz/corpus/TARGET/`, `fuzz/regressions/TARGET/`) through the same
//! property checks the fuzz targets run (`fuzz/checks/reader.rs`), so that
//! `cargo test` holds what the campaign established without nightly or
//! cargo-fuzz. See docs/fuzzing.md.

#[path = "../../fuzz/checks/reader.rs"]
mod checks;

use test_support::fuzz::replay;

#[test]
fn elf_inputs() {
    replay("elf", checks::elf_object);
}

#[test]
fn archive_inputs() {
    replay("archive", checks::archive);
}

#[test]
fn argument_specs() {
    replay("args", checks::arg_input);
}

#[test]
fn types_notes() {
    replay("types_note", checks::types_note);
}
