//! `trace --in-process`: the agent preloaded into the command patches its
//! cheap sites; run as `nobody` without capabilities (when the tests run
//! as root; otherwise as the unprivileged user running them).

mod inprocess_support;

use inprocess_support::{bytes_in, bytes_of};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use test_support::bounded::BoundedOutput;
use test_support::Scratch;

const BIN: &str = env!("CARGO_BIN_EXE_stap-sdt");
const FIXTURE: &str = include_str!("fixtures/inproc_fixture.c");
const PLAIN: &str = include_str!("fixtures/inproc_plain.c");
const LIBRARY: &str = include_str!("fixtures/inproc_lib.c");
const DYNAMIC: &str = include_str!("fixtures/inproc_dynamic.c");

/// gcc, and the agent built beside the binary.
fn prerequisites(test: &str) -> bool {
    if test_support::require(test, "gcc").is_none() {
        return false;
    }
    test_support::in_process_agent(Path::new(BIN), Path::new(env!("CARGO_MANIFEST_DIR")));
    true
}

fn include() -> String {
    format!("-I{}/sdt-header/include", env!("CARGO_MANIFEST_DIR"))
}

/// The fixture (with the plain site from its own file) and its library.
fn fixture(scratch: &Scratch) -> (PathBuf, PathBuf) {
    let plain = scratch.write("inproc_plain.c", PLAIN);
    let fx = scratch.compile(
        "gcc",
        "inproc_fixture.c",
        FIXTURE,
        "fx",
        &["-O2", "-g", &include(), plain.to_str().unwrap(), "-ldl"],
    );
    let lib = scratch.compile(
        "gcc",
        "inproc_lib.c",
        LIBRARY,
        "libprobed.so",
        &["-O2", "-shared", "-fPIC", &include()],
    );
    (fx, lib)
}

/// The tracer to run without privileges: as root, a copy of `stap-sdt`
/// and its agent in `scratch` (which `nobody` can read, where the build
/// directory may not be), else the built one.
fn unprivileged_tracer(scratch: &Scratch) -> PathBuf {
    if !test_support::is_root() {
        return PathBuf::from(BIN);
    }
    let bin = scratch.join("stap-sdt");
    if !bin.exists() {
        std::fs::copy(BIN, &bin).unwrap();
        let agent = Path::new(BIN).with_file_name("libstap_sdt_agent.so");
        std::fs::copy(agent, scratch.join("libstap_sdt_agent.so")).unwrap();
    }
    bin
}

/// Run `stap-sdt trace ARGS` without privileges: as `nobody` with no
/// capabilities when we are root (the copy in `scratch`), else as ourselves.
fn trace_unprivileged(scratch: &Scratch, args: &[&str]) -> (Option<i32>, String, String) {
    let bin = unprivileged_tracer(scratch);
    let mut cmd = if test_support::is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    cmd.arg("trace").args(args);
    let out = cmd.bounded_output().expect("run stap-sdt");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `trace --in-process FLAGS -c COMMAND PROBE`, as `nobody` (see
/// [`trace_unprivileged`]).
fn in_process(
    scratch: &Scratch,
    flags: &[&str],
    command: &str,
    probe: &str,
) -> (Option<i32>, String, String) {
    let mut args = vec!["--in-process"];
    args.extend_from_slice(flags);
    args.extend(["-c", command, probe]);
    trace_unprivileged(scratch, &args)
}

/// [`in_process`], which must end with status 0: (stdout, stderr).
fn in_process_ok(
    scratch: &Scratch,
    flags: &[&str],
    command: &str,
    probe: &str,
) -> (String, String) {
    let (code, out, err) = in_process(scratch, flags, command, probe);
    assert_eq!(code, Some(0), "{err}");
    (out, err)
}

fn count_of(stdout: &str, probe: &str) -> Option<u64> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("@count[{probe}]: ")))
        .and_then(|n| n.trim().parse().ok())
}

