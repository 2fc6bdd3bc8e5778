//! `stap-sdt list` end to end: selectors, directories, errors, JSON, processes.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use test_support::bounded::BoundedOutput;
use test_support::{require, skip, system_sdt_include, Scratch};

const BIN: &str = env!("CARGO_BIN_EXE_stap-sdt");

/// A program with one semaphore-guarded probe and one plain probe (in
/// another file: `<sys/sdt.h>` gives semaphores to all probes of a file or
/// none); it prints the address of its semaphore, then waits for stdin to close.
const PLAIN: &str = r#"
#include <sys/sdt.h>
void plain(long n) { STAP_PROBE2(demo, plain, n, -1); }
"#;
const PROGRAM: &str = r#"
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>
#include <stdio.h>
unsigned short demo_guarded_semaphore __attribute__((section(".probes")));
void plain(long n);
int main(void) {
  long n = 42;
  printf("%p\n", (void *)&demo_guarded_semaphore);
  fflush(stdout);
  STAP_PROBE1(demo, guarded, n);
  plain(n);
  getchar();
  return 0;
}
"#;

fn build_program(scratch: &Scratch, extra: &[&str]) -> Option<std::path::PathBuf> {
    system_sdt_include()?;
    let plain = scratch.write("plain.c", PLAIN);
    let mut args = vec!["-O2", plain.to_str().unwrap()];
    args.extend_from_slice(extra);
    Some(scratch.compile("gcc", "demo.c", PROGRAM, "demo", &args))
}

fn probe<'a>(object: &'a Value, name: &str) -> &'a Value {
    object["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no probe {name} in {object}"))
}

/// Start a demo program (directly or through a wrapper like `unshare`) and
/// read the semaphore address it prints; it runs until its stdin closes.
fn start_waiting(cmd: &mut Command) -> (std::process::Child, u64) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let printed = u64::from_str_radix(line.trim().trim_start_matches("0x"), 16)
        .unwrap_or_else(|e| panic!("the demo printed {line:?}: {e}"));
    (child, printed)
}

/// Root and `tool` are there, or the test says why it does not run.
fn root_with(test: &str, tool: &str, why: &str) -> bool {
    if !test_support::is_root() || require(test, tool).is_none() {
        skip(test, why);
        return false;
    }
    true
}

