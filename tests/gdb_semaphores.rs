//! Semaphores are raised while a probe breakpoint exists, so `ENABLED()`
//! paths run, and are back to their previous value after `delete`,
//! `disable`, `kill` and `detach`. The fixture prints, per iteration, whether
//! its `ENABLED()` check saw the semaphore raised.

mod gdb_common;

use gdb_common::*;
use std::time::{Duration, Instant};

const DEMO_C: &str = include_str!("gdb_fixtures/demo.c");

/// The program's `guarded enabled|disabled I` lines are WANT: `+I` for
/// enabled at iteration I, `-I` for disabled.
fn assert_guarded(output: &str, want: &str) {
    let expected: Vec<String> = want
        .split_whitespace()
        .map(|t| {
            let state = if t.starts_with('+') {
                "enabled"
            } else {
                "disabled"
            };
            format!("guarded {state} {}", &t[1..])
        })
        .collect();
    assert_eq!(lines_starting(output, "guarded "), expected, "{output}");
}

#[test]
fn raised_while_the_breakpoint_exists_restored_after_delete() {
    let Some((scratch, program)) = c_fixture(
        "raised_while_the_breakpoint_exists_restored_after_delete",
        "demo",
        DEMO_C,
    ) else {
        return;
    };
    let commands = commands![
        "info sdt guarded",
        "sdt-break demo:guarded",
        "run",
        show("i", "$_probe_arg0"),
        "info sdt guarded",
        "delete",
        "info sdt guarded",
        "continue",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    assert_eq!(value(&marked(&output), "i", &output), "0", "{output}");
    assert_guarded(&output, "+0 -1 -2 -3 -4");
    let raised = output
        .find("= 1 (1 raised by a probe breakpoint)")
        .expect(&output);
    assert!(
        output[raised..].contains("= 0\n"),
        "lowered after delete:\n{output}"
    );
}

#[test]
fn disable_lowers_and_enable_raises_again() {
    let Some((scratch, program)) =
        c_fixture("disable_lowers_and_enable_raises_again", "demo", DEMO_C)
    else {
        return;
    };
    let commands = commands![
        "sdt-break demo:guarded",
        "run",
        "disable 1",
        // A tick breakpoint (semaphore raised too, but not the guarded one) to stop at i == 2.
        "sdt-break demo:tick if $_probe_arg0 == 2",
        "continue",
        show("tick", "$_probe_arg0"),
        "enable 1",
        "continue",
        show("guarded", "$_probe_arg0"),
        "delete",
        "continue",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    let values = marked(&output);
    assert_eq!(value(&values, "tick", &output), "2", "{output}");
    assert_eq!(value(&values, "guarded", &output), "2", "{output}");
    assert_guarded(&output, "+0 -1 +2 -3 -4");
}

#[test]
fn detach_restores_the_semaphore_in_the_running_program() {
    let Some((scratch, program)) = c_fixture(
        "detach_restores_the_semaphore_in_the_running_program",
        "demo",
        DEMO_C,
    ) else {
        return;
    };
    let commands = commands!["sdt-break demo:guarded", "run", "detach"];
    let mut output = run_gdb(&scratch, &commands, &program, &[]);
    // The detached program finishes on its own, writing to the same log.
    let start = Instant::now();
    while !output.contains("done") && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        output = std::fs::read_dir(scratch.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("gdb-"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect();
    }
    assert!(output.contains(") detached]"), "{output}");
    assert_guarded(&output, "+0 -1 -2 -3 -4");
}

#[test]
fn kill_then_run_raises_it_in_the_new_process() {
    let Some((scratch, program)) =
        c_fixture("kill_then_run_raises_it_in_the_new_process", "demo", DEMO_C)
    else {
        return;
    };
    let commands = commands![
        "sdt-break demo:guarded",
        "run",
        "kill",
        "info breakpoints",
        "run",
        show("i", "$_probe_arg0"),
        "info sdt guarded",
        "delete",
        "continue",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    assert_eq!(value(&marked(&output), "i", &output), "0", "{output}");
    assert_guarded(&output, "+0 +0 -1 -2 -3 -4");
    assert!(
        output.contains("= 1 (1 raised by a probe breakpoint)"),
        "{output}"
    );
    assert_eq!(stops(&output), 2, "{output}");
}

const ATTACHEE_C: &str = include_str!("gdb_fixtures/attachee.c");

/// Creates the attachee's stop file when dropped.
struct StopFile(std::path::PathBuf);

impl Drop for StopFile {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "");
    }
}

/// Attach to a running program, raise its semaphore with a probe breakpoint,
/// and leave it either with `detach` or by GDB exiting (which detaches): the
/// program itself then reads its semaphore as 0 again.
fn attach_and_leave(test: &str, leave: &[&str]) {
    let Some((scratch, program)) = c_fixture(test, "attachee", ATTACHEE_C) else {
        return;
    };
    let stop_file = scratch.join("stop");
    let log_path = scratch.join("attachee.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(&program)
        .arg(&stop_file)
        .stdout(log)
        .spawn()
        .expect("start the attachee");
    // Whatever happens below, the attachee is told to stop (it also stops by itself after 20 s).
    let _stop = StopFile(stop_file.clone());
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let start = Instant::now();
    while !read_log().contains("ready") && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut commands = commands![
        format!("attach {}", child.id()),
        "sdt-break attach:beat",
        "continue",
        show("beat", "$_probe_argc"),
        "info sdt beat",
    ];
    commands.extend(leave.iter().map(|c| c.to_string()));
    let output = run_gdb(&scratch, &commands, &program, &[]);
    std::fs::write(&stop_file, "").unwrap();
    let status = test_support::bounded::wait_within(
        &mut child,
        test_support::bounded::EXIT_LIMIT,
        "the attachee",
    );
    let program_output = read_log();
    assert!(status.success(), "{program_output}\n{output}");
    assert_eq!(value(&marked(&output), "beat", &output), "1", "{output}");
    assert!(
        output.contains("= 1 (1 raised by a probe breakpoint)"),
        "{output}"
    );
    assert!(program_output.contains("enabled "), "{program_output}");
    assert!(
        program_output.contains("final semaphore 0"),
        "{program_output}\n{output}"
    );
}

#[test]
fn detach_from_an_attached_process_restores_its_semaphore() {
    attach_and_leave(
        "detach_from_an_attached_process_restores_its_semaphore",
        &["detach"],
    );
}

#[test]
fn gdb_exiting_while_attached_restores_the_semaphore() {
    // -batch ends by detaching from an attached process, with no `detach` command.
    attach_and_leave("gdb_exiting_while_attached_restores_the_semaphore", &[]);
}

#[test]
fn breakpoints_and_semaphores_follow_exec() {
    let Some((scratch, program)) =
        c_fixture("breakpoints_and_semaphores_follow_exec", "demo", DEMO_C)
    else {
        return;
    };
    let commands = commands![
        "sdt-break demo:guarded if $_probe_arg0 == 4",
        "run",
        "continue",
        show("after_exec", "$_probe_arg0"),
        "info sdt guarded",
        "continue",
    ];
    // With `exec`, the program runs its loop, then execs itself (same pid).
    let output = run_gdb(&scratch, &commands, &program, &["exec"]);
    assert!(output.contains("is executing new program"), "{output}");
    assert_eq!(stops(&output), 2, "{output}");
    assert_eq!(
        value(&marked(&output), "after_exec", &output),
        "4",
        "{output}"
    );
    assert_guarded(&output, "+0 +1 +2 +3 +4 +0 +1 +2 +3 +4");
    assert!(
        output.contains("= 1 (1 raised by a probe breakpoint)"),
        "{output}"
    );
    assert!(!output.contains("cannot"), "{output}");
}
