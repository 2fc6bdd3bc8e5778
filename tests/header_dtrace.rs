//! `stap-sdt dtrace -h/-G` against SystemTap's `dtrace`: for provider files
//! modelled on real projects' (a large server's with `#define` type
//! aliases, an interpreter's with `#pragma D attributes`, several providers
//! with 0-12 arguments), a program built from our header and semaphore
//! object exposes the same probes as one built from SystemTap's.

mod header_support;

use header_support::{list_json, shapes, Shapes};
use std::path::{Path, PathBuf};
use std::process::Command;
use test_support::{require, run, Scratch};

const STAP_SDT: &str = env!("CARGO_BIN_EXE_stap-sdt");

/// A `dtrace` command: SystemTap's script, or `stap-sdt dtrace`.
fn dtrace_command(tool: &Path) -> Command {
    let mut cmd = Command::new(tool);
    if tool == Path::new(STAP_SDT) {
        cmd.arg("dtrace");
    }
    cmd
}

/// One `dtrace` run in `dir`; panics with its output if it fails.
fn dtrace(tool: &Path, dir: &Path, args: &[&str]) {
    let out = run(dtrace_command(tool).current_dir(dir).args(args));
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}{}",
        tool.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A C program that fires every probe macro of `header` (found in the
/// header SystemTap's dtrace wrote, so our generator does not describe
/// itself) and tests every `_ENABLED()` macro.
fn driver(reference_header: &str) -> String {
    let mut calls = String::new();
    for line in reference_header.lines() {
        let Some(rest) = line.strip_prefix("#define ") else {
            continue;
        };
        let Some(open) = rest.find('(') else { continue };
        let name = &rest[..open];
        if !line.ends_with('\\') || name.ends_with("_ENABLED") {
            continue;
        }
        let params = rest[open + 1..rest.find(')').unwrap()].trim();
        let count = if params.is_empty() {
            0
        } else {
            params.split(',').count()
        };
        let args = vec!["v"; count].join(", ");
        calls.push_str(&format!(
            "  if ({name}_ENABLED()) enabled++;\n  {name}({args});\n"
        ));
    }
    assert!(!calls.is_empty(), "no probe macros in the reference header");
    format!(
        "#include \"probes.h\"\nvolatile long v = 1;\nint main(void) {{\n  int enabled = 0;\n{calls}  return enabled;\n}}\n"
    )
}

/// Build the driver from `dtrace -h` + `dtrace -G` of `tool`, in `dir`.
fn build_with(
    tool: &Path,
    dir: &Path,
    d_file: &Path,
    extra: &[&str],
    driver_source: &str,
) -> PathBuf {
    let d = d_file.to_str().unwrap();
    let mut header_args = vec!["-C", "-h", "-s", d, "-o", "probes.h"];
    header_args.extend(extra);
    dtrace(tool, dir, &header_args);
    let mut object_args = vec!["-C", "-G", "-s", d, "-o", "probes.o"];
    object_args.extend(extra);
    dtrace(tool, dir, &object_args);
    std::fs::write(dir.join("driver.c"), driver_source).unwrap();
    let out = run(Command::new("gcc")
        .current_dir(dir)
        .args(["-O2", "-Wall", "driver.c", "probes.o", "-o", "driver"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("driver")
}

fn compare_with_systemtap(test: &str, fixture: &str, extra: &[&str], expected_probes: usize) {
    let Some(systemtap) = require(test, "dtrace") else {
        return;
    };
    if require(test, "gcc").is_none() || require(test, "cpp").is_none() {
        return;
    }
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dtrace")
        .join(fixture);
    let scratch = Scratch::new();
    let (theirs_dir, ours_dir) = (scratch.join("systemtap"), scratch.join("ours"));
    std::fs::create_dir_all(&theirs_dir).unwrap();
    std::fs::create_dir_all(&ours_dir).unwrap();

    // SystemTap's header decides which macros the driver calls.
    let d = fixture.to_str().unwrap();
    let mut header_args = vec!["-C", "-h", "-s", d, "-o", "probes.h"];
    header_args.extend(extra);
    dtrace(&systemtap, &theirs_dir, &header_args);
    let driver_source = driver(&std::fs::read_to_string(theirs_dir.join("probes.h")).unwrap());

    let theirs = build_with(&systemtap, &theirs_dir, &fixture, extra, &driver_source);
    let ours = build_with(
        Path::new(STAP_SDT),
        &ours_dir,
        &fixture,
        extra,
        &driver_source,
    );
    let theirs: Shapes = shapes(&list_json(&theirs));
    let ours: Shapes = shapes(&list_json(&ours));
    assert_eq!(
        theirs.len(),
        expected_probes,
        "{fixture:?}: SystemTap's probe count"
    );
    assert_eq!(
        ours, theirs,
        "{fixture:?}: probes differ between SystemTap's dtrace and ours"
    );
    assert!(
        ours.values().flatten().all(|loc| loc.semaphore),
        "every probe of a dtrace header has a semaphore"
    );
    // The programs run (no tracer: every _ENABLED() is false).
    for exe in [&theirs_dir.join("driver"), &ours_dir.join("driver")] {
        let status = Command::new(exe).status().unwrap();
        assert_eq!(status.code(), Some(0), "{}", exe.display());
    }
}

#[test]
fn server_provider_with_type_macros() {
    compare_with_systemtap("server_provider_with_type_macros", "dbserver.d", &[], 65);
}

#[test]
fn interpreter_provider_with_pragmas() {
    compare_with_systemtap("interpreter_provider_with_pragmas", "pyvm.d", &[], 12);
}

#[test]
fn several_providers_and_command_line_defines() {
    compare_with_systemtap(
        "several_providers_and_command_line_defines",
        "multi.d",
        &["-DHandle=void*"],
        12,
    );
}

fn stap_sdt_dtrace(dir: &Path, args: &[&str]) -> std::process::Output {
    run(Command::new(STAP_SDT)
        .current_dir(dir)
        .arg("dtrace")
        .args(args))
}

/// Errors name the file, line and column, with and without -C (after cpp,
/// through its line markers); unknown options are named.
#[test]
fn errors_point_into_the_provider_file() {
    let scratch = Scratch::new();
    scratch.write(
        "bad.d",
        "/* a comment\n   over lines */\n#define T int\nprovider p {\n\tprobe ok(T);\n\tprobe broken(int, );\n};\n",
    );
    for extra in [&[][..], &["-C"][..]] {
        let mut args = vec!["-h", "-s", "bad.d", "-o", "bad.h"];
        args.extend(extra);
        let out = stap_sdt_dtrace(scratch.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("bad.d:6:20: empty argument in probe broken"),
            "{extra:?}: {stderr}"
        );
        assert!(!scratch.join("bad.h").exists(), "no output on error");
    }
    let out = stap_sdt_dtrace(scratch.path(), &["-h", "--frobnicate", "-s", "bad.d"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid option `--frobnicate`"));
    let out = stap_sdt_dtrace(scratch.path(), &["-h", "-s", "missing.d"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.d"));
    let out = stap_sdt_dtrace(scratch.path(), &["-G", "-s", "bad.d", "nothere.o"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothere.o: no such object file"));
}

/// Without -o the output is named after the provider file, in the current
/// directory; no-op options are accepted; the header works even when
/// SystemTap's <sys/sdt.h> was included first (one include guard).
#[test]
fn defaults_no_ops_and_include_order() {
    let Some(_) = require("defaults_no_ops_and_include_order", "gcc") else {
        return;
    };
    let scratch = Scratch::new();
    scratch.write(
        "app.d",
        "provider app { probe start(const char *); probe stop(); };\n",
    );
    for mode in ["-h", "-G"] {
        let out = stap_sdt_dtrace(
            scratch.path(),
            &[
                "-64",
                "-fPIC",
                "--no-pyparsing",
                "-x",
                "nolibs",
                mode,
                "-s",
                "app.d",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(scratch.join("app.h").is_file() && scratch.join("app.o").is_file());
    // The generated header in C, in C++, and after SystemTap's header.
    let mut sources = vec![
        ("ours_only.c", "#include \"app.h\"\n"),
        ("ours_only.cc", "#include \"app.h\"\n"),
    ];
    if test_support::system_sdt_include().is_some() {
        sources.push((
            "system_first.c",
            "#include <sys/sdt.h>\n#include \"app.h\"\n",
        ));
    }
    for (name, prelude) in sources {
        let program = format!(
            "{prelude}int main(void) {{ if (APP_START_ENABLED()) return 1; APP_START(\"x\"); APP_STOP(); return 0; }}\n"
        );
        let app_o = scratch.join("app.o");
        let compiler = if name.ends_with(".cc") { "g++" } else { "gcc" };
        let exe = scratch.compile(
            compiler,
            name,
            &program,
            "app",
            &[
                "-O2",
                "-Werror",
                "-I",
                scratch.path().to_str().unwrap(),
                app_o.to_str().unwrap(),
            ],
        );
        let probes = shapes(&list_json(&exe));
        assert_eq!(
            probes.keys().collect::<Vec<_>>(),
            ["app:start", "app:stop"],
            "{name}"
        );
        // With SystemTap's header first, _SDT_HAS_SEMAPHORES came too late for
        // its macros (as with SystemTap's own dtrace header): no semaphores.
        let with_semaphores = name.starts_with("ours_only");
        assert!(
            probes
                .values()
                .flatten()
                .all(|l| l.semaphore == with_semaphores),
            "{name}"
        );
    }
}

/// `-G` compiles with `$CC` and `$CFLAGS`, as SystemTap's dtrace does.
#[test]
fn object_honours_cc_and_cflags() {
    let Some(readelf) = require("object_honours_cc_and_cflags", "readelf") else {
        return;
    };
    if require("object_honours_cc_and_cflags", "clang").is_none() {
        return;
    }
    let scratch = Scratch::new();
    scratch.write("app.d", "provider app { probe start(); };\n");
    let out = run(Command::new(STAP_SDT)
        .current_dir(scratch.path())
        .env("CC", "clang")
        .env("CFLAGS", "-g -DUNUSED=1")
        .args(["dtrace", "-G", "-s", "app.d", "-o", "app.o"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let comment = run(Command::new(&readelf)
        .args(["-p", ".comment"])
        .arg(scratch.join("app.o")));
    assert!(
        String::from_utf8_lossy(&comment.stdout).contains("clang"),
        "$CC was not used"
    );
    let sections = run(Command::new(&readelf).arg("-S").arg(scratch.join("app.o")));
    assert!(
        String::from_utf8_lossy(&sections.stdout).contains(".debug_info"),
        "$CFLAGS (-g) was not used"
    );
}
