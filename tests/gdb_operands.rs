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
