//! Issue 12, what new users hit outside GDB: write errors and exit statuses,
//! -o/-q, --format newlines, arguments a probe does not have, misspelled
//! probes, CPython's function__entry under plain `trace`.

mod trace_support;

use std::process::{Command, Stdio};
use test_support::bounded::BoundedOutput;
use test_support::Scratch;
use trace_support::*;

/// `stap-sdt ARGS` with stdout to `stdout`; (status, stderr lines).
fn run_to(args: &[&str], stdout: Stdio) -> (Option<i32>, Vec<String>) {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        // (bounded_output would pipe stdout too; these runs end by themselves)
        .output()
        .expect("run stap-sdt");
    let err = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(String::from)
        .collect();
    (out.status.code(), err)
}

fn dev_full() -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap(),
    )
}

#[test]
fn exit_status_table_is_in_help() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for line in ["Exit status", "4  writing the output failed", "2  usage"] {
        assert!(help.contains(line), "{help}");
    }
}

#[test]
fn write_errors_name_the_output_and_detach() {
    if !prerequisites("write_errors_name_the_output_and_detach") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let fx = fx.display().to_string();
    let command = format!("{fx} fire 50");
    let probe = format!("{fx}:fixture:tick");
    for extra in [&[][..], &["--count"], &["--hist", "0"], &["--json"]] {
        let mut args = vec!["trace", "-q", "-c", &command, &probe];
        args.extend_from_slice(extra);
        let (code, err) = run_to(&args, dev_full());
        assert_eq!(code, Some(4), "{extra:?}: {err:?}");
        assert!(
            err.len() == 1
                && err[0].contains("writing to standard output")
                && err[0].contains("No space left")
                && !err[0].contains("panicked"),
            "{extra:?}: {err:?}"
        );
    }
    let (code, err) = run_to(
        &["latency", "-q", "-c", &command, &probe, &probe],
        dev_full(),
    );
    assert_eq!(code, Some(4), "{err:?}");
    assert!(err[0].contains("writing to standard output"), "{err:?}");
    // list: the same line, the same status.
    let (code, err) = run_to(&["list", &fx], dev_full());
    assert_eq!(code, Some(4), "{err:?}");
    assert!(err[0].contains("writing to standard output"), "{err:?}");
}

#[test]
fn closed_pipe_ends_the_trace_with_a_line() {
    if !prerequisites("closed_pipe_ends_the_trace_with_a_line") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let mut target = Target::spawn(&fx, &["loop", "0"]);
    let pid = target.pid().to_string();
    let probe = format!("{}:fixture:tick", fx.display());
    let mut tracer = Tracer::start(&["-p", &pid, &probe]);
    target.send("go");
    tracer.stdout.wait_for("fixture:tick");
    // Close the reading end: the next write fails with EPIPE.
    let mut tracer = tracer;
    drop(std::mem::replace(
        &mut tracer.stdout,
        Lines::new(std::io::empty()),
    ));
    let tracer_pid = tracer.pid();
    let (code, _, err) = tracer.wait();
    assert_eq!(code, Some(4), "{err:?}");
    assert!(
        err.iter()
            .any(|l| l.contains("writing to standard output") && l.contains("detached")),
        "{err:?}"
    );
    // Detached, and the traced process runs on.
    assert!(events_of(tracer_pid).is_empty());
    target.send("quit");
}

