//! Issue 12, GDB: `break probe:PROVIDER:NAME` as a new user types it.
//!
//! GDB 13.1 reads `break probe:demo:tick` as FILE:LINE and, with its default
//! `breakpoint pending auto`, asks whether to make it pending (in -batch and
//! scripts it answers no and the program runs to its end). The plugin turns
//! `breakpoint pending` on, adopts the pending breakpoint at once and keeps it
//! as the user made it: number, condition, `thread`, `commands`, `tbreak` and
//! enable state. GDB's own `break -probe-stap P:N if COND` drops COND; the
//! plugin puts it back where it can see the command, and says so where not.
//! Batch sessions and sessions on a pseudo-terminal (GDB's questions, history).

mod gdb_common;

use gdb_common::*;

const DEMO_C: &str = include_str!("gdb_fixtures/demo.c");
const PENDING_ON: &str =
    "stap-sdt: `set breakpoint pending on` (for `break probe:PROVIDER:NAME`); \
                          `set breakpoint pending auto` asks again.";

/// The text of the GDB session after its `@@NAME@@` marker.
fn after<'a>(output: &'a str, marker: &str) -> &'a str {
    let at = output
        .find(&format!("@@{marker}@@"))
        .unwrap_or_else(|| panic!("no @@{marker}@@ in:\n{output}"));
    &output[at..]
}