#[test]
fn counts_exactly_without_privileges() {
    let test = "counts_exactly_without_privileges";
    if !prerequisites(test) {
        return;
    }
    if test_support::is_root() && test_support::require(test, "setpriv").is_none() {
        return;
    }
    let scratch = Scratch::new();
    let (fx, _) = fixture(&scratch);
    let fx = fx.to_str().unwrap();
    let (out, err) = in_process_ok(
        &scratch,
        &["--count"],
        &format!("{fx} ticks 100000"),
        &format!("{fx}:fx:tick"),
    );
    assert_eq!(count_of(&out, "fx:tick"), Some(100000), "{out}\n{err}");
    // The semaphore was raised by the agent: every guarded hit fired.
    assert!(out.contains("semaphore 1"), "{out}");
}

#[test]
fn json_has_exact_arguments_strings_included_without_privileges() {
    let test = "json_has_exact_arguments_strings_included_without_privileges";
    if !prerequisites(test) {
        return;
    }
    if test_support::is_root() && test_support::require(test, "setpriv").is_none() {
        return;
    }
    let scratch = Scratch::new();
    let (fx, _) = fixture(&scratch);
    let fx = fx.to_str().unwrap();
    // The note passes every operand form the agent fetches.
    let listed = Command::new(BIN)
        .args(["list", "--json", fx])
        .bounded_output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("(%rsp)"),
        "a %rsp-relative operand: {listed}"
    );
    assert!(
        listed.contains("fx_global(%rip)"),
        "a sym(%rip) operand: {listed}"
    );

    let (out, err) = in_process_ok(
        &scratch,
        &["--json", "--str", "2"],
        &format!("{fx} ticks 300"),
        &format!("{fx}:fx:tick"),
    );
    let events: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 300, "{out}\n{err}");
    let names = ["alpha", "beta", "gamma", ""];
    for (i, e) in events.iter().enumerate() {
        let i = i as i64;
        let expected = serde_json::json!([
            i,
            i * 3 - 7,
            names[i as usize % 4],
            i & 0xff,
            i * 7 + 1,
            4242
        ]);
        assert_eq!(e["args"], expected, "hit {i}: {e}");
        assert_eq!(e["probe"], "fx:tick");
        assert_eq!(e["comm"], "fx");
    }
    // Time is the wall clock, as the kernel backend's.
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as f64;
    let first = events[0]["time_ns"].as_f64().unwrap();
    assert!((now_ns - first).abs() < 60e9, "{first} vs {now_ns}");
}

#[test]
fn filters_keys_and_histograms_are_made_from_the_records() {
    let test = "filters_keys_and_histograms_are_made_from_the_records";
    if !prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let (fx, _) = fixture(&scratch);
    let fx = fx.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["--in-process", "-c"];
        let command = format!("{fx} ticks 1000");
        let probe = format!("{fx}:fx:tick");
        args.push(&command);
        args.extend_from_slice(extra);
        args.push(&probe);
        let (code, out, err) = trace_unprivileged(&scratch, &args);
        assert_eq!(code, Some(0), "{err}");
        out
    };
    // The name cycles through 4 strings, one of them empty.
    let out = run(&["--count", "--by", "str(arg2)"]);
    for name in ["", "alpha", "beta", "gamma"] {
        assert!(out.contains(&format!("@count[\"{name}\"]: 250")), "{out}");
    }
    // arg3 is i & 0xff: 0, 1 and 2 come 4 times each in 1000.
    let out = run(&["--count", "--by", "probe,arg3", "--filter", "arg3 < 3"]);
    for v in 0..3 {
        assert!(out.contains(&format!("@count[fx:tick, {v}]: 4")), "{out}");
    }
    assert_eq!(out.matches("@count").count(), 3, "{out}");
    // arg4 is i * 7 + 1 (a %rsp-relative operand).
    let out = run(&["--hist", "arg4"]);
    assert!(
        out.contains("count 1000, sum 3497500, min 1, max 6994"),
        "{out}"
    );
    // A filter on records: i ≡ 6 (mod 100) are all "gamma".
    let out = run(&[
        "--json",
        "--str",
        "2",
        "--filter",
        "arg0 % 100 == 6 && str(arg2) == \"gamma\"",
    ]);
    let firsts: Vec<i64> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["args"][0]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(firsts, (0..10).map(|k| k * 100 + 6).collect::<Vec<_>>());
}

