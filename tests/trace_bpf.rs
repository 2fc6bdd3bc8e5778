//! Operands uprobe fetchargs cannot read, `disp(%base,%index,scale)`,
//! fetched at the hit by a BPF program: exact values of every width and
//! scale, strings behind index-form pointers, unreadable memory named as
//! a fault, 32-bit programs, `-p` scope, semaphores and cleanup.

mod trace_support;

use std::process::Command;
use test_support::Scratch;
use trace_support::*;

const SOURCE: &str = include_str!("fixtures/index_forms.c");

/// The fixture built with `compiler` and `flags`; panics unless every
/// argument is in base+index form (else the test would not test it).
fn build(scratch: &Scratch, compiler: &str, flags: &[&str]) -> std::path::PathBuf {
    let include = test_support::system_sdt_include().expect("sys/sdt.h");
    let mut args = vec!["-O2", "-idirafter", include.to_str().unwrap()];
    args.extend_from_slice(flags);
    let program = scratch.compile(compiler, "index_forms.c", SOURCE, "ix", &args);
    let listed = test_support::run(Command::new(BIN).args(["list", "--json"]).arg(&program));
    let doc: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let args = &doc["objects"][0]["probes"][0]["locations"][0]["args"];
    let indexed = args
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| !a["operand"]["index"].is_null())
        .count();
    assert!(
        indexed >= 5,
        "the compiler no longer emits base+index operands: {args}"
    );
    program
}

