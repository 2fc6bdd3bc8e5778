//! Issue 15's acceptance, from Python: `pip install sdt-dynamic/python`
//! into a venv, then a Python 3.11 program defines a probe with 12
//! arguments of mixed types at run time and fires it while it is enabled.
//! Against that one process: `stap-sdt list -p` shows the typed
//! arguments; `stap-sdt trace -p --json` prints all 12 values exactly with
//! no flags (and `enabled` is true only while it traces); bpftrace `-p`
//! reads arg0-arg5, and the rest from the argument block; GDB attached with `-p` stops at `break
//! probe:` and prints `$_probe_arg11`.

mod gdb_common;
mod trace_support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use test_support::{require, run, Scratch};
use trace_support::{Target, Tracer, BIN};

const SCRIPT: &str = include_str!("fixtures/dynamic_twelve.py");
const CHURN: &str = include_str!("fixtures/dynamic_churn.py");

/// The 12 values the script fires, as `trace --json` prints them.
fn expected_args() -> Value {
    json!([
        -5,
        250,
        -300,
        65000,
        -70000,
        4000000000u64,
        -1099511627776i64,
        18446744073709551615u64,
        2.5,
        "GET /",
        4660,
        "héllo wörld"
    ])
}

/// A venv in `scratch` with the `stap_sdt` package installed by pip from
/// this checkout; its python.
pub fn venv_with_stap_sdt(scratch: &Scratch, python: &Path) -> PathBuf {
    let venv = scratch.join("venv");
    let out = run(Command::new(python).arg("-m").arg("venv").arg(&venv));
    assert!(out.status.success(), "python -m venv: {out:?}");
    let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("sdt-dynamic/python");
    // The crate is built by cargo under pip, in a target directory of the
    // tests' own (the workspace's is held by the cargo running the tests).
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pip-sdt-dynamic");
    // setuptools-rust runs `cargo` from PATH: the one running the tests.
    let mut path: Vec<PathBuf> = std::env::var_os("CARGO")
        .and_then(|cargo| PathBuf::from(cargo).parent().map(Path::to_path_buf))
        .into_iter()
        .collect();
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let out = run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(&package)
        .env("CARGO_TARGET_DIR", &target)
        .env("PATH", std::env::join_paths(path).unwrap()));
    assert!(
        out.status.success(),
        "pip install {}:\n{}{}",
        package.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    venv.join("bin/python")
}

