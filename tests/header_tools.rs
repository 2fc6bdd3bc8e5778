//! The notes of `sdt-header/include/sdt.h` are read by every consumer on
//! this machine: `readelf -n`, gdb (`info probes`, `break -probe-stap`,
//! `$_probe_argN`), bpftrace (`-l`, and argument values at a real uprobe),
//! bcc's `tplist`, and perf's SDT cache. Each check runs on the plain probe
//! site and on the opt-in cheap site (STAP_SDT_CHEAP_SITE).

mod header_support;

use header_support::{list_json, locations, our_include};
use std::path::{Path, PathBuf};
use std::process::Command;
use test_support::bounded::BoundedOutput;
use test_support::{is_root, require, run, skip, uprobe_events, Scratch};

const FIXTURE: &str = include_str!("fixtures/header/values.c");

/// The bits of 2.5, the double of the first call (floats are passed as
/// their bits, see sdt.h).
const BITS_OF_2_5: u64 = 0x4004_0000_0000_0000;

#[derive(Clone, Copy, Debug)]
enum Site {
    Plain,
    Cheap,
}

fn build(scratch: &Scratch, compiler: &str, site: Site) -> PathBuf {
    let include = our_include();
    let mut args = vec!["-O2", "-g", "-I", include.to_str().unwrap()];
    if let Site::Cheap = site {
        args.push("-DSTAP_SDT_CHEAP_SITE=1");
    }
    scratch.compile(
        compiler,
        "values.c",
        FIXTURE,
        &format!("values-{compiler}-{site:?}"),
        &args,
    )
}

/// The fixture's probe names.
const PROBES: [&str; 3] = ["values", "floats", "bare"];

/// Assert that a tool's `text` names every probe, spelled by `spell`.
fn assert_lists_every_probe(tool: &str, text: &str, spell: impl Fn(&str) -> String) {
    for name in PROBES {
        let spelled = spell(name);
        assert!(
            text.contains(&spelled),
            "{tool} does not list {spelled}:\n{text}"
        );
    }
}

fn stdout_of(cmd: &mut Command) -> (String, String) {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn readelf_agrees(site: Site) {
    let Some(readelf) = require("readelf_agrees", "readelf") else {
        return;
    };
    for compiler in ["gcc", "clang"] {
        if require("readelf_agrees", compiler).is_none() {
            continue;
        }
        let scratch = Scratch::new();
        let exe = build(&scratch, compiler, site);
        let (text, _) = stdout_of(Command::new(&readelf).args(["-n", "--wide"]).arg(&exe));
        let ours = locations(&list_json(&exe));
        assert_eq!(
            ours.len(),
            text.matches("NT_STAPSDT").count(),
            "{compiler} {site:?}:\n{text}"
        );
        // readelf prints "Arguments:" only for probes that have some.
        let mut printed: Vec<String> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Arguments: ").map(str::to_string))
            .collect();
        let mut reader_args: Vec<String> = ours
            .iter()
            .map(|(_, loc)| loc["args_raw"].as_str().unwrap().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        printed.sort();
        reader_args.sort();
        assert_eq!(printed, reader_args, "{compiler} {site:?}");
        assert_lists_every_probe(&format!("readelf {compiler} {site:?}"), &text, |n| {
            format!("Name: {n}")
        });
    }
}

#[test]
fn readelf_agrees_plain() {
    readelf_agrees(Site::Plain);
}

#[test]
fn readelf_agrees_cheap() {
    readelf_agrees(Site::Cheap);
}

fn gdb_reads_values(site: Site) {
    let Some(gdb) = require("gdb_reads_values", "gdb") else {
        return;
    };
    for compiler in ["gcc", "clang"] {
        if require("gdb_reads_values", compiler).is_some() {
            gdb_reads_values_of(&gdb, compiler, site);
        }
    }
}

fn gdb_reads_values_of(gdb: &Path, compiler: &str, site: Site) {
    let scratch = Scratch::new();
    let exe = build(&scratch, compiler, site);
    let (text, stderr) = stdout_of(
        Command::new(gdb)
            .args(["-nx", "-batch"])
            .args(["-ex", "info probes stap demo"])
            .args(["-ex", "break -probe-stap demo:values"])
            .args(["-ex", "break -probe-stap demo:floats"])
            .args(["-ex", "run"])
            .args(["-ex", "printf \"argc=%d\\n\", $_probe_argc"])
            .args(["-ex", "printf \"a0=%d\\n\", $_probe_arg0"])
            .args(["-ex", "printf \"a1=%ld\\n\", $_probe_arg1"])
            .args(["-ex", "printf \"a2=%s\\n\", (char *)$_probe_arg2"])
            .args(["-ex", "printf \"a3=%d\\n\", $_probe_arg3"])
            .args(["-ex", "printf \"a4=%d\\n\", $_probe_arg4"])
            .args(["-ex", "continue"])
            .args(["-ex", "printf \"f0=%lu\\n\", $_probe_arg0"])
            .args(["-ex", "kill"])
            .arg(&exe)
            .arg("1"),
    );
    for name in PROBES {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().take(3).eq(["stap", "demo", name])),
            "{compiler} {site:?}: info probes lacks {name}:\n{text}"
        );
    }
    for expected in [
        "argc=5",
        "a0=11",
        "a1=-1234567890123",
        "a2=hello",
        "a3=200",
        "a4=-5",
        &format!("f0={BITS_OF_2_5}"),
    ] {
        assert!(
            text.lines().any(|l| l == expected),
            "{compiler} {site:?}: gdb did not print {expected}:\n{text}\n{stderr}"
        );
    }
}

