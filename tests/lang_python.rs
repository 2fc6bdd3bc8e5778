//! The CPython tapset on Debian's /usr/bin/python3.11: exact call counts,
//! the `line` semaphore quirk, call flow, -p scoping, named events.
//!
//! The runtime cannot be copied per test (it needs its install tree), so
//! every test shares the /usr/bin/python3.11 inode. This is safe because
//! each tracer is scoped to its own process (-c or -p): the perf events
//! filter by task, and with ref_ctr_offset the kernel raises the semaphores
//! only in the processes it installs the breakpoint for, so parallel tests
//! neither see each other's calls nor change each other's semaphores.

mod lang_support;
mod trace_support;

use lang_support::*;
use std::path::Path;
use std::time::Duration;
use test_support::Scratch;

const PYTHON: &str = "/usr/bin/python3.11";

/// A known call graph: f 3 times, g 7 times (twice per f, once from the
/// top), h never; `wait` first reads a line from stdin when asked to.
const SCRIPT: &str = r#"
import sys

def h():
    pass

def g(x):
    return x + 1

def f():
    g(1)
    g(2)

if len(sys.argv) > 1 and sys.argv[1] == "wait":
    print("ready", flush=True)
    sys.stdin.readline()
for _ in range(3):
    f()
g(0)
"#;

fn python(test: &str) -> bool {
    if !Path::new(PYTHON).exists() {
        test_support::skip(test, "/usr/bin/python3.11 is not installed (python3.11)");
        return false;
    }
    prerequisites(test)
}

fn script(scratch: &Scratch) -> String {
    scratch.write("graph.py", SCRIPT).display().to_string()
}

/// `stap-sdt calls -l python FLAGS -c 'python3.11 graph.py'`: the script's
/// path (the functions' file name) and what the view printed.
fn calls_of_the_script(flags: &[&str]) -> (Scratch, String, Output) {
    let scratch = Scratch::new();
    let script = script(&scratch);
    let command = format!("{PYTHON} {script}");
    let mut args = vec!["calls", "-l", "python"];
    args.extend_from_slice(flags);
    args.extend(["-c", &command]);
    let out = stap_sdt(&args, Duration::from_secs(60));
    (scratch, script, out)
}

