//! `--stack`: the user stack at a probe three calls deep, named, the same
//! frames as GDB's `bt` at that probe; `--by ustack` counts per stack.

mod trace_support;

use test_support::Scratch;
use trace_support::*;

/// level1 → level2 → level3 fires the probe; then the process lingers a
/// little (the tracer names frames from the process's maps).
const DEEP: &str = r#"
#include <sys/sdt.h>
#include <unistd.h>
__attribute__((noinline)) void level3(int n) { DTRACE_PROBE1(deep, hit, n); }
__attribute__((noinline)) void level2(int n) { level3(n + 1); }
__attribute__((noinline)) void level1(int n) { level2(n + 1); }
__attribute__((noinline)) void other(int n) { level3(n); level3(n); }
int main(void) {
    level1(1);
    other(7);
    usleep(300000);
    return 0;
}
"#;

fn build(test: &str, scratch: &Scratch) -> Option<std::path::PathBuf> {
    if !prerequisites(test) {
        return None;
    }
    let include = format!("-I{}", test_support::system_sdt_include()?.display());
    Some(scratch.compile(
        "gcc",
        "deep.c",
        DEEP,
        "deep",
        &["-g", "-O0", "-fno-omit-frame-pointer", &include],
    ))
}

/// Function names of a GDB `bt` at the first hit of the probe.
fn gdb_backtrace(program: &std::path::Path) -> Option<Vec<String>> {
    let gdb = test_support::require("stack_matches_gdb", "gdb")?;
    let out = test_support::run(
        std::process::Command::new(gdb)
            .args([
                "-batch",
                "-nx",
                "-ex",
                "break -probe-stap deep:hit",
                "-ex",
                "run",
                "-ex",
                "bt",
            ])
            .arg(program)
            .stdin(std::process::Stdio::null()),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter(|l| l.starts_with('#'))
            .filter_map(|l| {
                // "#0  level3 (n=3) at deep.c:4" or "#1  0x… in level2 (n=2) at …"
                let rest = l.split_once(' ')?.1.trim_start();
                let rest = rest.split_once(" in ").map_or(rest, |(_, r)| r);
                Some(rest.split_whitespace().next()?.to_string())
            })
            .collect(),
    )
}

#[test]
fn stack_matches_gdb() {
    let scratch = Scratch::new();
    let Some(program) = build("stack_matches_gdb", &scratch) else {
        return;
    };
    let Some(gdb) = gdb_backtrace(&program) else {
        return;
    };
    assert_eq!(gdb, ["level3", "level2", "level1", "main"], "GDB's view");
    let probe = format!("{}:deep:hit", program.display());
    let command = program.display().to_string();
    let (code, lines, err) = trace(&["--json", "--stack", "--source", "-c", &command, &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    let first = &json_lines(&lines)[0];
    let frames: Vec<String> = first["ustack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    // "0x… level3+0x7 (/…/deep) [deep.c:4]"
    let names: Vec<&str> = frames
        .iter()
        .filter_map(|f| f.split_whitespace().nth(1)?.split('+').next())
        .collect();
    assert_eq!(&names[..4], &gdb[..], "{frames:?}");
    assert!(frames[0].ends_with("[deep.c:4]"), "{frames:?}");
    // The stack goes on into libc's start-up code: no warning about frame pointers.
    assert!(!err.iter().any(|l| l.contains("frame pointer")), "{err:?}");

    let (code, lines, err) = trace(&[
        "--count", "--by", "ustack", "--json", "-c", &command, &probe,
    ]);
    assert_eq!(code, Some(0), "{err:?}");
    let mut per_caller: Vec<(String, u64)> = json_lines(&lines)
        .iter()
        .map(|j| {
            let second = j["keys"]["ustack"][1].as_str().unwrap_or("").to_string();
            let name = second
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .split('+')
                .next()
                .unwrap()
                .to_string();
            (name, j["count"].as_u64().unwrap())
        })
        .collect();
    per_caller.sort();
    // The same stacks folded for a flame graph: `other`'s two call sites
    // merge into one line.
    let folded = scratch.join("stacks.folded");
    let (code, _, err) = trace(&[
        "--count",
        "--by",
        "ustack",
        "--folded",
        &folded.display().to_string(),
        "-c",
        &command,
        &probe,
    ]);
    assert_eq!(code, Some(0), "{err:?}");
    let text = std::fs::read_to_string(&folded).unwrap();
    assert!(
        text.lines().any(|l| l.ends_with("main;other;level3 2")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.ends_with("main;level1;level2;level3 1")),
        "{text}"
    );
    // Two call sites in `other`: two stacks of one hit each.
    assert_eq!(
        per_caller,
        [
            ("level2".to_string(), 1),
            ("other".to_string(), 1),
            ("other".to_string(), 1)
        ],
        "{lines:?}"
    );
}