fn listed_probe(pid: u32, provider: &str) -> Value {
    let out = run(Command::new(BIN).args(["list", "--json", "-p", &pid.to_string()]));
    assert!(out.status.success(), "list -p: {out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let object = doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == format!("/memfd:stapsdt:{provider}"))
        .unwrap_or_else(|| panic!("no memfd object of {provider} in {doc}"))
        .clone();
    assert_eq!(object["diagnostics"], json!([]));
    object["probes"][0].clone()
}

#[test]
fn python_twelve_arguments_seen_by_list_trace_bpftrace_and_gdb() {
    let test = "python_twelve_arguments_seen_by_list_trace_bpftrace_and_gdb";
    if !trace_support::prerequisites(test) {
        return;
    }
    let Some(python) = require(test, "python3.11") else {
        return;
    };
    let scratch = Scratch::new();
    let venv_python = venv_with_stap_sdt(&scratch, &python);
    let script = scratch.write("dynamic_twelve.py", SCRIPT);
    let provider = "pytwelve";
    let mut target = Target::spawn(&venv_python, &[script.to_str().unwrap(), provider]);
    target.stdout.wait_for("ready");
    target.stdout.wait_for("enabled False");
    let pid = target.pid();

    // list -p: the probe, its 12 arguments and their types.
    let probe = listed_probe(pid, provider);
    assert_eq!(probe["name"], "twelve");
    assert_eq!(
        probe["types"],
        json!([
            "int", "int", "int", "int", "int", "int", "int", "int", "float", "str", "int", "str"
        ])
    );
    let args = probe["locations"][0]["args"].as_array().unwrap();
    assert_eq!(args.len(), 12, "{probe}");
    let human = run(Command::new(BIN).args(["list", "-v", "-p", &pid.to_string()]));
    let human = String::from_utf8_lossy(&human.stdout).to_string();
    assert!(human.contains("/memfd:stapsdt:pytwelve"), "{human}");
    assert!(
        human.contains("arg11: u64 in memory at [rdi + 0x58] (str)"),
        "{human}"
    );

    // trace -p --json: every value exactly, no flags; enabled while traced.
    let mut tracer = Tracer::start(&["-p", &pid.to_string(), "--json", "pytwelve:twelve"]);
    target.stdout.wait_for("enabled True");
    let first = tracer.stdout.wait_for("\"probe\":\"pytwelve:twelve\"");
    let (_, _, stderr) = tracer.interrupt();
    let record: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(record["args"], expected_args(), "{first}");
    assert_eq!(record["pid"], pid);
    assert!(
        stderr.iter().any(|l| l.contains("a cheap site")),
        "the engine attaches at the cheap site's nop5: {stderr:?}"
    );
    target.stdout.wait_for("enabled False");

    // bpftrace -p: arg0-arg5 (bpftrace 0.17 reads no argN past 5 on x86-64).
    if require(test, "bpftrace").is_some() {
        let out = run(Command::new("bpftrace").args([
            "-p",
            &pid.to_string(),
            "-e",
            "usdt:*:pytwelve:twelve { printf(\"@@%d %d %d %d %d %lu@@\\n\", \
             arg0, arg1, arg2, arg3, arg4, arg5); exit(); }",
        ]));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("@@-5 250 -300 65000 -70000 4000000000@@"),
            "bpftrace: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.stdout.wait_for("enabled False");
        // Past arg5, from the argument block `%rdi` points to (8 bytes a slot).
        let out = run(Command::new("bpftrace").args([
            "-p",
            &pid.to_string(),
            "-e",
            "usdt:*:pytwelve:twelve { $b = reg(\"di\"); printf(\"@@%ld %lu %ld %s@@\\n\", \
             *(int64 *)($b + 48), *(uint64 *)($b + 56), *(int64 *)($b + 80), \
             str(*(uint64 *)($b + 88))); exit(); }",
        ]));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("@@-1099511627776 18446744073709551615 4660 héllo wörld@@"),
            "bpftrace: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.stdout.wait_for("enabled False");
    }

    // GDB attached to the process, with our plugin's `break probe:`.
    if gdb_common::have_gdb(test) {
        let mut commands = vec![
            "info probes stap pytwelve".to_string(),
            "break probe:pytwelve:twelve".to_string(),
            "continue".to_string(),
        ];
        commands.extend(gdb_common::show("argc", "$_probe_argc"));
        commands.extend(gdb_common::show("arg0", "$_probe_arg0"));
        commands.extend(gdb_common::show("arg11", "$_probe_arg11"));
        commands.extend(gdb_common::show("arg11str", "(char *) $_probe_arg11"));
        commands.push("detach".to_string());
        let out = run(gdb_common::gdb_batch(&commands).args(["-p", &pid.to_string()]));
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let values = gdb_common::marked(&output);
        assert_eq!(gdb_common::value(&values, "argc", &output), "12");
        assert_eq!(gdb_common::value(&values, "arg0", &output), "-5");
        // A string argument is its address; as a `char *`, the string.
        let arg11: u64 = gdb_common::value(&values, "arg11", &output)
            .parse()
            .unwrap_or_else(|e| panic!("$_probe_arg11: {e}\n{output}"));
        let arg11str = gdb_common::value(&values, "arg11str", &output);
        assert_eq!(arg11str, format!("0x{arg11:x} \"héllo wörld\""), "{output}");
        assert!(output.contains("in pytwelve_twelve ()"), "{output}");
        // GDB's own `info probes` lists it, from the link map's /proc/PID/fd/N.
        assert!(
            output.lines().any(|l| l.starts_with("stap pytwelve")
                && l.contains("twelve")
                && l.contains(&format!("/proc/{pid}/fd/"))),
            "{output}"
        );
    }
    // The process survived every tracer and debugger.
    assert!(target.child.try_wait().unwrap().is_none());
    drop(target);

    // 1000 providers from Python leave nothing behind; errors are clear.
    let churn = scratch.write("dynamic_churn.py", CHURN);
    let out = run(Command::new(&venv_python).arg(&churn));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{stdout}");
    let figures = |name: &str| -> (u64, u64) {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"));
        let mut n = line.split(' ').skip(1).map(|v| v.parse::<u64>().unwrap());
        (n.next().unwrap(), n.next().unwrap())
    };
    let (fds0, fds1) = figures("fds");
    assert_eq!(fds0, fds1, "descriptors leaked: {stdout}");
    let (maps0, maps1) = figures("maps");
    assert_eq!(maps0, maps1, "mappings leaked: {stdout}");
    let (rss0, rss1) = figures("rss_anon_kib");
    // 128 bytes per provider would be 125 KiB.
    assert!(rss1 <= rss0 + 64, "anonymous memory grew: {stdout}");
    let errors: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 5, "{stdout}");
    for (error, expected) in errors.iter().zip([
        "provider name `9bad` is not an identifier",
        "errors:listy: argument 0: no probe type for <class 'list'>",
        "errors:big: 7 arguments take 14 slots",
        "errors:ok: fired with 2 arguments, defined with 1",
        "errors:ok: defined twice",
    ]) {
        assert!(error.contains(expected), "{error}: expected {expected}");
    }
}