#[test]
fn a_pointer_to_nowhere_is_a_fault_not_a_crash() {
    let test = "a_pointer_to_nowhere_is_a_fault_not_a_crash";
    if !prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let (fx, _) = fixture(&scratch);
    let fx = fx.to_str().unwrap();
    let (out, _) = in_process_ok(
        &scratch,
        &["--str", "0"],
        &format!("{fx} bad"),
        &format!("{fx}:fx:bad"),
    );
    assert!(out.contains("survived"), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("fx:bad"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("<fault>") && line.ends_with('7'), "{line}");
}

#[test]
fn latency_pairs_start_and_end_records() {
    let test = "latency_pairs_start_and_end_records";
    if !prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let (fx, _) = fixture(&scratch);
    let fx = fx.to_str().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["latency", "--in-process", "--json", "-c"])
        .arg(format!("{fx} work 20"))
        .arg(format!("{fx}:fx:start"))
        .arg(format!("{fx}:fx:done"));
    let out = cmd.bounded_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let row: serde_json::Value = serde_json::from_str(
        stdout
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("{stdout}")),
    )
    .unwrap();
    // 20 intervals around a usleep(1000) each.
    assert_eq!(row["count"], 20, "{row}");
    assert!(row["min"].as_u64().unwrap() >= 1_000_000, "{row}");
    assert!(row["max"].as_u64().unwrap() < 1_000_000_000, "{row}");
}

