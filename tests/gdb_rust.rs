//! A Rust program whose probe passes a `&str` as pointer and length (no
//! NUL, like HotSpot's strings): `$_probe_strn(0, 1)` prints exactly it.

mod gdb_common;

use gdb_common::*;
use test_support::Scratch;

const RUST_STR_RS: &str = include_str!("gdb_fixtures/rust_str.rs");

#[test]
fn rust_str_argument_as_pointer_and_length() {
    if !have_gdb("rust_str_argument_as_pointer_and_length") {
        return;
    }
    let Some(rustc) = test_support::require("rust_str_argument_as_pointer_and_length", "rustc")
    else {
        return;
    };
    let scratch = Scratch::new();
    let program = scratch.compile(
        rustc.to_str().unwrap(),
        "rust_str.rs",
        RUST_STR_RS,
        "rust_str",
        &["-g", "-O"],
    );
    let commands = commands![
        // Rust prints a char array as bytes; C shows it as a string.
        "set language c",
        "sdt-break rust:text if $_probe_arg2 == 0",
        "run",
        show("text", "$_probe_strn(0, 1)"),
        show("len", "$_probe_arg1"),
        show("count", "$_probe_arg2"),
        show("big", "$_probe_arg3"),
        "continue",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    let values = marked(&output);
    assert_eq!(stops(&output), 1, "{output}");
    // The program printed `rust text TEXT I BIG`; the stop is at i == 1 (count == i - 1 == 0).
    let line = lines_starting(&output, "rust text ")
        .into_iter()
        .find(|l| l.split_whitespace().nth(4) == Some("1"))
        .unwrap_or_else(|| panic!("{output}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let text = format!("{} {}", words[2], words[3]);
    assert_eq!(
        value(&values, "text", &output),
        format!("\"{text}\""),
        "{output}"
    );
    assert_eq!(
        value(&values, "len", &output),
        text.len().to_string(),
        "{output}"
    );
    assert_eq!(value(&values, "count", &output), "0", "{output}");
    assert_eq!(value(&values, "big", &output), words[5], "{output}");
}
