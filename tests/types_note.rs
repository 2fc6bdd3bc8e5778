//! Argument types per probe, end to end: a Rust program built with
//! sdt-macros, a C program built with `stap-sdt dtrace -h/-G` (gcc and
//! clang), and the installed PostgreSQL 15 (built-in table) list their
//! argument types in `stap-sdt list --json` and `-v`; `readelf -n` still
//! reads the objects cleanly and the probe notes are unchanged.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use test_support::readelf::readelf_notes;
use test_support::{require, run, skip, Scratch};

const STAP_SDT: &str = env!("CARGO_BIN_EXE_stap-sdt");

fn list(args: &[&str], path: &Path) -> String {
    let out = run(Command::new(STAP_SDT).arg("list").args(args).arg(path));
    assert!(out.status.success(), "stap-sdt list {path:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn probe_json(path: &Path, provider: &str, name: &str) -> Value {
    let listing: Value = serde_json::from_str(&list(&["--json"], path)).unwrap();
    let object = &listing["objects"][0];
    assert_eq!(object["diagnostics"], Value::Array(vec![]), "{object}");
    object["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == provider && p["name"] == name)
        .unwrap_or_else(|| panic!("no {provider}:{name} in {object}"))
        .clone()
}

fn types(path: &Path, provider: &str, name: &str) -> Value {
    probe_json(path, provider, name)["types"].clone()
}

/// `readelf -n` exits 0, prints no warning or "corrupt", lists the types
/// notes as unknown notes of owner `stap-sdt`, and its probe notes are
/// exactly the ones our reader lists (the types notes add none).
fn readelf_is_clean(path: &Path, probe_notes: usize) {
    let out = run(Command::new("readelf").args(["-n", "-W"]).arg(path));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "readelf -n {path:?}: {stderr}");
    let all = format!("{stdout}{stderr}").to_lowercase();
    assert!(
        !all.contains("corrupt") && !all.contains("warning") && !all.contains("error"),
        "{stdout}{stderr}"
    );
    assert!(
        stdout.contains(".note.stapsdt.types")
            && stdout.contains("stap-sdt")
            && stdout.contains("Unknown note type: (0x00007473)"),
        "{stdout}"
    );
    let notes: usize = readelf_notes(path.to_str().unwrap()).values().sum();
    assert_eq!(notes, probe_notes, "{stdout}");
}

fn locations(path: &Path) -> usize {
    let listing: Value = serde_json::from_str(&list(&["--json"], path)).unwrap();
    listing["objects"][0]["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["locations"].as_array().unwrap().len())
        .sum()
}

const RUST_MAIN: &str = r#"
use std::hint::black_box;
use sdt_macros::probe;

#[inline(never)]
fn again(n: u64) {
    probe!(app, typed, str(black_box("again")), black_box(1.0f64), black_box(n as i32));
}

fn main() {
    let name = String::from("hello");
    probe!(app, typed, str(name), black_box(2.5f64), black_box(7i32));
    probe!(app, cstr, black_box(c"c string"), black_box(1.5f32), 3u8);
    probe!(app, empty);
    again(3);
}
"#;

fn build_rust_program() -> PathBuf {
    test_support::sdt_macros_program(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "typed",
        RUST_MAIN,
    )
}

#[test]
fn rust_macros_write_the_types() {
    let binary = build_rust_program();
    assert_eq!(
        types(&binary, "app", "typed"),
        serde_json::json!(["strptr", "strlen", "float", "int"])
    );
    assert_eq!(
        types(&binary, "app", "cstr"),
        serde_json::json!(["str", "float", "int"])
    );
    assert_eq!(types(&binary, "app", "empty"), serde_json::json!([]));
    // Both sites of app:typed.
    let typed = probe_json(&binary, "app", "typed");
    assert_eq!(typed["locations"].as_array().unwrap().len(), 2);
    let verbose = list(&["-v"], &binary);
    assert!(
        verbose.contains("(strptr)\n") && verbose.contains("(strlen)\n"),
        "{verbose}"
    );
    if require("rust_macros_write_the_types", "readelf").is_some() {
        readelf_is_clean(&binary, locations(&binary));
    }
}

#[test]
fn dtrace_object_writes_the_types() {
    let test = "dtrace_object_writes_the_types";
    let scratch = Scratch::new();
    scratch.write(
        "app.d",
        "provider app {\n  probe start(const char *, int, double);\n  probe name(char * n);\n  probe tick();\n};\n",
    );
    scratch.write(
        "main.c",
        "#include \"app.h\"\nint main(int argc, char **argv) {\n  APP_START(argv[0], argc, 2.5);\n  \
         APP_NAME(argv[0]);\n  APP_TICK();\n  return 0;\n}\n",
    );
    let dtrace = |args: &[&str], cc: &str| {
        let out = run(Command::new(STAP_SDT)
            .current_dir(scratch.path())
            .env("CC", cc)
            .arg("dtrace")
            .args(args));
        assert!(out.status.success(), "dtrace {args:?}: {out:?}");
    };
    let mut built = 0;
    for cc in ["gcc", "clang"] {
        if require(test, cc).is_none() {
            continue;
        }
        let object = format!("app_{cc}.o");
        let exe = format!("main_{cc}");
        dtrace(&["-h", "-s", "app.d", "-o", "app.h"], cc);
        dtrace(&["-G", "-s", "app.d", "-o", &object], cc);
        let out = run(Command::new(cc)
            .current_dir(scratch.path())
            .args(["-O2", "main.c", &object, "-o", &exe]));
        assert!(out.status.success(), "{cc}: {out:?}");
        let exe = scratch.join(&exe);
        assert_eq!(
            types(&exe, "app", "start"),
            serde_json::json!(["str", "int", "float"]),
            "{cc}"
        );
        assert_eq!(types(&exe, "app", "name"), serde_json::json!(["str"]));
        assert_eq!(types(&exe, "app", "tick"), serde_json::json!([]));
        if require(test, "readelf").is_some() {
            readelf_is_clean(&exe, 3);
            readelf_is_clean(&scratch.join(&object), 0);
        }
        built += 1;
    }
    if built == 0 {
        skip(test, "neither gcc nor clang");
    }
}

#[test]
fn postgresql_probes_are_typed_by_the_table() {
    let postgres = Path::new("/usr/lib/postgresql/15/bin/postgres");
    if !postgres.is_file() {
        skip(
            "postgresql_probes_are_typed_by_the_table",
            "no /usr/lib/postgresql/15/bin/postgres",
        );
        return;
    }
    assert_eq!(
        types(postgres, "postgresql", "query__start"),
        serde_json::json!(["str"])
    );
    assert_eq!(
        types(postgres, "postgresql", "lwlock__acquire"),
        serde_json::json!(["str", "int"])
    );
    assert_eq!(
        types(postgres, "postgresql", "transaction__start"),
        serde_json::json!(["int"])
    );
    let verbose = list(&["-v"], postgres);
    let query_start = verbose
        .split("postgresql:query__start\n")
        .nth(1)
        .expect("query__start listed");
    let arg0 = query_start.lines().nth(1).unwrap();
    assert!(
        arg0.trim_start().starts_with("arg0:") && arg0.ends_with(" (str)"),
        "{arg0}"
    );
}

/// libstdc++'s exception probes stay untyped (the table leaves them out).
#[test]
fn libstdcxx_probes_stay_untyped() {
    let lib = Path::new("/usr/lib/x86_64-linux-gnu/libstdc++.so.6");
    if !lib.is_file() {
        skip("libstdcxx_probes_stay_untyped", "no libstdc++.so.6");
        return;
    }
    assert_eq!(types(lib, "libstdcxx", "throw"), Value::Null);
}