#[test]
fn gdb_reads_values_plain() {
    gdb_reads_values(Site::Plain);
}

#[test]
fn gdb_reads_values_cheap() {
    gdb_reads_values(Site::Cheap);
}

fn bpftrace_program(exe: &Path) -> String {
    let exe = exe.display();
    format!(
        "usdt:{exe}:demo:values {{ printf(\"v %d %ld %s %d %d\\n\", arg0, arg1, str(arg2), arg3, arg4); }}
         usdt:{exe}:demo:floats {{ printf(\"f %lu\\n\", arg0); exit(); }}"
    )
}

fn bpftrace_reads_values(site: Site) {
    let test = "bpftrace_reads_values";
    let Some(bpftrace) = require(test, "bpftrace") else {
        return;
    };
    for compiler in ["gcc", "clang"] {
        if require(test, compiler).is_some() {
            bpftrace_reads_values_of(&bpftrace, compiler, site);
        }
    }
}

fn bpftrace_reads_values_of(bpftrace: &Path, compiler: &str, site: Site) {
    let test = "bpftrace_reads_values";
    let scratch = Scratch::new();
    let exe = build(&scratch, compiler, site);
    let (listed, _) = stdout_of(
        Command::new(bpftrace)
            .arg("-l")
            .arg(format!("usdt:{}:*", exe.display())),
    );
    assert_lists_every_probe(&format!("bpftrace -l {site:?}"), &listed, |n| {
        format!(":demo:{n}")
    });
    if !is_root() {
        skip(test, "attaching needs root");
        return;
    }
    let out = run(Command::new(bpftrace)
        .arg("-e")
        .arg(bpftrace_program(&exe))
        .arg("-c")
        .arg(format!("{} 1", exe.display())));
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !text.contains("Attaching") {
        skip(test, &format!("bpftrace could not attach: {stderr}"));
        return;
    }
    assert!(
        text.lines()
            .any(|l| l == "v 11 -1234567890123 hello 200 -5"),
        "{compiler} {site:?}:\n{text}\n{stderr}"
    );
    assert!(
        text.lines().any(|l| l == format!("f {BITS_OF_2_5}")),
        "{compiler} {site:?}:\n{text}\n{stderr}"
    );
    assert!(
        !uprobe_events().contains(&exe.display().to_string()),
        "bpftrace left a uprobe behind"
    );
}

#[test]
fn bpftrace_reads_values_plain() {
    bpftrace_reads_values(Site::Plain);
}

#[test]
fn bpftrace_reads_values_cheap() {
    bpftrace_reads_values(Site::Cheap);
}

fn tplist_lists(site: Site) {
    let Some(tplist) = require("tplist_lists", "tplist-bpfcc") else {
        return;
    };
    let scratch = Scratch::new();
    let exe = build(&scratch, "gcc", site);
    let (text, stderr) = stdout_of(Command::new(&tplist).arg("-vv").arg("-l").arg(&exe));
    assert!(
        !stderr.contains("Parse error") && !text.contains("Parse error"),
        "{site:?}:\n{text}\n{stderr}"
    );
    assert_lists_every_probe(&format!("tplist {site:?}"), &text, |n| format!("demo:{n}"));
    // bcc decodes each argument of demo:values like our reader does.
    let values = text.split("demo:floats").next().unwrap();
    let decoded: Vec<&str> = values
        .lines()
        .filter_map(|l| l.trim().strip_prefix("argument #"))
        .map(|l| l.split_once(" @").unwrap().0)
        .collect();
    assert_eq!(
        decoded,
        [
            "1 4 signed   bytes",
            "2 8 signed   bytes",
            "3 8 unsigned bytes",
            "4 1 unsigned bytes",
            "5 2 signed   bytes"
        ],
        "{site:?}:\n{text}"
    );
}

#[test]
fn tplist_lists_plain() {
    tplist_lists(Site::Plain);
}

#[test]
fn tplist_lists_cheap() {
    tplist_lists(Site::Cheap);
}

/// perf reads SDT notes into its build-id cache; HOME points at the
/// scratch directory so that the cache is private and goes away.
#[test]
fn perf_sdt_cache_lists_probes() {
    let Some(perf) = require("perf_sdt_cache_lists_probes", "perf") else {
        return;
    };
    let scratch = Scratch::new();
    let exe = build(&scratch, "gcc", Site::Plain);
    stdout_of(
        Command::new(&perf)
            .env("HOME", scratch.path())
            .args(["buildid-cache", "--add"])
            .arg(&exe),
    );
    let (text, _) = stdout_of(
        Command::new(&perf)
            .env("HOME", scratch.path())
            .args(["list", "sdt"]),
    );
    assert_lists_every_probe("perf list sdt", &text, |n| format!("sdt_demo:{n}"));
}

/// Removes a `perf probe` event (`perf probe -d`) when dropped.
struct PerfProbe<'a> {
    perf: &'a Path,
    home: &'a Path,
    event: &'static str,
}

impl Drop for PerfProbe<'_> {
    fn drop(&mut self) {
        let _ = Command::new(self.perf)
            .env("HOME", self.home)
            .args(["probe", "-q", "-d", self.event])
            .bounded_output();
    }
}

/// `perf probe` turns our note into a uprobe event at the note's address
/// with typed fetch arguments, and `perf record`/`perf script` read the
/// values the program passed.
#[test]
fn perf_probe_reads_values() {
    let test = "perf_probe_reads_values";
    let Some(perf) = require(test, "perf") else {
        return;
    };
    if !is_root() {
        skip(test, "perf probe needs root");
        return;
    }
    let scratch = Scratch::new();
    let exe = build(&scratch, "gcc", Site::Plain);
    let home = scratch.path();
    let perf_in_home = || {
        let mut cmd = Command::new(&perf);
        cmd.env("HOME", home);
        cmd
    };
    stdout_of(perf_in_home().args(["buildid-cache", "--add"]).arg(&exe));
    let added = run(perf_in_home()
        .args(["probe", "-q", "-x"])
        .arg(&exe)
        .args(["-a", "sdt_demo:values"]));
    let guard = PerfProbe {
        perf: &perf,
        home,
        event: "sdt_demo:values",
    };
    if !added.status.success() {
        skip(
            test,
            &format!(
                "perf probe failed: {}",
                String::from_utf8_lossy(&added.stderr)
            ),
        );
        return;
    }
    let offset = locations(&list_json(&exe))
        .into_iter()
        .find(|(p, _)| p == "demo:values")
        .map(|(_, l)| l["file_offset"].as_u64().unwrap())
        .unwrap();
    let events = uprobe_events();
    let line = events
        .lines()
        .find(|l| l.contains(&exe.display().to_string()))
        .unwrap_or_else(|| panic!("no uprobe for the fixture in:\n{events}"));
    assert!(line.contains(&format!(":0x{offset:016x}")), "{line}");
    assert!(
        line.contains("arg1=%di:s32") && line.contains("arg2=%si:s64"),
        "{line}"
    );

    let data = scratch.join("perf.data");
    stdout_of(
        perf_in_home()
            .args(["record", "-q", "-e", "sdt_demo:values", "-o"])
            .arg(&data)
            .arg("--")
            .arg(&exe)
            .arg("1"),
    );
    let (script, _) = stdout_of(perf_in_home().args(["script", "-i"]).arg(&data));
    let hit = script
        .lines()
        .find(|l| l.contains("sdt_demo:values"))
        .unwrap_or_else(|| panic!("no sample:\n{script}"));
    assert!(hit.contains("arg1=11 arg2=-1234567890123"), "{hit}");
    assert!(hit.contains("arg4=200"), "{hit}");
    drop(guard);
    assert!(
        !uprobe_events().contains(&exe.display().to_string()),
        "perf probe event left behind"
    );
}