/// The script started in `wait` mode: it has said `ready` and runs the
/// graph once per line on its stdin.
fn waiting_python(script: &str) -> std::process::Child {
    let mut child = std::process::Command::new(PYTHON)
        .args([script, "wait"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start python3.11");
    let mut stdout = trace_support::Lines::new(child.stdout.take().unwrap());
    stdout.wait_for("ready");
    child
}

#[test]
fn calls_counts_exactly() {
    if !python("calls_counts_exactly") {
        return;
    }
    let (_scratch, script, out) = calls_of_the_script(&[]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(
        calls_of(&out.stdout, &format!("{script}:f")),
        3,
        "{}",
        out.stdout
    );
    assert_eq!(
        calls_of(&out.stdout, &format!("{script}:g")),
        7,
        "{}",
        out.stdout
    );
    assert_eq!(calls_of(&out.stdout, &format!("{script}:h")), 0);
    assert_eq!(calls_of(&out.stdout, &format!("{script}:<module>")), 1);
    // Sorted by calls: g before f.
    let rows = call_rows(&out.stdout);
    let pos = |n: &str| rows.iter().position(|(r, _)| *r == format!("{script}:{n}"));
    assert!(pos("g") < pos("f"));
    assert!(
        out.stderr.contains("python.line (hidden)"),
        "{}",
        out.stderr
    );
}

#[test]
fn latency_and_top() {
    if !python("latency_and_top") {
        return;
    }
    let (_scratch, script, out) = calls_of_the_script(&["-L"]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    let row = |name: &str| -> Vec<String> {
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&format!("{script}:{name}")))
            .unwrap_or_else(|| panic!("no row for {name}: {}", out.stdout))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let (f, g) = (row("f"), row("g"));
    assert_eq!(f[1], "3");
    assert_eq!(g[1], "7");
    let total = |r: &[String]| r[2].parse::<f64>().unwrap();
    // FUNCTION CALLS TOTAL SELF MEAN P50 P99 MAX
    let own = |r: &[String]| r[3].parse::<f64>().unwrap();
    let mean = |r: &[String]| r[4].parse::<f64>().unwrap();
    // f includes its two calls of g: more time per call than g.
    assert!(mean(&f) > mean(&g), "{}", out.stdout);
    // ... and its own time leaves them out.
    assert!(own(&f) < total(&f), "{}", out.stdout);
    assert!(total(&g) > 0.0);
    assert!((mean(&g) * 7.0 - total(&g)).abs() < 0.01 * total(&g) + 0.01);
    // -T 2 keeps the two functions with the most time.
    let (_scratch, _, top) = calls_of_the_script(&["-L", "-T", "2"]);
    assert_eq!(top.stdout.lines().count(), 3, "{}", top.stdout);
}

#[test]
fn function_entry_needs_the_line_semaphore() {
    if !python("function_entry_needs_the_line_semaphore") {
        return;
    }
    // The quirk: function__entry alone fires for none of the script's
    // ordinary functions (only for generator frames elsewhere), while
    // function__return fires for every one. Plain `trace` raises `line`'s
    // semaphore too (issue 12), says so, and sees every entry.
    let scratch = Scratch::new();
    let script = script(&scratch);
    let command = format!("{PYTHON} {script}");
    let alone = stap_sdt(
        &[
            "trace",
            "-c",
            &command,
            &format!("{PYTHON}:python:function__entry"),
            &format!("{PYTHON}:python:function__return"),
            "--str",
            "0,1",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(alone.code, Some(0), "{alone:#?}");
    let mine = |probe: &str| {
        alone
            .stdout
            .lines()
            .filter(|l| l.contains(probe) && l.contains(&script))
            .count()
    };
    assert_eq!(mine("function__entry"), 11, "{}", alone.stdout);
    assert_eq!(mine("function__return"), 11, "{}", alone.stdout);
    assert!(alone.stderr.contains("python:line"), "{}", alone.stderr);
    // ... and the tapset raises `line` (hidden) so that it does.
    let flow = stap_sdt(
        &["flow", "-l", "python", "-c", &command, "--filter", &script],
        Duration::from_secs(60),
    );
    assert!(!flow.stdout.contains("line"), "{}", flow.stdout);
    let lines = flow_lines(&flow.stdout, &script);
    let f = format!("{script}:f");
    let g = format!("{script}:g");
    let m = format!("{script}:<module>");
    let mut expected = vec![format!("-> {m}")];
    for _ in 0..3 {
        expected.push(format!("  -> {f}"));
        for _ in 0..2 {
            expected.push(format!("    -> {g}"));
            expected.push(format!("    <- {g}"));
        }
        expected.push(format!("  <- {f}"));
    }
    expected.push(format!("  -> {g}"));
    expected.push(format!("  <- {g}"));
    expected.push(format!("<- {m}"));
    assert_eq!(lines, expected, "{}", flow.stdout);
}

#[test]
fn pid_scope_sees_only_that_process() {
    if !python("pid_scope_sees_only_that_process") {
        return;
    }
    let scratch = Scratch::new();
    let script = script(&scratch);
    let mut traced = waiting_python(&script);
    let mut other = waiting_python(&script);
    let pid = traced.id().to_string();
    let mut tracer = std::process::Command::new(BIN)
        .args(["calls", "-l", "python", "-p", &pid])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = trace_support::Lines::new(tracer.stderr.take().unwrap());
    let stdout = trace_support::Lines::new(tracer.stdout.take().unwrap());
    stderr.wait_for("Tracing python in process");
    // Both run the graph; the tracer ends when its process exits.
    use std::io::Write;
    for child in [&mut other, &mut traced] {
        writeln!(child.stdin.as_mut().unwrap()).unwrap();
    }
    assert!(test_support::bounded::wait_within(
        &mut other,
        test_support::bounded::EXIT_LIMIT,
        "untraced python"
    )
    .success());
    assert!(test_support::bounded::wait_within(
        &mut traced,
        test_support::bounded::EXIT_LIMIT,
        "traced python"
    )
    .success());
    let tracer_pid = tracer.id();
    assert!(test_support::bounded::wait_within(
        &mut tracer,
        test_support::bounded::EXIT_LIMIT,
        "stap-sdt calls"
    )
    .success());
    let out = stdout.rest().join("\n");
    assert_eq!(calls_of(&out, &format!("{script}:f")), 3, "{out}");
    assert_eq!(calls_of(&out, &format!("{script}:g")), 7, "{out}");
    assert_no_events_of(tracer_pid);
}

#[test]
fn named_events_decode_imports_and_gc() {
    if !python("named_events_decode_imports_and_gc") {
        return;
    }
    let scratch = Scratch::new();
    let module = scratch.write("probe_me_mod.py", "VALUE = 42\n");
    let main = scratch.write(
        "main.py",
        "import sys, gc\nsys.path.insert(0, sys.argv[1])\nimport probe_me_mod\ngc.collect(1)\n",
    );
    let command = format!(
        "{PYTHON} {} {}",
        main.display(),
        module.parent().unwrap().display()
    );
    let out = events(
        "python",
        &command,
        true,
        &["python.import.*", "python.gc.*"],
    );
    assert_eq!(out.code, Some(0), "{out:#?}");
    let events: Vec<serde_json::Value> = json_events(&out.stdout);
    let has = |event: &str, field: &str, value: serde_json::Value| {
        events
            .iter()
            .any(|e| e["event"] == event && e["fields"][field] == value)
    };
    assert!(
        has("python.import.start", "module", "probe_me_mod".into()),
        "{out:#?}"
    );
    assert!(has("python.import.done", "module", "probe_me_mod".into()));
    assert!(has("python.import.done", "found", 1.into()));
    assert!(has("python.gc.start", "generation", 1.into()), "{out:#?}");
    assert!(events.iter().any(|e| e["event"] == "python.gc.done"));
    assert!(events.iter().all(|e| e["event"] != "python.line"));
}

#[test]
fn semaphores_raised_while_tracing_and_restored_after() {
    if !python("semaphores_raised_while_tracing_and_restored_after") {
        return;
    }
    let scratch = Scratch::new();
    let script = script(&scratch);
    let mut child = waiting_python(&script);
    let pid = child.id();
    let line = trace_support::semaphore_address(pid, "python", "line");
    let entry = trace_support::semaphore_address(pid, "python", "function__entry");
    let read = |address| trace_support::read_u16(pid, address);
    assert_eq!((read(line), read(entry)), (0, 0));
    let mut tracer = std::process::Command::new(BIN)
        .args(["calls", "-l", "python", "-p", &pid.to_string(), "-d", "30"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = trace_support::Lines::new(tracer.stderr.take().unwrap());
    stderr.wait_for("Tracing python in process");
    // The hidden `line` probe raises its semaphore like the traced one.
    assert!(read(line) >= 1 && read(entry) >= 1);
    // SIGINT ends the tracer cleanly; the process runs on with both lowered.
    test_support::bounded::signal_pid(tracer.id(), libc::SIGINT);
    let tracer_pid = tracer.id();
    assert!(test_support::bounded::wait_within(
        &mut tracer,
        test_support::bounded::EXIT_LIMIT,
        "stap-sdt calls"
    )
    .success());
    assert_eq!((read(line), read(entry)), (0, 0));
    assert_no_events_of(tracer_pid);
    use std::io::Write;
    writeln!(child.stdin.as_mut().unwrap()).unwrap();
    assert!(test_support::bounded::wait_within(
        &mut child,
        test_support::bounded::EXIT_LIMIT,
        "python"
    )
    .success());
}

/// `--where` filters the runtime views in the kernel, on the probe's own
/// arguments: only `g` is counted (in the kernel), only `g` flows.
#[test]
fn where_keeps_only_the_matching_calls() {
    if !python("where_keeps_only_the_matching_calls") {
        return;
    }
    let (_scratch, script, out) = calls_of_the_script(&["--where", r#"str(arg1) == "g""#]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    let rows: Vec<&str> = out
        .stdout
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(rows.len(), 1, "{}", out.stdout);
    let cells: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(
        cells,
        [format!("{script}:g").as_str(), "7"],
        "{}",
        out.stdout
    );
    // A malformed expression is named before anything starts.
    let (_scratch, _, out) = calls_of_the_script(&["--where", "arg1 = 2"]);
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert!(
        out.stderr.contains("--where") && out.stderr.contains("column 6"),
        "{}",
        out.stderr
    );
}