/// `--json` events of one run of `program` under `stap-sdt trace -c`.
fn trace_run(program: &std::path::Path) -> (Vec<serde_json::Value>, Vec<String>) {
    let probe = format!("{}:idx:hit", program.display());
    let cmd = format!("{} </dev/null >/dev/null", program.display());
    let (code, out, err) = trace(&["--json", "--str", "4,6", "-c", &cmd, &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    (json_lines(&out), err)
}

#[test]
fn index_forms_of_every_width_and_scale() {
    let test = "index_forms_of_every_width_and_scale";
    if !prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let program = build(&scratch, "gcc", &[]);
    let (events, err) = trace_run(&program);
    assert!(
        !err.iter().any(|l| l.contains("cannot be fetched")),
        "{err:?}"
    );
    assert_eq!(events.len(), 3, "{events:?}");
    let bytes = [-1, 2, -3];
    let shorts = [-1000, 2000, -3000];
    let longs = [-2_000_000_000i64, 6, -7];
    let gtable = [100, -200, 300];
    let names = ["alpha", "beta", "gamma"];
    let gnames = ["zero", "one", "two"];
    for (i, e) in events.iter().enumerate() {
        let args = e["args"].as_array().unwrap();
        assert_eq!(args[0], bytes[i], "1 byte, scale 1");
        assert_eq!(args[1], shorts[i], "2 bytes, scale 2");
        assert_eq!(args[2], longs[i], "8 bytes, scale 8");
        assert_eq!(args[3], gtable[i], "a global through its address");
        assert_eq!(args[4], names[i], "string behind an index-form pointer");
        assert!(args[5].is_null(), "unreadable memory: {:?}", args[5]);
        assert_eq!(args[6], gnames[i]);
        assert_eq!(e["comm"], "ix");
    }
    // In text, an unreadable argument is a fault, not a value.
    let probe = format!("{}:idx:hit", program.display());
    let cmd = format!("{} </dev/null >/dev/null", program.display());
    let (code, out, err) = trace(&["-c", &cmd, &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    assert_eq!(
        out.iter().filter(|l| l.contains("arg5=<fault>")).count(),
        3,
        "{out:?}"
    );
}

/// 32-bit code: 32-bit base and index registers, addresses wrapping at
/// 4 GiB, 4-byte pointers to strings.
#[test]
fn index_forms_in_a_32_bit_program() {
    let test = "index_forms_in_a_32_bit_program";
    if !prerequisites(test) {
        return;
    }
    let Some(gcc) = test_support::require(test, "i686-linux-gnu-gcc") else {
        return;
    };
    let scratch = Scratch::new();
    let program = build(&scratch, gcc.to_str().unwrap(), &["-static"]);
    let (events, err) = trace_run(&program);
    assert_eq!(events.len(), 3, "{events:?} {err:?}");
    for (i, e) in events.iter().enumerate() {
        let args = e["args"].as_array().unwrap();
        assert_eq!(args[0], [-1, 2, -3][i]);
        assert_eq!(args[1], [-1000, 2000, -3000][i]);
        assert_eq!(args[2], [-2_000_000_000i64, 6, -7][i]);
        assert_eq!(args[3], [100, -200, 300][i], "sym@GOTOFF(%reg,%reg,4)");
        assert_eq!(args[4], ["alpha", "beta", "gamma"][i]);
        assert!(args[5].is_null());
        assert_eq!(args[6], ["zero", "one", "two"][i], "through the GOT");
    }
}

/// `-p`: only that process is seen (another one running the same binary
/// is not), the semaphore is raised while traced and back to 0 after, and
/// nothing of the tracer remains in tracefs.
#[test]
fn index_forms_in_one_process_only() {
    let test = "index_forms_in_one_process_only";
    if !prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let program = build(&scratch, "gcc", &[]);
    let spawn = || {
        let mut t = Target::spawn(&program, &[]);
        t.stdout.wait_for("ready");
        t
    };
    let (mut traced, mut other) = (spawn(), spawn());
    let probe = format!("{}:idx:hit", program.display());
    let pid = traced.pid().to_string();
    let mut tracer = Tracer::start(&["--json", "--str", "4,6", "-p", &pid, &probe]);
    let tracer_pid = tracer.pid();
    traced.send("go");
    assert_eq!(traced.stdout.wait_for("done"), "done semaphore=1");
    other.send("go");
    assert_eq!(other.stdout.wait_for("done"), "done semaphore=0");
    for i in 0..3 {
        let line = tracer.stdout.wait_for("idx:hit");
        let e: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(e["pid"], traced.pid(), "{line}");
        assert_eq!(e["args"][1], [-1000, 2000, -3000][i]);
        assert_eq!(e["args"][4], ["alpha", "beta", "gamma"][i]);
    }
    let (code, out, _) = tracer.interrupt();
    assert_eq!(code, Some(0));
    assert!(
        !out.iter()
            .any(|l| l.contains(&format!("\"pid\":{}", other.pid()))),
        "the other process was not traced: {out:?}"
    );
    assert!(events_of(tracer_pid).is_empty(), "tracefs events left");
    traced.send("go");
    assert_eq!(traced.stdout.wait_for("done"), "done semaphore=0");
    for t in [traced, other] {
        assert!(t.finish().success(), "the traced process ran on unharmed");
    }
}

/// A shell command's children are traced from their first instruction;
/// one that exits before the probe fires changes nothing.
#[test]
fn a_child_that_exits_first_leaves_the_program_attached() {
    let test = "a_child_that_exits_first_leaves_the_program_attached";
    if !prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let program = build(&scratch, "gcc", &[]);
    let probe = format!("{}:idx:hit", program.display());
    let cmd = format!(
        "/bin/true; /bin/true; {} </dev/null >/dev/null",
        program.display()
    );
    let (code, out, err) = trace(&["--json", "-c", &cmd, &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    let events = json_lines(&out);
    assert_eq!(events.len(), 3, "{out:?}");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["args"][1], [-1000, 2000, -3000][i], "{e}");
        assert_eq!(e["comm"], "ix");
    }
}

/// Strings through the program (here behind an index-form pointer, which
/// only the program reads): up to 4095 characters and the NUL, an empty
/// one, and a NULL pointer as a fault; each record carries only the bytes
/// read, so a short string costs what it is long.
#[test]
fn strings_of_every_length_through_the_program() {
    let test = "strings_of_every_length_through_the_program";
    if !prerequisites(test) {
        return;
    }
    let include = test_support::system_sdt_include().expect("sys/sdt.h");
    let scratch = Scratch::new();
    let source = r#"
#include <stdlib.h>
#include <string.h>
#include <sys/sdt.h>
__attribute__((noinline, noipa)) void hit(char **texts, long i) {
    STAP_PROBE2(text, hit, texts[i], i);
}
int main(void) {
    char *texts[4];
    texts[0] = strdup("short");
    texts[1] = malloc(5001);
    memset(texts[1], 'x', 5000);
    texts[1][5000] = 0;
    texts[2] = strdup("");
    texts[3] = 0;
    for (long i = 0; i < 4; i++)
        hit(texts, i);
    return 0;
}
"#;
    let program = scratch.compile(
        "gcc",
        "text.c",
        source,
        "text",
        &["-O2", "-idirafter", include.to_str().unwrap()],
    );
    let probe = format!("{}:text:hit", program.display());
    let cmd = program.display().to_string();
    let (code, out, err) = trace(&[
        "--json",
        "--str",
        "0",
        "--str-max",
        "4096",
        "-c",
        &cmd,
        &probe,
    ]);
    assert_eq!(code, Some(0), "{err:?}");
    let texts: Vec<serde_json::Value> = json_lines(&out)
        .iter()
        .map(|e| e["args"][0].clone())
        .collect();
    assert_eq!(texts.len(), 4, "{err:?}");
    assert_eq!(texts[0], "short");
    let long = texts[1].as_str().unwrap();
    assert_eq!(long.len(), 4095, "cut where the kernel's string limit is");
    assert!(long.bytes().all(|b| b == b'x'));
    assert_eq!(texts[2], "");
    assert!(texts[3].is_null(), "a NULL pointer is a fault");
}