fn list(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("list")
        .args(args)
        .bounded_output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = list(&all);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn probe_names(report: &Value) -> Vec<String> {
    report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["probes"].as_array().unwrap())
        .map(|p| {
            format!(
                "{}:{}",
                p["provider"].as_str().unwrap(),
                p["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn selectors_filter_with_globs_and_regexes() {
    let python = "/usr/bin/python3.11";
    if !std::path::Path::new(python).exists() {
        skip(
            "selectors_filter_with_globs_and_regexes",
            "python3.11 is not installed",
        );
        return;
    }
    assert_eq!(
        probe_names(&json(&[python, "python:function__*"])),
        ["python:function__entry", "python:function__return"]
    );
    let mut starts = probe_names(&json(&[python, "*:*start"]));
    starts.sort();
    assert_eq!(
        starts,
        ["python:gc__start", "python:import__find__load__start"]
    );
    let mut gc = probe_names(&json(&["--regex", python, "^python:gc__(start|done)$"]));
    gc.sort();
    assert_eq!(gc, ["python:gc__done", "python:gc__start"]);
    let (code, _, stderr) = list(&[python, "a:b:c"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("bad probe selector `a:b:c`"), "{stderr}");
    let (code, _, stderr) = list(&["--regex", python, "(:"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("bad --regex `(:`"), "{stderr}");
}

#[test]
fn directories_skip_other_files_and_report_broken_elf() {
    let scratch = Scratch::new();
    let Some(program) = build_program(&scratch, &[]) else {
        skip(
            "directories_skip_other_files_and_report_broken_elf",
            "sys/sdt.h missing",
        );
        return;
    };
    std::fs::create_dir(scratch.join("sub")).unwrap();
    std::fs::copy(&program, scratch.join("sub/copy")).unwrap();
    scratch.write("README.txt", "plain text\n");
    let bytes = std::fs::read(&program).unwrap();
    scratch.write("broken.so", &bytes[..100]);
    let (code, stdout, stderr) = list(&[scratch.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.matches("demo:guarded").count(), 2, "{stdout}");
    assert!(!stdout.contains("README") && !stderr.contains("README"));
    let broken = scratch.join("broken.so").display().to_string();
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(&format!("stap-sdt: {broken}: bad section table"))),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn unreadable_inputs_are_one_line_each_and_exit_1_only_when_nothing_was_read() {
    let (code, stdout, stderr) = list(&["/nonexistent/libfoo.so", "-p", "4000000000"]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "stap-sdt: /nonexistent/libfoo.so: No such file or directory (os error 2)",
            "stap-sdt: pid 4000000000: no such process",
        ]
    );
    let libstdcxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";
    if std::path::Path::new(libstdcxx).exists() {
        let (code, stdout, stderr) = list(&["/nonexistent/libfoo.so", libstdcxx]);
        assert_eq!(code, 0);
        assert!(stdout.contains("libstdcxx:throw"));
        assert_eq!(stderr.lines().count(), 1);
    }
    let (code, _, stderr) = list(&[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("give a PATH"), "{stderr}");
}

#[test]
fn json_schema_and_verbose_arguments() {
    let scratch = Scratch::new();
    let Some(program) = build_program(&scratch, &[]) else {
        skip("json_schema_and_verbose_arguments", "sys/sdt.h missing");
        return;
    };
    let path = program.to_str().unwrap();
    let report = json(&[path]);
    assert_eq!(report["schema"], "stap-sdt.list/1");
    let object = &report["objects"][0];
    assert_eq!(object["path"], path);
    assert_eq!(object["arch"], "x86_64");
    assert!(object["build_id"].as_str().unwrap().len() >= 16);
    let guarded = probe(object, "guarded");
    let loc = &guarded["locations"][0];
    assert!(loc["semaphore"]["file_offset"].as_u64().is_some());
    assert_eq!(loc["args"][0]["size"], 8);
    assert_eq!(loc["args"][0]["signed"], true);
    let plain = &probe(object, "plain")["locations"][0];
    assert!(plain["semaphore"].is_null());
    assert_eq!(
        plain["args"][1]["operand"],
        serde_json::json!({"kind": "immediate", "value": -1})
    );

    let (code, stdout, _) = list(&["-v", path, "demo:plain"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("arg1: s32 constant -1"), "{stdout}");
}

#[test]
fn process_listing_gives_run_time_addresses() {
    let test = "process_listing_gives_run_time_addresses";
    let scratch = Scratch::new();
    let Some(program) = build_program(&scratch, &["-fPIE", "-pie"]) else {
        skip(test, "sys/sdt.h missing");
        return;
    };
    let (mut child, printed) = start_waiting(&mut Command::new(&program));
    let pid = child.id().to_string();
    let report = json(&["-p", &pid, "demo:*"]);
    let (_, human, _) = list(&["-p", &pid, "demo:guarded"]);
    drop(child.stdin.take());
    test_support::bounded::wait_within(
        &mut child,
        test_support::bounded::EXIT_LIMIT,
        "demo program",
    );

    let objects = report["objects"].as_array().unwrap();
    assert_eq!(
        objects.len(),
        1,
        "only the program has demo probes: {report}"
    );
    let object = &objects[0];
    assert_eq!(object["path"], program.to_str().unwrap());
    assert_eq!(object["pid"].as_u64(), Some(pid.parse().unwrap()));
    let loc = &probe(object, "guarded")["locations"][0];
    // The semaphore's run-time address is where the program itself sees it.
    assert_eq!(loc["semaphore"]["runtime_address"].as_u64(), Some(printed));
    // A PIE is loaded away from its link address: bias = run time - link time.
    let bias = object["load_bias"].as_u64().unwrap();
    assert_ne!(bias, 0);
    assert_eq!(
        loc["runtime_address"].as_u64().unwrap(),
        loc["address"].as_u64().unwrap().wrapping_add(bias)
    );
    // The text form shows the process and both run-time addresses.
    let sem_at = format!("at {printed:#x}");
    assert!(human.contains(&format!("[pid {pid}]")), "{human}");
    assert!(human.contains(&sem_at), "{human}");
}

#[test]
fn process_in_another_mount_namespace_is_read_through_its_root() {
    let test = "process_in_another_mount_namespace_is_read_through_its_root";
    if !root_with(
        test,
        "unshare",
        "needs root and unshare(1) to make a private mount namespace",
    ) {
        return;
    }
    let scratch = Scratch::new();
    let Some(program) = build_program(&scratch, &[]) else {
        skip(test, "sys/sdt.h missing");
        return;
    };
    // Inside a private mount namespace a tmpfs hides `hidden/` from us; the
    // program runs from there, so its path does not exist in our namespace.
    let hidden = scratch.join("hidden");
    std::fs::create_dir(&hidden).unwrap();
    let script = format!(
        "mount -t tmpfs none {h} && cp {p} {h}/inside && exec {h}/inside",
        h = hidden.display(),
        p = program.display()
    );
    let (mut child, printed) = start_waiting(Command::new("unshare").args([
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]));
    let inside = hidden.join("inside");
    assert!(!inside.exists(), "the tmpfs leaked into our namespace");
    let report = json(&["-p", &child.id().to_string(), "demo:guarded"]);
    drop(child.stdin.take());
    assert!(test_support::bounded::wait_within(
        &mut child,
        test_support::bounded::EXIT_LIMIT,
        "demo program"
    )
    .success());
    let object = &report["objects"][0];
    assert_eq!(object["path"], inside.to_str().unwrap());
    assert_eq!(
        probe(object, "guarded")["locations"][0]["semaphore"]["runtime_address"].as_u64(),
        Some(printed)
    );
}

#[test]
fn permission_errors_name_the_file_and_the_rest_goes_on() {
    let test = "permission_errors_name_the_file_and_the_rest_goes_on";
    if !root_with(
        test,
        "setpriv",
        "needs root and setpriv(1) to run as an unprivileged user",
    ) {
        return;
    }
    let scratch = Scratch::new();
    let Some(program) = build_program(&scratch, &[]) else {
        skip(test, "sys/sdt.h missing");
        return;
    };
    let locked = scratch.join("locked");
    std::fs::copy(&program, &locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    // The binary must be reachable by `nobody`: copy it next to the fixtures.
    let bin = scratch.join("stap-sdt");
    std::fs::copy(BIN, &bin).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .args(["list", locked.to_str().unwrap(), program.to_str().unwrap()])
        .bounded_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            "stap-sdt: {}: Permission denied (os error 13)",
            locked.display()
        )
    );
    assert!(stdout.contains("demo:guarded"), "{stdout}");
}

#[test]
fn list_tapsets_shows_the_installed_runtimes() {
    let tapsets = Command::new(BIN).arg("tapsets").bounded_output().unwrap();
    let (code, stdout, stderr) = list(&["--tapsets"]);
    assert_eq!(code, tapsets.status.code().unwrap_or(-1), "{stderr}");
    assert_eq!(stdout, String::from_utf8_lossy(&tapsets.stdout));
    if std::path::Path::new("/usr/bin/python3.11").exists() {
        assert!(stdout.contains("python.function.entry"), "{stdout}");
    }
    let (code, _, stderr) = list(&["--tapsets", "/bin/ls"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[test]
fn bare_library_and_program_names_are_looked_up() {
    if !std::path::Path::new("/usr/lib/x86_64-linux-gnu/libstdc++.so.6").exists() {
        skip(
            "bare_library_and_program_names_are_looked_up",
            "libstdc++ is not installed",
        );
        return;
    }
    // Run from an empty directory, so the name is not a file here.
    let scratch = Scratch::new();
    let out = Command::new(BIN)
        .current_dir(scratch.path())
        .args(["list", "--json", "libstdc++.so.6", "libstdcxx:throw"])
        .bounded_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = report["objects"][0]["path"].as_str().unwrap();
    assert!(path.ends_with("/libstdc++.so.6"), "{path}");
    assert_eq!(probe_names(&report), ["libstdcxx:throw"]);
    let out = Command::new(BIN)
        .current_dir(scratch.path())
        .args(["list", "no-such-library.so.9"])
        .bounded_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "stap-sdt: no-such-library.so.9: No such file or directory (os error 2)"
    );
}

/// A note written by hand, with an argument no x86 assembler syntax allows.
const ODD_NOTE: &str = r#"
__asm__(".pushsection .note.stapsdt,\"?\",\"note\"\n"
        ".balign 4\n.4byte 992f-991f, 994f-993f, 3\n"
        "991: .asciz \"stapsdt\"\n992: .balign 4\n"
        "993: .8byte 0, 0, 0\n.asciz \"odd\"\n.asciz \"probe\"\n.asciz \"8@%rdi 8@%bogus -4@$5\"\n"
        "994: .balign 4\n.popsection\n");
int main(void) { return 0; }
"#;

#[test]
fn an_argument_that_does_not_parse_is_kept_and_named() {
    if require("an_argument_that_does_not_parse_is_kept_and_named", "gcc").is_none() {
        return;
    }
    let scratch = Scratch::new();
    let program = scratch.compile("gcc", "odd.c", ODD_NOTE, "odd", &[]);
    let path = program.to_str().unwrap();
    let (code, stdout, _) = list(&[path]);
    assert_eq!(code, 0);
    assert!(stdout.contains("args: 8@%rdi 8@%bogus -4@$5"), "{stdout}");
    assert!(
        stdout.contains(
            "warning: arg1: cannot parse argument `8@%bogus`: unknown x86_64 register `%bogus`"
        ),
        "{stdout}"
    );
    let report = json(&[path]);
    let args = &report["objects"][0]["probes"][0]["locations"][0]["args"];
    assert_eq!(args[0]["operand"]["kind"], "register");
    assert_eq!(args[1]["operand"]["kind"], "unparsed");
    assert_eq!(args[1]["size"], 8);
    assert_eq!(
        args[2]["operand"],
        serde_json::json!({"kind": "immediate", "value": 5})
    );
}
