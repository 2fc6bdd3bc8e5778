//! sdt-dynamic's C ABI from a C program (`tests/fixtures/dynamic_abi.c`,
//! built against `sdt-dynamic/include/sdt_dynamic.h` and the crate's
//! `libsdt_dynamic.so`): its errors, a probe of every argument kind traced
//! with `trace -p --json` (every value exact, no flags), the same object
//! traced system-wide by its `/proc/PID/fd/N` path, the directory option
//! (`$STAP_SDT_DYNAMIC_DIR`: a file, listed and traced by path, removed at
//! unload), and a clean unload.

mod trace_support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use test_support::Scratch;
use trace_support::{Lines, Target, Tracer, BIN};

const SOURCE: &str = include_str!("fixtures/dynamic_abi.c");

/// The C program, linked with a `libsdt_dynamic.so` built for the tests.
fn build(scratch: &Scratch) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir =
        test_support::sdt_dynamic_library(workspace, Path::new(env!("CARGO_TARGET_TMPDIR")));
    let include = format!("-I{}", workspace.join("sdt-dynamic/include").display());
    let link = format!("-L{}", lib_dir.display());
    let rpath = format!("-Wl,-rpath,{}", lib_dir.display());
    scratch.compile(
        "gcc",
        "dynamic_abi.c",
        SOURCE,
        "dynamic_abi",
        // Before the source (Scratch::compile puts it last): not --as-needed.
        &[
            "-Wall",
            "-Werror",
            "-O2",
            &include,
            &link,
            &rpath,
            "-Wl,--no-as-needed",
            "-lsdt_dynamic",
        ],
    )
}

fn expected_args() -> Value {
    json!([
        -5,
        65535,
        -100000,
        9223372036854775808u64,
        "GET /",
        "abc",
        3,
        -0.25,
        4660,
        -9,
        255,
        "last"
    ])
}

fn first_record(args: &[&str], target: &mut Target) -> Value {
    let mut tracer = Tracer::start(args);
    target.stdout.wait_for("enabled 1");
    let line = tracer.stdout.wait_for("\"probe\":\"cdyn");
    let (status, _, stderr) = tracer.interrupt();
    assert!(status.is_some(), "{stderr:?}");
    target.stdout.wait_for("enabled 0");
    serde_json::from_str(&line).unwrap()
}

fn path_of(target: &mut Target) -> String {
    let line = target.stdout.wait_for("path ");
    target.stdout.wait_for("ready");
    line.strip_prefix("path ").unwrap().to_string()
}

/// Close the program's stdin: it unloads, checks that its object is no
/// longer mapped, says "unloaded" and exits 0.
fn finish(mut target: Target) {
    let mut lines = std::mem::replace(&mut target.stdout, Lines::new(std::io::empty()));
    let status = target.finish();
    let unloaded = lines.try_wait_for("unloaded", Duration::from_secs(10));
    assert!(status.success() && unloaded, "{status:?}: {:?}", lines.seen);
}

#[test]
fn c_program_probes_traced_by_pid_by_path_and_in_a_directory() {
    let test = "c_program_probes_traced_by_pid_by_path_and_in_a_directory";
    if !trace_support::prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let program = build(&scratch);

    // A memfd: by pid, then by its /proc/PID/fd/N path, system-wide.
    let mut target = Target::spawn(&program, &["cdyn"]);
    let path = path_of(&mut target);
    let pid = target.pid();
    assert!(path.starts_with(&format!("/proc/{pid}/fd/")), "{path}");
    let record = first_record(&["-p", &pid.to_string(), "--json", "cdyn:req"], &mut target);
    assert_eq!(record["args"], expected_args(), "{record}");
    let record = first_record(&["--json", &format!("{path}:cdyn:req")], &mut target);
    assert_eq!(record["args"], expected_args(), "{record}");
    assert_eq!(record["pid"], pid);
    finish(target);

    // A directory: a file there while loaded, listed and traced by path.
    let dir = scratch.join("objects");
    std::fs::create_dir(&dir).unwrap();
    let mut command = Command::new(&program);
    command.arg("cdyn").env("STAP_SDT_DYNAMIC_DIR", &dir);
    let mut target = Target::spawn_command(command);
    let path = path_of(&mut target);
    assert!(Path::new(&path).starts_with(&dir), "{path}");
    let listed = Command::new(BIN).args(["list", &path]).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listed.contains("cdyn:req"), "{listed}");
    let record = first_record(&["--json", &format!("{path}:cdyn:req")], &mut target);
    assert_eq!(record["args"], expected_args(), "{record}");
    finish(target);
    assert!(!Path::new(&path).exists(), "{path} left behind");
}
