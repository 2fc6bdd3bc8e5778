//! `sdt-break` / `sdt-tbreak` with conditions, the builtin `break` left
//! alone, pointer+length strings, `info sdt`, and finding `stap-sdt`.
//!
//! GDB 13.1 reads `break probe:demo:tick` as FILE:LINE and silently drops the
//! condition of `break -probe-stap demo:tick if COND`; these tests show the
//! plugin's `sdt-break probe:demo:tick if COND` stopping exactly where COND
//! holds (tests/gdb_pending.rs: the same through GDB's own `break`).

mod gdb_common;

use gdb_common::*;
use test_support::bounded::BoundedOutput;

const DEMO_C: &str = include_str!("gdb_fixtures/demo.c");

#[test]
fn condition_stops_only_where_it_holds() {
    let Some((scratch, program)) = c_fixture("condition_stops_only_where_it_holds", "demo", DEMO_C)
    else {
        return;
    };
    let commands = commands![
        "sdt-break probe:demo:tick if $_probe_arg0 == 3",
        "run",
        show("i", "$_probe_arg0"),
        show("big", "$_probe_arg1"),
        show("argc", "$_probe_argc"),
        "echo @@stopped@@\\n",
        "continue",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    let values = marked(&output);
    assert_eq!(stops(&output), 1, "one stop, at i == 3:\n{output}");
    assert_eq!(value(&values, "i", &output), "3", "{output}");
    assert_eq!(value(&values, "argc", &output), "2", "{output}");
    // The program printed the value it passed just before the probe.
    assert!(
        lines_starting(&output, "tick 3 ")
            .contains(&format!("tick 3 {}", value(&values, "big", &output)).as_str()),
        "{output}"
    );
    let stop_at = output.find("@@stopped@@").unwrap();
    assert!(output[..stop_at].contains("tick 3 1003"), "{output}");
    assert!(
        !output[..stop_at].contains("tick 4"),
        "stopped before i == 4:\n{output}"
    );
    assert!(
        output[stop_at..].contains("tick 4 1004") && output.contains("done"),
        "{output}"
    );
}

#[test]
fn sdt_condition_and_condition_set_and_clear_the_condition() {
    let Some((scratch, program)) = c_fixture(
        "sdt_condition_and_condition_set_and_clear_the_condition",
        "demo",
        DEMO_C,
    ) else {
        return;
    };
    let commands = commands![
        "sdt-break demo:tick",
        "starti",
        "sdt-condition 1 $_probe_arg0 == 1",
        "continue",
        show("first", "$_probe_arg0"),
        "sdt-condition 1",
        "continue",
        show("next", "$_probe_arg0"),
        // GDB's own `condition` works too; GDB 13 then complains at library
        // loads (the breakpoint is pending in its eyes), and the plugin keeps
        // the breakpoint enabled.
        "condition 1 $_probe_arg0 == 4",
        "continue",
        show("gdb_condition", "$_probe_arg0"),
        "info breakpoints",
        "sdt-condition 99 1",
        "delete",
        "continue",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    let values = marked(&output);
    assert_eq!(value(&values, "first", &output), "1", "{output}");
    assert_eq!(value(&values, "next", &output), "2", "{output}");
    assert_eq!(value(&values, "gdb_condition", &output), "4", "{output}");
    assert!(
        output.contains("stap-sdt: breakpoint 1: GDB 13 will say"),
        "{output}"
    );
    assert!(
        output.contains("\n1       breakpoint     keep y "),
        "{output}"
    );
    assert!(output.contains("No probe breakpoint 99."), "{output}");
    assert!(output.contains("done"), "{output}");
}

#[test]
fn every_location_of_a_probe() {
    let Some((scratch, program)) = c_fixture("every_location_of_a_probe", "demo", DEMO_C) else {
        return;
    };
    let commands = commands![
        "sdt-break demo:twice",
        "run",
        show("first", "$_probe_arg0"),
        "continue",
        show("second", "$_probe_arg0"),
        "info sdt-breakpoints",
        "continue",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    let values = marked(&output);
    assert_eq!(
        lines_starting(&output, "twice "),
        ["twice 1", "twice 2"],
        "{output}"
    );
    assert_eq!(
        output.matches("stap-sdt: breakpoint 1 at 0x").count(),
        2,
        "{output}"
    );
    assert!(
        output.contains("probe demo:twice (location 2 of 2)"),
        "{output}"
    );
    // Both locations stop as breakpoint 1, the number the user saw.
    assert_eq!(
        output.matches("\nBreakpoint 1, twice (").count(),
        2,
        "{output}"
    );
    assert_eq!(stops(&output), 2, "{output}");
    assert_eq!(value(&values, "first", &output), "1", "{output}");
    assert_eq!(value(&values, "second", &output), "2", "{output}");
    assert!(
        output.contains("Breakpoint 1 probe:demo:twice, hit 2 times\n  0x"),
        "{output}"
    );
}

#[test]
fn tbreak_stops_once_and_goes_away() {
    let Some((scratch, program)) = c_fixture("tbreak_stops_once_and_goes_away", "demo", DEMO_C)
    else {
        return;
    };
    let commands = commands![
        "sdt-tbreak demo:tick",
        "run",
        show("i", "$_probe_arg0"),
        "info breakpoints",
        "info sdt-breakpoints",
        "continue",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    assert_eq!(stops(&output), 1, "{output}");
    assert_eq!(value(&marked(&output), "i", &output), "0", "{output}");
    assert!(
        output.contains("No breakpoints or watchpoints."),
        "{output}"
    );
    assert!(output.contains("No probe breakpoints."), "{output}");
    assert!(
        output.contains("tick 4 1004") && output.contains("done"),
        "{output}"
    );
}

#[test]
fn break_probe_with_task_is_left_to_gdb() {
    let Some((scratch, program)) =
        c_fixture("break_probe_with_task_is_left_to_gdb", "demo", DEMO_C)
    else {
        return;
    };
    let commands = commands![
        "break probe:demo:tick task 2",
        "sdt-break demo:tick junk",
        "info sdt-breakpoints",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    assert!(
        output.contains(
            "stap-sdt: breakpoint 1 is left to GDB: `task` is not supported on probe breakpoints"
        ),
        "{output}"
    );
    assert!(
        output.contains("Junk after the probe: 'junk' (expected `thread ID` or `if COND`)"),
        "{output}"
    );
    assert!(output.contains("No probe breakpoints."), "{output}");
}

#[test]
fn builtin_break_behaves_as_before() {
    let Some((scratch, program)) = c_fixture("builtin_break_behaves_as_before", "demo", DEMO_C)
    else {
        return;
    };
    let commands = commands![
        "break probe:demo:tick",
        "help break",
        "break main",
        "break nosuchfile.c:3",
        "info breakpoints"
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    // GDB's own messages, unchanged: the plugin does not replace `break`.
    assert!(output.contains("No source file named probe."), "{output}");
    assert!(
        output.contains("Set breakpoint at specified location."),
        "{output}"
    );
    assert!(output.contains("Breakpoint 2 at "), "{output}");
    // Other pending breakpoints are GDB's, as with `set breakpoint pending on`.
    assert!(
        output.contains("Breakpoint 3 (nosuchfile.c:3) pending."),
        "{output}"
    );
    assert!(!output.contains("breakpoint 3 is"), "{output}");
    assert!(output.contains("in main at "), "{output}");
}

#[test]
fn pointer_and_length_string_without_nul() {
    let Some((scratch, program)) =
        c_fixture("pointer_and_length_string_without_nul", "demo", DEMO_C)
    else {
        return;
    };
    let commands = commands![
        "sdt-break demo:hs_string",
        "run",
        show("strn", "$_probe_strn(0, 1)"),
        show("str", "$_probe_str(0)"),
        show("len", "$_probe_arg1"),
        "continue",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    let values = marked(&output);
    let printed = lines_starting(&output, "hs ");
    assert_eq!(printed, ["hs hello"], "{output}");
    assert_eq!(value(&values, "strn", &output), "\"hello\"", "{output}");
    assert_eq!(value(&values, "len", &output), "5", "{output}");
    // The same pointer read as a C string runs on to the array's NUL.
    assert_eq!(
        value(&values, "str", &output),
        "\"hello, probe world\"",
        "{output}"
    );
}

#[test]
fn info_sdt_lists_locations_args_and_semaphores() {
    let Some((scratch, program)) = c_fixture(
        "info_sdt_lists_locations_args_and_semaphores",
        "demo",
        DEMO_C,
    ) else {
        return;
    };
    let commands = commands![
        "info sdt",
        "echo @@running@@\\n",
        "sdt-break demo:guarded",
        "run",
        "info sdt gu.rd",
        "info sdt nosuchprobe",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    let (before, after) = output.split_at(output.find("@@running@@").unwrap());
    // Without a process: link-time addresses of the file, all three probes.
    for probe in ["demo:tick", "demo:guarded", "demo:hs_string"] {
        assert!(before.contains(probe), "{probe}:\n{output}");
    }
    assert!(
        before.contains("args: -4@$5") || before.contains("args: 8@%rax -4@$5"),
        "{output}"
    );
    // With one: run-time addresses, the load bias, and the semaphore's value.
    assert!(after.contains("(load bias 0x"), "{output}");
    assert!(after.contains("demo:guarded"), "{output}");
    assert!(!after.contains("demo:tick"), "the regex selects:\n{output}");
    assert!(
        after.contains("= 1 (1 raised by a probe breakpoint)"),
        "{output}"
    );
    assert!(
        after.contains("No static probes matching 'nosuchprobe'"),
        "{output}"
    );
}

#[test]
fn unusable_stap_sdt_path_is_a_clear_error() {
    let Some((scratch, program)) =
        c_fixture("unusable_stap_sdt_path_is_a_clear_error", "demo", DEMO_C)
    else {
        return;
    };
    let commands = commands![
        "set stap-sdt-path /nonexistent/stap-sdt",
        "sdt-break demo:tick",
        "info sdt",
        format!("set stap-sdt-path {STAP_SDT}"),
        "show stap-sdt-path",
        "info sdt tick",
    ];
    let output = run_plain_gdb(&scratch, &commands, &program);
    assert!(
        output
            .contains("stap-sdt-path is '/nonexistent/stap-sdt', which is not an executable file."),
        "{output}"
    );
    assert!(
        output.contains(&format!("The stap-sdt program is {STAP_SDT}.")),
        "{output}"
    );
    assert!(output.contains("demo:tick"), "{output}");
}

#[test]
fn missing_stap_sdt_is_a_clear_error() {
    let Some((scratch, program)) = c_fixture("missing_stap_sdt_is_a_clear_error", "demo", DEMO_C)
    else {
        return;
    };
    // A copy of the plugin outside any checkout with a build tree, no
    // $STAP_SDT, no stap-sdt on PATH: nothing to find.
    let copy = scratch.join("gdb-plugin");
    std::fs::create_dir_all(copy.join("stap_sdt")).unwrap();
    let source = plugin();
    let source_dir = source.parent().unwrap();
    std::fs::copy(&source, copy.join("stap_sdt.py")).unwrap();
    for entry in std::fs::read_dir(source_dir.join("stap_sdt")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py") {
            std::fs::copy(&path, copy.join("stap_sdt").join(path.file_name().unwrap())).unwrap();
        }
    }
    let gdb = test_support::which("gdb").unwrap();
    let output = test_support::run(
        std::process::Command::new(gdb)
            .args(["-nx", "-batch", "-iex", "set debuginfod enabled off", "-ex"])
            .arg(format!("source {}", copy.join("stap_sdt.py").display()))
            .args([
                "-ex",
                "sdt-break demo:tick",
                "-ex",
                "info sdt",
                "-ex",
                "show stap-sdt-path",
            ])
            .arg(&program)
            .env_remove("STAP_SDT")
            .env_remove("CARGO_TARGET_DIR")
            .env("PATH", "/nonexistent"),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let message = "Cannot find the stap-sdt program, which the stap-sdt plugin needs to list \
                   probes. Point at it with `set stap-sdt-path PATH` or $STAP_SDT, or put it on PATH";
    assert_eq!(text.matches(message).count(), 3, "{text}");
    assert!(!text.contains("Traceback"), "{text}");
}

#[test]
fn sdt_break_completes_probe_names() {
    let Some((scratch, program)) = c_fixture("sdt_break_completes_probe_names", "demo", DEMO_C)
    else {
        return;
    };
    let commands = commands![
        "complete sdt-break demo:t",
        "complete sdt-tbreak probe:demo:g"
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    let lines: Vec<&str> = output.lines().filter(|l| l.starts_with("sdt-")).collect();
    assert_eq!(
        lines,
        [
            "sdt-break demo:tick",
            "sdt-break demo:twice",
            "sdt-tbreak probe:demo:guarded"
        ],
        "{output}"
    );
}

#[test]
fn stap_sdt_gdb_without_a_plugin_says_where_it_looked() {
    let output = std::process::Command::new(STAP_SDT)
        .args([
            "gdb",
            "--plugin",
            "/nonexistent/stap_sdt.py",
            "--",
            "-batch",
        ])
        .bounded_output()
        .expect("run stap-sdt gdb");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot find the GDB plugin"), "{stderr}");
    assert!(stderr.contains("/nonexistent/stap_sdt.py"), "{stderr}");
}
