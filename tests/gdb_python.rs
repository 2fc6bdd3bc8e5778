//! `/usr/bin/python3.11`'s `python:function__entry`: a real SDT binary with a
//! semaphore. The plugin raises the semaphore (CPython checks it before
//! firing), the condition picks the script's function by name, and the
//! arguments decode to the file, function and line that Python reports.

mod gdb_common;

use gdb_common::*;
use std::path::Path;
use test_support::Scratch;

const PYTHON: &str = "/usr/bin/python3.11";

// CPython 3.11 fires function__entry when C code enters a Python frame, as
// next() does for a generator; plain Python-to-Python calls are inlined and
// do not fire. The script prints its path and the line of the `yield`.
const SCRIPT: &str = "\
def probed_function():
    yield 'resumed'

gen = probed_function()
print('script', __file__, probed_function.__code__.co_firstlineno + 1, next(gen))
";

#[test]
fn python_function_entry_file_function_line() {
    if !have_gdb("python_function_entry_file_function_line") {
        return;
    }
    if !Path::new(PYTHON).is_file() {
        test_support::skip(
            "python_function_entry_file_function_line",
            "/usr/bin/python3.11 is not installed",
        );
        return;
    }
    let scratch = Scratch::new();
    let script = scratch.write("probed.py", SCRIPT);
    let commands = commands![
        "sdt-break python:function__entry if $_streq($_probe_str(1), \"probed_function\")",
        "run",
        show("file", "$_probe_str(0)"),
        show("function", "$_probe_str(1)"),
        show("line", "$_probe_arg2"),
        "info probe-args",
        "info sdt function__entry",
        "delete",
        "info sdt function__entry",
        "continue",
    ];
    let output = run_gdb(
        &scratch,
        &commands,
        Path::new(PYTHON),
        &[script.to_str().unwrap()],
    );
    let values = marked(&output);
    let printed = lines_starting(&output, "script ");
    let words: Vec<&str> = printed
        .first()
        .unwrap_or_else(|| panic!("{output}"))
        .split_whitespace()
        .collect();
    assert_eq!(stops(&output), 1, "{output}");
    assert_eq!(
        value(&values, "file", &output),
        format!("\"{}\"", words[1]),
        "{output}"
    );
    assert_eq!(
        value(&values, "function", &output),
        "\"probed_function\"",
        "{output}"
    );
    assert_eq!(value(&values, "line", &output), words[2], "{output}");
    // Names from the plugin's table for python:function__entry.
    assert!(output.contains("$_probe_arg0 file = "), "{output}");
    assert!(output.contains("$_probe_arg1 function = "), "{output}");
    assert!(output.contains("\"probed_function\"  (8@%r12"), "{output}");
    assert!(
        output.contains(&format!("$_probe_arg2 line = {}", words[2])),
        "{output}"
    );
    // The semaphore: raised while the breakpoint exists, 0 after delete.
    let raised = output
        .find("= 1 (1 raised by a probe breakpoint)")
        .unwrap_or_else(|| panic!("{output}"));
    assert!(output[raised..].contains("= 0\n"), "{output}");
}
