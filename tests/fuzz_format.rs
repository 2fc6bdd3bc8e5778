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

use std::path::Path;

/// Feed every file of the target's corpus and regressions to `check`;
/// a failing file is named before its panic propagates.
fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).unwrap();
            eprintln!("replaying {}", path.display());
            check(&data);
            count += 1;
        }
    }
    assert!(count > 0, "no inputs for {target}");
    eprintln!("{target}: {count} inputs hold");
}

#[test]
fn format_templates() {
    replay("format", checks::template_text);
}