/// `sdt-macros` with `cheap-sites`: every argument type of the demo read
/// back in process, the lazy probe's semaphore raised, and the word the
/// demo keeps below `%rsp` across a traced site (its red zone) untouched.
#[test]
fn rust_probes_at_cheap_sites_are_traced_in_process() {
    let test = "rust_probes_at_cheap_sites_are_traced_in_process";
    if !prerequisites(test) {
        return;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inproc-demo");
    let out = test_support::cargo_build(
        workspace,
        &["sdt-demo", "sdt-demo-lib"],
        &["sdt-macros/cheap-sites"],
        &target,
        true,
    );
    let demo = out.join("sdt-demo");
    let demo = demo.to_str().unwrap();
    let untraced = Command::new(demo).arg("3").bounded_output().unwrap();
    let untraced = String::from_utf8_lossy(&untraced.stdout).into_owned();
    let red_zone = untraced
        .lines()
        .find(|l| l.starts_with("red zone"))
        .unwrap()
        .to_string();
    let traced = Command::new(BIN)
        .args(["trace", "--in-process", "--json", "-c"])
        .arg(format!("{demo} 3"))
        .arg(format!("{demo}:demo:*"))
        .bounded_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&traced.stdout);
    assert_eq!(traced.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("lazy evaluations: 3"), "{stdout}");
    assert!(
        stdout.contains(&red_zone),
        "{red_zone} traced too: {stdout}"
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let args_of = |probe: &str| {
        events
            .iter()
            .find(|e| e["probe"] == probe)
            .map(|e| e["args"].clone())
            .unwrap_or_else(|| panic!("no {probe} in {stdout}"))
    };
    assert_eq!(
        args_of("demo:signed"),
        serde_json::json!([-100, -30000, -2000000000, i64::MIN + 1, -5])
    );
    assert_eq!(
        args_of("demo:text"),
        serde_json::json!(["hello, probe", 12, "owned string", 12, "c string"])
    );
    assert_eq!(args_of("demo:floats"), serde_json::json!([1.5, -2.25]));
    assert_eq!(
        events
            .iter()
            .filter(|e| e["probe"] == "demo:red_zone")
            .count(),
        3
    );
}

#[test]
fn sites_that_are_not_cheap_are_named_with_advice() {
    let test = "sites_that_are_not_cheap_are_named_with_advice";
    if !prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let (fx, _) = fixture(&scratch);
    let fx = fx.to_str().unwrap();
    let (out, err) = in_process_ok(
        &scratch,
        &["--count"],
        &format!("{fx} ticks 50"),
        &format!("{fx}:fx:*"),
    );
    let named = err
        .lines()
        .find(|l| l.contains("fx:plain"))
        .unwrap_or_else(|| panic!("fx:plain named: {err}"));
    assert!(named.contains("not a cheap site"), "{named}");
    assert!(named.contains("STAP_SDT_CHEAP_SITE"), "{named}");
    assert!(named.contains("kernel backend"), "{named}");
    assert_eq!(count_of(&out, "fx:tick"), Some(50), "{out}");
    // Only ordinary sites: an error with the same advice.
    let (code, _, err) = in_process(
        &scratch,
        &["--count"],
        &format!("{fx} ticks 5"),
        &format!("{fx}:fx:plain"),
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("no cheap site"), "{err}");
}

#[test]
fn a_library_loaded_with_dlopen_after_start_is_traced_each_time() {
    let test = "a_library_loaded_with_dlopen_after_start_is_traced_each_time";
    if !prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let (fx, lib) = fixture(&scratch);
    let (fx, lib) = (fx.to_str().unwrap(), lib.to_str().unwrap());
    let (out, err) = in_process_ok(
        &scratch,
        &["--count"],
        &format!("{fx} dlopen {lib} 1000"),
        &format!("{lib}:lib:fire"),
    );
    assert!(out.contains("dlopen done"), "{out}");
    // Loaded, closed and loaded again: patched both times.
    assert_eq!(count_of(&out, "lib:fire"), Some(2000), "{out}\n{err}");
    // Without the path: planned when the agent reports the library.
    let (out, err) = in_process_ok(
        &scratch,
        &["--count"],
        &format!("{fx} dlopen {lib} 1000"),
        "lib:fire",
    );
    assert!(err.contains("objects the command loads later"), "{err}");
    assert_eq!(count_of(&out, "lib:fire"), Some(2000), "{out}\n{err}");
}

/// Probes defined at run time (`sdt-dynamic`: an object written into a
/// memfd and `dlopen`ed): planned when the agent reports the object,
/// patched before `dlopen` returns, semaphore raised, arguments exact.
#[test]
fn probes_defined_at_run_time_are_traced_in_process() {
    let test = "probes_defined_at_run_time_are_traced_in_process";
    if !prerequisites(test) {
        return;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir =
        test_support::sdt_dynamic_library(workspace, Path::new(env!("CARGO_TARGET_TMPDIR")));
    let scratch = Scratch::new();
    let program = scratch.compile(
        "gcc",
        "inproc_dynamic.c",
        DYNAMIC,
        "dyn",
        &[
            "-O2",
            &format!("-I{}", workspace.join("sdt-dynamic/include").display()),
            &format!("-L{}", lib_dir.display()),
            &format!("-Wl,-rpath,{}", lib_dir.display()),
            "-Wl,--no-as-needed",
            "-lsdt_dynamic",
        ],
    );
    let out = Command::new(BIN)
        .args(["trace", "--in-process", "--json", "-c"])
        .arg(format!("{} 50", program.display()))
        .arg("dyn:req")
        .bounded_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Every hit made while the semaphore was up: all 50.
    assert!(stdout.contains("fired 50"), "{stdout}\n{stderr}");
    let args: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["args"].clone())
        .collect();
    let expected: Vec<serde_json::Value> = (0..50)
        .map(|i| serde_json::json!([i * 10, "GET /"]))
        .collect();
    assert_eq!(args, expected, "{stderr}");
}

#[test]
fn a_fork_child_is_restored_and_not_traced() {
    let test = "a_fork_child_is_restored_and_not_traced";
    if !prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let (fx, _) = fixture(&scratch);
    let fx = fx.to_str().unwrap();
    let (out, err) = in_process_ok(
        &scratch,
        &["--count"],
        &format!("{fx} fork 700"),
        &format!("{fx}:fx:tick"),
    );
    // The parent's 2 × 700 hits; the child got the original bytes back and
    // its semaphore lowered at the fork, so its 700 hits are not patched.
    assert_eq!(count_of(&out, "fx:tick"), Some(1400), "{out}\n{err}");
    assert!(out.contains("child semaphore 0"), "{out}");
    assert!(out.contains("parent semaphore 1"), "{out}");
}

#[test]
fn a_pipeline_is_refused_with_the_reason() {
    let out = Command::new(BIN)
        .args([
            "trace",
            "--in-process",
            "--count",
            "-c",
            "true | true",
            "x:y:z",
        ])
        .bounded_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not a simple command"), "{err}");
}

#[test]
fn a_missing_agent_is_a_clear_error() {
    let scratch = Scratch::new();
    let out = Command::new(BIN)
        .env("STAP_SDT_AGENT", scratch.join("nowhere.so"))
        .args(["trace", "--in-process", "--count", "-c", "true", "x:y:z"])
        .bounded_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        err.contains("STAP_SDT_AGENT") && err.contains("nowhere.so"),
        "{err}"
    );
}

