//! The pictures in a real browser: `tests/browser/pictures.sh` draws a
//! real Python run's timeline (`flow --timeline t.json`, opened in
//! speedscope) and flame graph (`calls -L --flamegraph`), renders both in
//! headless Chromium, checks the rendered pages name the program's
//! functions, and leaves the screenshots in the test's output folder
//! (target/pictures). Skips (printed) without Chromium; the speedscope half
//! skips when its npm package cannot be installed.

use std::process::Command;

#[test]
fn pictures_render_in_a_real_browser() {
    let test = "pictures_render_in_a_real_browser";
    if !test_support::is_root() {
        test_support::skip(
            test,
            "the pictures are drawn from real runs, which need root",
        );
        return;
    }
    if test_support::require(test, "chromium").is_none() {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("pictures");
    let out = test_support::run(
        Command::new("bash")
            .arg(root.join("tests/browser/pictures.sh"))
            .arg(&out_dir)
            .env("STAP_SDT_BIN", env!("CARGO_BIN_EXE_stap-sdt")),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines().filter(|l| l.starts_with("SKIPPED")) {
        println!("{line}");
    }
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("flame.svg rendered with every function"),
        "{text}"
    );
    assert!(out_dir
        .join("flame-svg.png")
        .metadata()
        .is_ok_and(|m| m.len() > 1000));
    if !text.contains("SKIPPED timeline") {
        assert!(
            text.contains("speedscope imported t.json of a real run"),
            "{text}"
        );
        assert!(out_dir.join("timeline-speedscope.png").exists());
    }
}
