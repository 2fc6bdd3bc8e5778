//! Semaphores are raised while a probe breakpoint exists, so `ENABLED()`
//! paths run, and are back to their previous value after `delete`,
//! `disable`, `kill` and `detach`. The fixture prints, per iteration, whether
//! its `ENABLED()` check saw the semaphore raised.

mod gdb_common;

use gdb_common::*;
use std::time::{Duration, Instant};
use test_support::Scratch;

const DEMO_C: &str = include_str!("gdb_fixtures/demo.c");

fn guarded_lines(output: &str) -> Vec<&str> {
    lines_starting(output, "guarded ")
}

#[test]
fn raised_while_the_breakpoint_exists_restored_after_delete() {
    if !have_gdb("raised_while_the_breakpoint_exists_restored_after_delete") {
        return;
    }
    let scratch = Scratch::new();
    let program = compile_c(&scratch, "demo", DEMO_C, &[]);
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
    assert_eq!(
        guarded_lines(&output),
        [
            "guarded enabled 0",
            "guarded disabled 1",
            "guarded disabled 2",
            "guarded disabled 3",
            "guarded disabled 4"
        ],
        "{output}"
    );
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
    if !have_gdb("disable_lowers_and_enable_raises_again") {
        return;
    }
    let scratch = Scratch::new();
    let program = compile_c(&scratch, "demo", DEMO_C, &[]);
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
    assert_eq!(
        guarded_lines(&output),
        [
            "guarded enabled 0",
            "guarded disabled 1",
            "guarded enabled 2",
            "guarded disabled 3",
            "guarded disabled 4"
        ],
        "{output}"
    );
}

#[test]
fn detach_restores_the_semaphore_in_the_running_program() {
    if !have_gdb("detach_restores_the_semaphore_in_the_running_program") {
        return;
    }
    let scratch = Scratch::new();
    let program = compile_c(&scratch, "demo", DEMO_C, &[]);
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
    assert_eq!(
        guarded_lines(&output),
        [
            "guarded enabled 0",
            "guarded disabled 1",
            "guarded disabled 2",
            "guarded disabled 3",
            "guarded disabled 4"
        ],
        "{output}"
    );
}

#[test]
fn kill_then_run_raises_it_in_the_new_process() {
    if !have_gdb("kill_then_run_raises_it_in_the_new_process") {
        return;
    }
    let scratch = Scratch::new();
    let program = compile_c(&scratch, "demo", DEMO_C, &[]);
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
    assert_eq!(
        guarded_lines(&output),
        [
            "guarded enabled 0",
            "guarded enabled 0",
            "guarded disabled 1",
            "guarded disabled 2",
            "guarded disabled 3",
            "guarded disabled 4"
        ],
        "{output}"
    );
    assert!(
        output.contains("= 1 (1 raised by a probe breakpoint)"),
        "{output}"
    );
    assert_eq!(stops(&output), 2, "{output}");
}