#[test]
fn break_probe_with_condition_stops_where_it_holds() {
    let Some((scratch, program)) = c_fixture(
        "break_probe_with_condition_stops_where_it_holds",
        "demo",
        DEMO_C,
    ) else {
        return;
    };
    // The issue's command, as it is: no `set breakpoint pending on` first.
    let commands = commands![
        "break probe:demo:tick if $_probe_arg0 == 2",
        "run",
        show("i", "$_probe_arg0"),
        "echo @@stopped@@\\n",
        "continue",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    assert_eq!(output.matches(PENDING_ON).count(), 1, "{output}");
    assert!(!output.contains("answered N"), "{output}");
    assert!(
        output.contains("stap-sdt: breakpoint 1 is probe demo:tick if $_probe_arg0 == 2: "),
        "{output}"
    );
    assert_eq!(stops(&output), 1, "{output}");
    assert!(output.contains("\nBreakpoint 1, main ("), "{output}");
    assert_eq!(value(&marked(&output), "i", &output), "2", "{output}");
    let stopped = after(&output, "stopped");
    assert!(
        !output[..output.len() - stopped.len()].contains("tick 3"),
        "{output}"
    );
    assert!(
        stopped.contains("tick 3 1003") && stopped.contains("done"),
        "{output}"
    );
}

#[test]
fn plain_gdb_sourcing_the_plugin_turns_pending_on_once() {
    let Some((scratch, program)) = c_fixture(
        "plain_gdb_sourcing_the_plugin_turns_pending_on_once",
        "demo",
        DEMO_C,
    ) else {
        return;
    };
    let commands = commands![
        format!("source {}", plugin().display()),
        "show breakpoint pending",
        "break probe:demo:tick",
        // What docs/gdb.md says turns GDB's question back on.
        "set breakpoint pending auto",
        "show breakpoint pending",
    ];
    // run_plain_gdb sources the plugin first; the second `source` is the
    // ~/.gdbinit line on top of `stap-sdt gdb`: still one message.
    let output = run_plain_gdb(&scratch, &commands, &program);
    assert_eq!(output.matches(PENDING_ON).count(), 1, "{output}");
    assert!(
        output.contains("Debugger's behavior regarding pending breakpoints is on."),
        "{output}"
    );
    assert!(
        output.contains("Debugger's behavior regarding pending breakpoints is auto."),
        "{output}"
    );
    assert!(
        output.contains("stap-sdt: breakpoint 1 is probe demo:tick: "),
        "{output}"
    );
}

#[test]
fn adopted_breakpoint_keeps_number_thread_commands_tbreak_and_enable_state() {
    let Some((scratch, program)) = c_fixture(
        "adopted_breakpoint_keeps_number_thread_commands_tbreak_and_enable_state",
        "demo",
        DEMO_C,
    ) else {
        return;
    };
    let script = r#"break main
break probe:demo:tick thread 1 if $_probe_arg0 >= 3
commands
silent
printf "tick-commands %d\n", $_probe_arg0
continue
end
tbreak probe:demo:twice
break probe:demo:guarded
disable 4
info sdt-breakpoints
run
continue
echo @@at-twice@@\n
info breakpoints
info sdt guarded
continue
"#;
    let output = run_gdb_script(&scratch, script, &program, &[]);
    // Numbers as GDB gave them, after `break main`'s 1.
    for (number, what) in [
        (
            2,
            "breakpoint 2 is probe demo:tick thread 1 if $_probe_arg0 >= 3",
        ),
        (3, "temporary breakpoint 3 is probe demo:twice"),
        (4, "breakpoint 4 is probe demo:guarded"),
    ] {
        assert!(
            output.contains(&format!("stap-sdt: {what}: ")),
            "{number}:\n{output}"
        );
    }
    assert!(
        output.contains("Breakpoint 4 probe:demo:guarded, disabled, pending"),
        "{output}"
    );
    // The commands given before `run` ran at each stop where the condition held.
    assert_eq!(
        lines_starting(&output, "tick-commands "),
        ["tick-commands 3", "tick-commands 4"],
        "{output}"
    );
    assert!(
        output.contains("\nTemporary breakpoint 3, twice ("),
        "{output}"
    );
    let at_twice = after(&output, "at-twice");
    assert!(
        !at_twice.contains("\n3       breakpoint"),
        "deleted:\n{output}"
    );
    assert!(
        at_twice.contains("\n4       breakpoint     keep n"),
        "{output}"
    );
    // Disabled: no stop, and its semaphore was never raised.
    assert!(!output.contains("Breakpoint 4, "), "{output}");
    assert!(
        lines_starting(&output, "guarded ")
            .iter()
            .all(|l| l.starts_with("guarded disabled")),
        "{output}"
    );
    assert_eq!(stops(&output), 2, "main and twice:\n{output}");
    assert!(output.contains("done"), "{output}");
}

#[test]
fn commands_right_after_sdt_break_before_run() {
    let Some((scratch, program)) =
        c_fixture("commands_right_after_sdt_break_before_run", "demo", DEMO_C)
    else {
        return;
    };
    let script = r#"sdt-break demo:tick if $_probe_arg0 == 2
commands
printf "seen %d\n", $_probe_arg0
end
run
continue
"#;
    let output = run_gdb_script(&scratch, script, &program, &[]);
    assert!(!output.contains("Argument required"), "{output}");
    assert!(
        output.contains("Breakpoint 1 (probe:demo:tick if $_probe_arg0 == 2): "),
        "{output}"
    );
    assert!(output.contains("\nBreakpoint 1, main ("), "{output}");
    assert_eq!(lines_starting(&output, "seen "), ["seen 2"], "{output}");
    assert!(output.contains("done"), "{output}");
}

#[test]
fn gdb_probe_stap_keeps_its_condition() {
    let Some((scratch, program)) = c_fixture("gdb_probe_stap_keeps_its_condition", "demo", DEMO_C)
    else {
        return;
    };
    let commands = commands![
        "break -probe-stap demo:tick if $_probe_arg0 == 3",
        "run",
        show("i", "$_probe_arg0"),
        "continue",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    assert!(
        output.contains(
            "GDB 13 drops `if $_probe_arg0 == 3` after `-probe-stap demo:tick`; \
             the plugin put it back."
        ),
        "{output}"
    );
    assert_eq!(stops(&output), 1, "{output}");
    assert!(output.contains("\nBreakpoint 1, main ("), "{output}");
    assert_eq!(value(&marked(&output), "i", &output), "3", "{output}");
    assert!(output.contains("done"), "{output}");
}

#[test]
fn gdb_probe_stap_condition_in_a_script_is_said_to_be_dropped() {
    let Some((scratch, program)) = c_fixture(
        "gdb_probe_stap_condition_in_a_script_is_said_to_be_dropped",
        "demo",
        DEMO_C,
    ) else {
        return;
    };
    // From a sourced file the plugin cannot see the command's text.
    let script = "break -probe-stap demo:tick if $_probe_arg0 == 3\nrun\n";
    let output = run_gdb_script(&scratch, script, &program, &[]);
    assert!(
        output.contains(
            "GDB 13 drops anything after `-probe-stap demo:tick` (`if COND`, `thread N`) \
             and the plugin cannot see this command's text here, so a condition written \
             there is lost: set one with `condition 1 COND`."
        ),
        "{output}"
    );
}

#[test]
fn interactive_pending_question_and_default() {
    if !have_python3("interactive_pending_question_and_default") {
        return;
    }
    let Some((scratch, program)) =
        c_fixture("interactive_pending_question_and_default", "demo", DEMO_C)
    else {
        return;
    };
    let output = run_gdb_pty(
        &scratch,
        &[
            // The plugin's default: no question.
            ("(gdb) ", "break probe:demo:hs_string"),
            // GDB's question back, answered at the keyboard.
            ("(gdb) ", "set breakpoint pending auto"),
            ("(gdb) ", "break probe:demo:tick if $_probe_arg0 == 1"),
            ("(y or [n]) ", "y"),
            ("(gdb) ", "run"),
            ("(gdb) ", "print $_probe_arg0 + 100"),
            ("(gdb) ", "kill"),
            ("(y or n) ", "y"),
            ("(gdb) ", "quit"),
        ],
        &program,
    );
    let question = output
        .find("Make breakpoint pending on future shared library load?")
        .expect(&output);
    assert!(
        output[..question].contains("stap-sdt: breakpoint 1 is probe demo:hs_string: "),
        "{output}"
    );
    assert!(
        output[question..]
            .contains("stap-sdt: breakpoint 2 is probe demo:tick if $_probe_arg0 == 1: "),
        "{output}"
    );
    assert!(output.contains("\nBreakpoint 2, main ("), "{output}");
    assert!(output.contains("= 101"), "{output}");
}

#[test]
fn interactive_probe_stap_condition_from_history() {
    if !have_python3("interactive_probe_stap_condition_from_history") {
        return;
    }
    let Some((scratch, program)) = c_fixture(
        "interactive_probe_stap_condition_from_history",
        "demo",
        DEMO_C,
    ) else {
        return;
    };
    let output = run_gdb_pty(
        &scratch,
        &[
            ("(gdb) ", "break -probe-stap demo:tick if $_probe_arg0 == 2"),
            ("(gdb) ", "run"),
            ("(gdb) ", "print $_probe_arg0 + 100"),
            ("(gdb) ", "kill"),
            ("(y or n) ", "y"),
            ("(gdb) ", "quit"),
        ],
        &program,
    );
    assert!(output.contains("the plugin put it back."), "{output}");
    assert!(output.contains("\nBreakpoint 1, main ("), "{output}");
    assert!(output.contains("= 102"), "{output}");
}
