//! Misuse is a compile error that says what is wrong: checked by building
//! a small crate with `cargo check` and reading rustc's messages.

use std::path::Path;
use std::process::Command;

use test_support::{run, Scratch};

const CASES: &[(&str, &str, &str)] = &[
    (
        "thirteen",
        "sdt_macros::probe!(p, n, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13);",
        "a probe has at most 12",
    ),
    (
        "string_overflow",
        "sdt_macros::probe!(p, n, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, str(\"x\"));",
        "`str(..)` takes two of the 12 argument slots",
    ),
    (
        "bare_str",
        "let s = \"x\"; sdt_macros::probe!(p, n, s);",
        "pass a &str, String or byte slice as `str(expr)`",
    ),
    (
        "typo",
        "sdt_macros::provider! { mod shop { fn order_placed(id: u64); } } \
         shop::order_plcaed(1);",
        "cannot find function `order_plcaed` in module `shop`",
    ),
];

#[test]
fn misuse_is_a_clear_compile_error() {
    let scratch = Scratch::new();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    scratch.write(
        "Cargo.toml",
        format!(
            "[package]\nname = \"misuse\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             [dependencies]\nsdt-macros = {{ path = {:?} }}\n[workspace]\n",
            crate_dir
        ),
    );
    std::fs::create_dir_all(scratch.join("src/bin")).unwrap();
    for (name, body, _) in CASES {
        scratch.write(
            &format!("src/bin/{name}.rs"),
            format!("fn main() {{ {body} }}\n"),
        );
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = run(Command::new(cargo)
        .current_dir(scratch.path())
        .args([
            "check",
            "--bins",
            "--keep-going",
            "--offline",
            "--target-dir",
        ])
        .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("misuse")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "every case must fail:\n{stderr}");
    for (name, _, message) in CASES {
        assert!(
            stderr.contains(message),
            "{name}: expected {message:?} in:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("bin \"{name}\"")),
            "{name} failed to build:\n{stderr}"
        );
    }
}