/// The note's site of `probe` in `program`: (nop5 file offset, semaphore
/// file offset), from `list --json`.
fn site_of(program: &str, probe: &str) -> (u64, u64) {
    let listed = Command::new(BIN)
        .args(["list", "--json", program, probe])
        .bounded_output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let location = &json["objects"][0]["probes"][0]["locations"][0];
    let pc = location["file_offset"].as_u64().unwrap();
    let semaphore = location["semaphore"]["file_offset"].as_u64().unwrap();
    (pc + stapsdt_reader::cheap_site::NOP5_OFFSET, semaphore)
}

#[test]
fn a_killed_tracer_leaves_the_program_restored() {
    let test = "a_killed_tracer_leaves_the_program_restored";
    if !prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let (fx, _) = fixture(&scratch);
    let program = fx.to_str().unwrap();
    let (nop5, semaphore) = site_of(program, "fx:tick");
    let mut tracer = Command::new(BIN)
        .args(["trace", "--in-process", "--count", "-c"])
        .arg(format!("{program} serve"))
        .arg(format!("{program}:fx:tick"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = tracer.stdin.take().unwrap();
    let mut output = BufReader::new(tracer.stdout.take().unwrap());
    let mut line = String::new();
    output.read_line(&mut line).unwrap();
    let pid: u32 = line.trim().strip_prefix("pid ").unwrap().parse().unwrap();
    let mut tick = |n: u32| {
        writeln!(input, "tick {n}").unwrap();
        let mut ok = String::new();
        output.read_line(&mut ok).unwrap();
        assert_eq!(ok.trim(), "ok");
    };
    tick(10);
    // Patched (a call) and the semaphore raised, by the agent.
    assert_eq!(bytes_in::<1>(pid, &fx, nop5), [0xe8]);
    assert_eq!(u16::from_ne_bytes(bytes_in::<2>(pid, &fx, semaphore)), 1);
    tracer.kill().unwrap();
    tracer.wait().unwrap();
    // The agent sees its tracer gone (a pidfd) and detaches.
    let deadline = Instant::now() + Duration::from_secs(5);
    while bytes_in::<5>(pid, &fx, nop5) != bytes_of::<5>(&fx, nop5) {
        assert!(
            Instant::now() < deadline,
            "still patched 5 s after the tracer died"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(u16::from_ne_bytes(bytes_in::<2>(pid, &fx, semaphore)), 0);
    tick(10);
    // SAFETY: a signal to the orphaned fixture, whose pid we read from it
    // and which is still running (it just answered).
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
}