#[test]
fn output_file_and_quiet() {
    if !prerequisites("output_file_and_quiet") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let file = scratch.join("hits.txt");
    let command = format!("{} fire 3", fx.display());
    let probe = format!("{}:fixture:tick", fx.display());
    let file_arg = file.display().to_string();
    // --format ending with \n (printf's habit): one line per hit, no blank lines.
    let (code, out, err) = trace(&[
        "-q",
        "-o",
        &file_arg,
        "-c",
        &command,
        &probe,
        "--format",
        "tick %d\\n",
    ]);
    assert_eq!(code, Some(5), "{err:?}");
    assert!(out.is_empty() && err.is_empty(), "{out:?} {err:?}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "tick 0\ntick 1\ntick 2\n"
    );
    // Without -q the status chatter is there.
    let (_, _, err) = trace(&["-o", &file_arg, "-c", &command, &probe]);
    assert!(err.iter().any(|l| l.starts_with("Tracing ")), "{err:?}");
    // -d as a short --duration, -o on latency.
    let (code, _, err) = run_subcommand(
        "latency",
        &[
            "-q", "-d", "10", "-o", &file_arg, "-c", &command, &probe, &probe, "--json",
        ],
    );
    assert_eq!(code, Some(5), "{err:?}");
    assert!(!std::fs::read_to_string(&file).unwrap().is_empty());
    // An -o FILE that cannot be created: status 4 before anything is attached.
    let (code, _, err) = trace(&["-o", "/nonexistent/dir/x", "-c", &command, &probe]);
    assert_eq!(code, Some(4), "{err:?}");
    assert!(err[0].contains("-o /nonexistent/dir/x"), "{err:?}");
}

#[test]
fn arguments_a_probe_lacks_are_errors() {
    if !prerequisites("arguments_a_probe_lacks_are_errors") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let command = format!("{} fire 3", fx.display());
    let probe = format!("{}:fixture:tick", fx.display());
    let cases: [&[&str]; 3] = [
        &["--str", "9"],
        &["--format", "%x %p %5d"],
        &["--hist", "7"],
    ];
    for extra in cases {
        let mut args = vec!["-c", &command, &probe];
        args.extend_from_slice(extra);
        let (code, out, err) = trace(&args);
        assert_eq!(code, Some(2), "{extra:?}: {err:?}");
        assert!(out.is_empty());
        assert!(
            err.len() == 1 && err[0].contains("fixture:tick has 1 argument"),
            "{extra:?}: {err:?}"
        );
    }
}

#[test]
fn misspelled_probes_get_the_nearest_names() {
    if !prerequisites("misspelled_probes_get_the_nearest_names") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let path = fx.display().to_string();
    let out = Command::new(BIN)
        .args(["list", &path, "fixture:tikc"])
        .bounded_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no probe matches `fixture:tikc`; did you mean fixture:tick?"),
        "{err}"
    );
    let probe = format!("{path}:fixture:tikc");
    let (code, _, err) = trace(&["-c", &format!("{path} fire 1"), &probe]);
    assert_eq!(code, Some(1), "{err:?}");
    assert!(err[0].contains("did you mean fixture:tick?"), "{err:?}");
    // A directory whose files carry no probes says so.
    let empty = scratch.join("noprobes");
    std::fs::create_dir(&empty).unwrap();
    std::fs::copy("/bin/true", empty.join("true")).unwrap();
    let out = Command::new(BIN)
        .args(["list", &empty.display().to_string()])
        .bounded_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("carries SDT probes"), "{err}");
}

#[test]
fn python_function_entry_counts_under_plain_trace() {
    if !prerequisites("python_function_entry_counts_under_plain_trace") {
        return;
    }
    let python = "/usr/bin/python3.11";
    if !std::path::Path::new(python).exists() {
        test_support::skip(
            "python_function_entry_counts_under_plain_trace",
            "no python3.11",
        );
        return;
    }
    let scratch = Scratch::new();
    let script = scratch.write(
        "calls.py",
        "def f():\n    pass\nfor _ in range(5):\n    f()\n",
    );
    let command = format!("{python} {}", script.display());
    let (code, out, err) = trace(&[
        "-c",
        &command,
        "--count",
        "--filter",
        "str(arg1) == \"f\"",
        &format!("{python}:python:function__entry"),
    ]);
    assert_eq!(code, Some(0), "{err:?}");
    let text = out.join("\n");
    assert!(
        out.iter()
            .any(|l| l.contains("python:function__entry") && l.split_whitespace().any(|w| w == "5")),
        "{text}\n{err:?}"
    );
    assert!(
        err.iter().any(|l| l.contains("python:line")),
        "the line semaphore is explained: {err:?}"
    );
}

