//! Replaying the fuzz corpus and the crash inputs the fuzzers found
//! (`fuzz/corpus/TARGET/`, `fuzz/regressions/TARGET/`) through the fuzz
//! targets' own property checks, in `cargo test` (docs/fuzzing.md).

use std::path::Path;

/// Feed every file of `target`'s corpus and regressions to `check`; a
/// failing file is named before its panic propagates.
pub fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
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
