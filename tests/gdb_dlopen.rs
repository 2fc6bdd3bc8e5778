//! A probe in a library loaded later with dlopen: the probe breakpoint is
//! pending, resolves when the library loads, and its condition works.
//!
//! GDB 13.1's pending `break -probe-stap lib:hit if COND` fails when the
//! library loads and never resolves.

mod gdb_common;

use gdb_common::*;
use test_support::Scratch;

const LIB_C: &str = include_str!("gdb_fixtures/libprobe.c");
const MAIN_C: &str = include_str!("gdb_fixtures/dlopener.c");

#[test]
fn pending_probe_with_condition_resolves_at_dlopen() {
    if !have_gdb("pending_probe_with_condition_resolves_at_dlopen") {
        return;
    }
    let scratch = Scratch::new();
    let library = scratch.compile(
        "cc",
        "libprobe.c",
        LIB_C,
        "libprobe.so",
        &["-g", "-O0", "-fPIC", "-shared"],
    );
    let program = compile_c(&scratch, "dlopener", MAIN_C, &["-ldl"]);
    let library_arg = library.to_str().unwrap();
    let commands = commands![
        // OBJFILE as a base name without `.so`; the library is not loaded yet.
        "sdt-break probe:libprobe:lib:hit if $_probe_arg0 == 2 || $_probe_arg0 == 102",
        "info sdt-breakpoints",
        "run",
        show("i", "$_probe_arg0"),
        show("tenfold", "$_probe_arg1"),
        "info sdt-breakpoints",
        "echo @@stopped@@\\n",
        "continue",
        // After dlclose and a second dlopen, the probe breakpoint is there again.
        show("reloaded", "$_probe_arg0"),
        "continue",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[library_arg]);
    let values = marked(&output);
    assert!(
        output.contains("): no loaded file has it yet; set when a library that has it loads."),
        "{output}"
    );
    assert_eq!(stops(&output), 2, "{output}");
    assert_eq!(value(&values, "i", &output), "2", "{output}");
    assert_eq!(value(&values, "tenfold", &output), "20", "{output}");
    let stop_at = output.find("@@stopped@@").unwrap();
    assert!(output[..stop_at].contains("lib hit 2 20 "), "{output}");
    assert!(!output[..stop_at].contains("lib hit 3"), "{output}");
    assert!(output[stop_at..].contains("lib hit 4 40 "), "{output}");
    assert!(
        output.contains(&format!("probe lib:hit in {library_arg}")),
        "{output}"
    );
    // The library's semaphore was raised as soon as it loaded, both times,
    // and nothing was written into its memory after dlclose unmapped it.
    assert_eq!(
        lines_starting(&output, "lib hit "),
        [
            "lib hit 0 0 enabled",
            "lib hit 1 10 enabled",
            "lib hit 2 20 enabled",
            "lib hit 3 30 enabled",
            "lib hit 4 40 enabled",
            "lib hit 102 1020 enabled"
        ],
        "{output}"
    );
    assert!(!output.contains("cannot restore the semaphore"), "{output}");
    assert_eq!(value(&values, "reloaded", &output), "102", "{output}");
    let unloaded = output.find("unloaded").expect(&output);
    assert!(output[unloaded..].contains("lib hit 102 1020"), "{output}");
    assert!(output.contains("done"), "{output}");
}