#[test]
fn installed_binary_carries_the_gdb_plugin() {
    if !test_support::is_root() {
        test_support::skip(
            "installed_binary_carries_the_gdb_plugin",
            "a private mount namespace needs root",
        );
        return;
    }
    let (Some(unshare), Some(_)) = (
        test_support::require("installed_binary_carries_the_gdb_plugin", "unshare"),
        test_support::require("installed_binary_carries_the_gdb_plugin", "gdb"),
    ) else {
        return;
    };
    // An "installed" copy of the binary, run with the source tree hidden
    // under an empty tmpfs in a private mount namespace.
    let scratch = Scratch::new();
    let bin = scratch.join("stap-sdt");
    std::fs::copy(BIN, &bin).unwrap();
    let cache = scratch.join("cache");
    let tree = env!("CARGO_MANIFEST_DIR");
    let script = format!(
        "mount -t tmpfs none {tree} && test ! -e {tree}/gdb-plugin && exec {} gdb -- -nx -batch -ex 'help sdt-break'",
        bin.display()
    );
    let out = Command::new(unshare)
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("XDG_CACHE_HOME", &cache)
        .env_remove("STAP_SDT_GDB_PLUGIN")
        .bounded_output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("sdt-break"), "{text}");
    assert!(!text.contains("Undefined command"), "{text}");
    // The plugin was written under the cache directory, named by version.
    let dirs: Vec<_> = std::fs::read_dir(cache.join("stap-sdt"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(dirs[0].join("stap_sdt.py").is_file());
    assert!(dirs[0].join("stap_sdt/__init__.py").is_file());
}

#[test]
fn version_completions_and_man_page() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(head) = head {
        // The binary may lag one commit behind a commit made after the build.
        assert!(text.contains("(commit "), "{text} (HEAD {head})");
    }
    // The attach path, which the environment can choose.
    assert!(
        text.contains("\nattach: uprobe_multi links")
            || text.contains("\nattach: a uprobe perf event"),
        "{text}"
    );
    let forced = Command::new(BIN)
        .arg("--version")
        .env("STAP_SDT_ATTACH", "perf")
        .output()
        .unwrap();
    let forced = String::from_utf8_lossy(&forced.stdout);
    assert!(
        forced.contains("\nattach: a uprobe perf event per site"),
        "{forced}"
    );
    for feature in ["uprobe_multi", "sleepable uprobes", "ring buffer"] {
        assert!(
            text.contains(&format!("{feature} yes")) || text.contains(&format!("{feature} no")),
            "{text}"
        );
    }
    // This machine's kernel (6.18) has uprobe_multi.
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    if kallsyms.contains(" bpf_uprobe_multi_link_attach\n") {
        assert!(text.contains("uprobe_multi yes"), "{text}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        assert!(
            script.contains("stap-sdt")
                && script.contains("latency")
                && script.contains("duration"),
            "{shell}"
        );
    }
    let out = Command::new(BIN).arg("man").output().unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH stap-sdt 1"),
        "{page}"
    );
    assert!(page.contains("Exit status"), "{page}");
    let out = Command::new(BIN).args(["man", "trace"]).output().unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH stap-sdt-trace 1"), "{page}");
    assert!(page.contains("duration"), "{page}");
}

#[test]
fn calls_table_comes_after_the_command_output() {
    if !prerequisites("calls_table_comes_after_the_command_output") {
        return;
    }
    let python = "/usr/bin/python3.11";
    if !std::path::Path::new(python).exists() {
        test_support::skip(
            "calls_table_comes_after_the_command_output",
            "no python3.11",
        );
        return;
    }
    // A program that prints until it is stopped; -d ends the trace first.
    let scratch = Scratch::new();
    let script = scratch.write(
        "chatty.py",
        "import time\ndef tick(i):\n    print('tick', i, flush=True)\n\
         for i in range(100000):\n    tick(i)\n    time.sleep(0.02)\n",
    );
    let command = format!("{python} {}", script.display());
    let out = Command::new(BIN)
        .args(["calls", "-l", "python", "-q", "-d", "1", "-c", &command])
        .stdin(Stdio::null())
        .bounded_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("FUNCTION"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        !lines[header..].iter().any(|l| l.starts_with("tick")),
        "the command's output is inside the table:\n{stdout}"
    );
    assert!(
        lines[header..].iter().any(|l| l.contains(":tick ")),
        "{stdout}"
    );
}
