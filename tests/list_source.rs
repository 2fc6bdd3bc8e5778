//! `stap-sdt list --source`: DWARF lines from the object itself, and from a
//! separate debug file found by `.gnu_debuglink` or by build-id.

use serde_json::Value;
use std::process::Command;
use test_support::bounded::BoundedOutput;
use test_support::{require, skip, system_sdt_include, Scratch};

const BIN: &str = env!("CARGO_BIN_EXE_stap-sdt");

const SOURCE: &str = "#include <sys/sdt.h>\n\
int main(int argc, char **argv) {\n\
  (void)argv;\n\
  STAP_PROBE1(src, first, argc);\n\
  if (argc > 5)\n\
    STAP_PROBE1(src, second, argc);\n\
  return 0;\n\
}\n";

fn lines(
    path: &std::path::Path,
    debug_dirs: Option<&std::path::Path>,
) -> Vec<(String, String, u64)> {
    let mut cmd = Command::new(BIN);
    cmd.args(["list", "--json", "--source"]).arg(path);
    if let Some(dirs) = debug_dirs {
        cmd.env("STAP_SDT_DEBUG_DIRS", dirs);
    }
    let out = cmd.bounded_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found = Vec::new();
    for probe in report["objects"][0]["probes"].as_array().unwrap() {
        for loc in probe["locations"].as_array().unwrap() {
            let src = &loc["source"];
            found.push((
                probe["name"].as_str().unwrap().to_string(),
                src["file"]
                    .as_str()
                    .unwrap_or("-")
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
                src["line"].as_u64().unwrap_or(0),
            ));
        }
    }
    found
}

fn expected() -> Vec<(String, String, u64)> {
    vec![
        ("first".into(), "prog.c".into(), 4),
        ("second".into(), "prog.c".into(), 6),
    ]
}

fn tool(cmd: &str, args: &[&std::ffi::OsStr]) {
    let status = Command::new(cmd).args(args).status().unwrap();
    assert!(status.success(), "{cmd} {args:?}");
}

#[test]
fn source_lines_from_own_dwarf_and_separate_debug_files() {
    let test = "source_lines_from_own_dwarf_and_separate_debug_files";
    if system_sdt_include().is_none()
        || require(test, "objcopy").is_none()
        || require(test, "strip").is_none()
    {
        skip(test, "needs sys/sdt.h, objcopy and strip");
        return;
    }
    let scratch = Scratch::new();
    let prog = scratch.compile("gcc", "prog.c", SOURCE, "prog", &["-g", "-O1"]);
    assert_eq!(lines(&prog, None), expected());

    // Split the debug info off and link it back by name.
    let debug = scratch.join("prog.debug");
    tool(
        "objcopy",
        &[
            "--only-keep-debug".as_ref(),
            prog.as_os_str(),
            debug.as_os_str(),
        ],
    );
    tool("strip", &["-g".as_ref(), prog.as_os_str()]);
    let stripped = lines(&prog, Some(&scratch.join("no-such-root")));
    assert!(
        stripped.iter().all(|(_, file, _)| file == "-"),
        "{stripped:?}"
    );
    let linked = scratch.join("linked");
    std::fs::copy(&prog, &linked).unwrap();
    let link_arg = format!("--add-gnu-debuglink={}", debug.display());
    tool("objcopy", &[link_arg.as_ref(), linked.as_os_str()]);
    assert_eq!(
        lines(&linked, Some(&scratch.join("no-such-root"))),
        expected()
    );

    // Found by build-id under a debug root, as /usr/lib/debug/.build-id/xx/rest.debug.
    let out = Command::new(BIN)
        .args(["list", "--json"])
        .arg(&prog)
        .bounded_output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = report["objects"][0]["build_id"]
        .as_str()
        .unwrap()
        .to_string();
    let root = scratch.join("debugroot");
    let dir = root.join(".build-id").join(&id[..2]);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&debug, dir.join(format!("{}.debug", &id[2..]))).unwrap();
    assert_eq!(lines(&prog, Some(&root)), expected());
}

/// Rust probes (`sdt-macros`): each site's line is the user's `probe!`
/// line, not a line inside the macros' crate (issue 12).
#[test]
fn rust_probes_point_at_the_users_line() {
    if require("rust_probes_point_at_the_users_line", "cargo").is_none()
        && std::env::var_os("CARGO").is_none()
    {
        return;
    }
    let main_rs = "fn main() {\n\
    let n = std::env::args().count() as u64;\n\
    sdt_macros::probe!(app, first, n);\n\
    if n > 5 {\n\
        sdt_macros::probe!(app, second, n, n + 1);\n\
    }\n\
    sdt_macros::probe_lazy!(app, third, n);\n\
}\n";
    let program = test_support::sdt_macros_program(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
        "user_lines",
        main_rs,
    );
    // A private copy: the listing reads only this file.
    let scratch = Scratch::new();
    let copy = scratch.join("user_lines");
    std::fs::copy(&program, &copy).unwrap();
    let mut found = lines(&copy, None);
    found.sort();
    assert_eq!(
        found,
        vec![
            ("first".to_string(), "main.rs".to_string(), 3),
            ("second".to_string(), "main.rs".to_string(), 5),
            ("third".to_string(), "main.rs".to_string(), 7),
        ]
    );
}
