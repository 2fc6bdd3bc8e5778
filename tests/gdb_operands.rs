//! `$_probe_argN` for every x86-64 operand form and more than 12 arguments.
//!
//! GDB 13.1's own `$_probe_argN` fails on `sym(%rip)`, `sym+off(%rip)`
//! ("Cannot parse expression"), hex displacements such as `0x8(%rbx)`, the
//! float suffix `8f@`, and stops at `$_probe_arg11`. The fixture's probe has 18
//! arguments covering those forms and registers of every width (`%ah` too);
//! the program prints what each one must read as.

mod gdb_common;

use gdb_common::*;

const OPERANDS_C: &str = include_str!("gdb_fixtures/operands.c");

#[test]
fn every_operand_form_and_eighteen_arguments() {
    let Some((scratch, program)) = c_fixture(
        "every_operand_form_and_eighteen_arguments",
        "operands",
        OPERANDS_C,
    ) else {
        return;
    };
    let mut commands = commands![
        "sdt-break probe:ops:all",
        "run",
        show("argc", "$_probe_argc")
    ];
    for n in 0..18 {
        commands.extend(show(&format!("arg{n}"), &format!("$_probe_arg{n}")));
    }
    commands.extend(show("fn17", "$_probe_arg(17)"));
    commands.extend(show("beyond", "$_probe_arg18"));
    commands.push("info probe-args".into());
    commands.push("continue".into());
    let output = run_gdb(&scratch, &commands, &program, &[]);
    let values = marked(&output);

    let expected: Vec<(String, String)> = lines_starting(&output, "expect ")
        .iter()
        .map(|line| {
            let mut words = line.split_whitespace().skip(1);
            (
                words.next().unwrap().to_string(),
                words.next().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        expected.len(),
        19,
        "the fixture prints 18 values and argc:\n{output}"
    );
    for (n, want) in &expected {
        let got = if n == "argc" {
            value(&values, "argc", &output)
        } else {
            value(&values, &format!("arg{n}"), &output)
        };
        assert_eq!(got, want, "argument {n}:\n{output}");
    }
    assert_eq!(value(&values, "fn17", &output), "1.25", "{output}");
    assert_eq!(value(&values, "beyond", &output), "void", "{output}");
    // info probe-args shows each spec with its value.
    assert!(
        output.contains("$_probe_arg12 = 30 (0x1e)  (-4@g_table+8(%rip): signed 4 bytes)"),
        "{output}"
    );
    assert!(
        output.contains("$_probe_arg13 = 2.5  (8f@%xmm0: float 8 bytes)"),
        "{output}"
    );
    assert!(
        output.contains("fired"),
        "the program ran to its end:\n{output}"
    );
}

/// At a stop of GDB's own `break -probe-stap`, the plugin's values replace
/// GDB's `$_probe_argN` (which fail on this probe: "Invalid register name
/// `r12b'", and nothing past `$_probe_arg11`).
#[test]
fn gdb_own_probe_breakpoint_gets_the_plugin_values() {
    let Some((scratch, program)) = c_fixture(
        "gdb_own_probe_breakpoint_gets_the_plugin_values",
        "operands",
        OPERANDS_C,
    ) else {
        return;
    };
    let commands = commands![
        "break -probe-stap ops:all",
        "run",
        show("sym", "$_probe_arg11"),
        show("symoff", "$_probe_arg12"),
        show("last", "$_probe_arg17"),
        "continue",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    let values = marked(&output);
    let expect = |n: &str| {
        lines_starting(&output, &format!("expect {n} "))[0]
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(value(&values, "sym", &output), expect("11"), "{output}");
    assert_eq!(value(&values, "symoff", &output), expect("12"), "{output}");
    assert_eq!(value(&values, "last", &output), expect("17"), "{output}");
}

const DEMO_C: &str = include_str!("gdb_fixtures/demo.c");

/// A 32-bit (i386) static program: `%ebp`-relative operands, 4-byte `long`,
/// semaphores, and a condition.
/// `source` built statically by the i386 cross compiler with `flags`, or
/// None after a printed skip (no GDB, compiler or sys/sdt.h).
fn i386_program(
    test: &str,
    source: &str,
    flags: &[&str],
) -> Option<(test_support::Scratch, std::path::PathBuf)> {
    if !have_gdb(test) {
        return None;
    }
    let cc = test_support::require(test, "i686-linux-gnu-gcc")?;
    let Some(include) = test_support::system_sdt_include() else {
        test_support::skip(test, "no sys/sdt.h (systemtap-sdt-dev)");
        return None;
    };
    let scratch = test_support::Scratch::new();
    let mut args = flags.to_vec();
    args.extend(["-static", "-idirafter", include.to_str().unwrap()]);
    let program = scratch.compile(cc.to_str().unwrap(), "t32.c", source, "t32", &args);
    Some((scratch, program))
}

#[test]
fn i386_static_program() {
    let Some((scratch, program)) = i386_program("i386_static_program", DEMO_C, &["-O0", "-g"])
    else {
        return;
    };
    let commands = commands![
        "sdt-break demo:tick if $_probe_arg0 == 3",
        "sdt-break demo:guarded if $_probe_arg0 == 4",
        "run",
        show("i", "$_probe_arg0"),
        show("big", "$_probe_arg1"),
        "info probe-args",
        "continue",
        show("guarded", "$_probe_arg0"),
        "delete",
        "continue",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    let values = marked(&output);
    assert_eq!(value(&values, "i", &output), "3", "{output}");
    assert_eq!(value(&values, "big", &output), "1003", "{output}");
    assert!(output.contains("(%ebp): signed 4 bytes)"), "{output}");
    assert_eq!(value(&values, "guarded", &output), "4", "{output}");
    // The semaphore was raised from the start: every iteration saw it.
    assert_eq!(
        lines_starting(&output, "guarded enabled").len(),
        5,
        "{output}"
    );
    assert!(output.contains("done"), "{output}");
}

/// Symbols with registers: i386 PIC's `sym@GOTOFF(%base,%index,4)` (the
/// base register holds the GOT, so it is not added again) and plain
/// `(%base,%index,scale)` forms, at -O2.
#[test]
fn i386_got_relative_and_index_forms() {
    let Some((scratch, program)) = i386_program(
        "i386_got_relative_and_index_forms",
        include_str!("fixtures/index_forms.c"),
        &["-O2"],
    ) else {
        return;
    };
    let commands = commands![
        "sdt-break idx:hit if $_probe_arg1 == 2000",
        "run < /dev/null",
        show("short", "$_probe_arg1"),
        show("global", "$_probe_arg3"),
        show("name", "(char *)$_probe_arg4"),
        show("gname", "(char *)$_probe_arg6"),
        "info probe-args",
        "continue",
    ];
    let output = run_gdb(&scratch, &commands, &program, &[]);
    let values = marked(&output);
    assert!(
        output.contains("gtable@GOTOFF"),
        "the fixture must use @GOTOFF: {output}"
    );
    assert_eq!(value(&values, "short", &output), "2000", "{output}");
    assert_eq!(value(&values, "global", &output), "-200", "{output}");
    assert!(
        value(&values, "name", &output).ends_with("\"beta\""),
        "{output}"
    );
    assert!(
        value(&values, "gname", &output).ends_with("\"one\""),
        "{output}"
    );
}
