//! End-to-end tests of `sdt-macros`: the example programs in `examples/`
//! (a library with a typed provider, generic and `#[inline]` probes, also
//! built as a cdylib, and a binary firing probes of every argument type)
//! are built with cargo, listed with `stap-sdt list --json`, and traced
//! with GDB and bpftrace, which must read back the values the program
//! passed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use test_support::{cargo_build, is_root, require, run, skip, uprobe_events, Scratch};

const DEMO: &str = "sdt-demo";
const DEMO_LIB: &str = "libsdt_demo_lib.so";

/// The demo built once per test run: optimised, not, and optimised with
/// the `cheap-sites` feature.
struct Builds {
    release: PathBuf,
    debug: PathBuf,
    cheap: PathBuf,
}

fn builds() -> &'static Builds {
    static BUILDS: OnceLock<Builds> = OnceLock::new();
    BUILDS.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("macros-demo");
        let packages = ["sdt-demo", "sdt-demo-lib"];
        let cheap = ["sdt-macros/cheap-sites"];
        Builds {
            release: cargo_build(workspace, &packages, &[], &target, true),
            debug: cargo_build(workspace, &packages, &[], &target, false),
            cheap: cargo_build(workspace, &packages, &cheap, &target.join("cheap"), true),
        }
    })
}

/// A private copy of a demo build: uprobes are keyed by inode.
fn copy_of(build: &Path, scratch: &Scratch) -> PathBuf {
    let copy = scratch.join(DEMO);
    std::fs::copy(build.join(DEMO), &copy).expect("copy the demo");
    copy
}

fn demo_copy(scratch: &Scratch) -> PathBuf {
    copy_of(&builds().release, scratch)
}

fn list_json(path: &Path) -> Value {
    let out = run(Command::new(env!("CARGO_BIN_EXE_stap-sdt"))
        .args(["list", "--json"])
        .arg(path));
    assert!(
        out.status.success(),
        "stap-sdt list {path:?} failed: {out:?}"
    );
    serde_json::from_slice(&out.stdout).expect("stap-sdt list --json prints JSON")
}

fn object(listing: &Value) -> &Value {
    let objects = listing["objects"].as_array().expect("objects");
    assert_eq!(objects.len(), 1, "one object in {listing}");
    &objects[0]
}

fn probe<'a>(object: &'a Value, provider: &str, name: &str) -> &'a Value {
    object["probes"]
        .as_array()
        .expect("probes")
        .iter()
        .find(|p| p["provider"] == provider && p["name"] == name)
        .unwrap_or_else(|| panic!("no probe {provider}:{name} in {}", object["path"]))
}

fn locations(probe: &Value) -> &[Value] {
    probe["locations"].as_array().expect("locations")
}

/// An argument's prefix as the reader parsed it: (size, signed, float).
type Prefix = (u64, bool, bool);

/// Each argument's prefix.
fn prefixes(location: &Value) -> Vec<Prefix> {
    location["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| {
            (
                a["size"].as_u64().expect("size"),
                a["signed"].as_bool().expect("signed"),
                a["float"].as_bool().expect("float"),
            )
        })
        .collect()
}

fn semaphore(location: &Value) -> u64 {
    location["semaphore"]["address"]
        .as_u64()
        .unwrap_or_else(|| panic!("no semaphore at {location}"))
}

const U: bool = false;
const S: bool = true;

/// What each demo probe's argument string must say, from the Rust types.
fn expected_prefixes() -> Vec<(&'static str, Vec<Prefix>)> {
    let int = |size, signed| (size, signed, false);
    vec![
        (
            "unsigned",
            vec![int(1, U), int(2, U), int(4, U), int(8, U), int(8, U)],
        ),
        (
            "signed",
            vec![int(1, S), int(2, S), int(4, S), int(8, S), int(8, S)],
        ),
        (
            "twelve",
            vec![
                int(1, U),
                int(1, S),
                int(2, U),
                int(2, S),
                int(4, U),
                int(4, S),
                int(8, U),
                int(8, S),
                int(8, U),
                int(8, S),
                int(1, U),
                int(8, S),
            ],
        ),
        ("misc", vec![int(1, U), int(4, U), int(8, U), int(8, U)]),
        ("floats", vec![(4, U, true), (8, U, true)]),
        ("text", vec![int(8, U); 5]),
        ("bytes", vec![int(8, U); 2]),
        ("empty", vec![]),
        ("lazy", vec![int(8, U); 2]),
    ]
}

fn check_demo_notes(binary: &Path) {
    let listing = list_json(binary);
    let object = object(&listing);
    assert_eq!(object["diagnostics"], Value::Array(vec![]), "{object}");
    let base = object["stapsdt_base"].as_u64().expect("a .stapsdt.base");
    assert_ne!(base, 0);
    for (name, expected) in expected_prefixes() {
        let probe = probe(object, "demo", name);
        for location in locations(probe) {
            assert_eq!(prefixes(location), expected, "demo:{name} at {location}");
            assert!(
                location["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|a| a["operand"]["kind"] == "register"),
                "demo:{name}: every argument in a register: {location}"
            );
            assert_eq!(location["note_base"].as_u64(), Some(base));
            assert_ne!(location["address"].as_u64(), Some(0));
            semaphore(location);
        }
    }
    // A probe in a generic function: one location per instantiation (u8
    // and u32 here), each with its own argument size, one semaphore.
    let items = locations(probe(object, "demo_lib", "item"));
    let sizes: std::collections::BTreeSet<u64> = items.iter().map(|l| prefixes(l)[0].0).collect();
    assert_eq!(sizes, [1, 4].into(), "demo_lib:item sizes: {items:?}");
    for probe_name in ["item", "request", "tick", "checksum_start"] {
        let sites = locations(probe(object, "demo_lib", probe_name));
        let first = semaphore(&sites[0]);
        assert!(
            sites.iter().all(|l| semaphore(l) == first),
            "demo_lib:{probe_name}: one semaphore for every site: {sites:?}"
        );
    }
    // Distinct probes, distinct semaphores.
    assert_ne!(
        semaphore(&locations(probe(object, "demo", "lazy"))[0]),
        semaphore(&locations(probe(object, "demo", "empty"))[0])
    );
}

#[test]
fn notes_carry_the_rust_types_optimised() {
    check_demo_notes(&builds().release.join(DEMO));
}

#[test]
fn notes_carry_the_rust_types_unoptimised() {
    check_demo_notes(&builds().debug.join(DEMO));
}

/// File ranges `[offset, offset + filesz)` of the PT_LOAD segments, from
/// `readelf -lW`.
fn load_segments(binary: &Path) -> Vec<(u64, u64)> {
    let out = run(Command::new("readelf").arg("-lW").arg(binary));
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.first() == Some(&"LOAD"))
        .map(|w| (hex(w[1]), hex(w[1]) + hex(w[4])))
        .collect()
}

/// The kernel raises a semaphore at its file offset in the first writable
/// mapping whose pages cover it: a semaphore on a file page that two
/// segments map (the end of RELRO, the start of `.data`) is raised at the
/// wrong address. Every semaphore's page must belong to one segment.
#[test]
fn semaphores_sit_on_pages_of_one_segment() {
    for (build, binary) in [
        (&builds().release, DEMO),
        (&builds().debug, DEMO),
        (&builds().release, DEMO_LIB),
    ] {
        let path = build.join(binary);
        let segments = load_segments(&path);
        let listing = list_json(&path);
        for probe in object(&listing)["probes"].as_array().unwrap() {
            for location in locations(probe) {
                let offset = location["semaphore"]["file_offset"].as_u64().unwrap();
                let page = offset & !0xfff;
                let mapping = segments
                    .iter()
                    .filter(|(start, end)| *start & !0xfff <= page && page < *end)
                    .count();
                assert_eq!(
                    mapping, 1,
                    "{path:?}: semaphore at file {offset:#x}, {segments:x?}"
                );
            }
        }
    }
}

#[test]
fn cdylib_holds_its_own_probes() {
    let listing = list_json(&builds().release.join(DEMO_LIB));
    let object = object(&listing);
    let request = locations(probe(object, "demo_lib", "request"));
    for location in request {
        assert_eq!(
            prefixes(location),
            vec![(8, U, false), (8, U, false), (8, U, false), (4, S, false)]
        );
        semaphore(location);
    }
}

/// Notes of probe sites in functions the linker's `--gc-sections` dropped
/// must go with them, not stay behind with a pc of 0: the library's
/// `sdt_demo_serve` (a C entry point the binary never calls) holds a
/// `demo_lib:request` site, which the cdylib keeps and the binary must not.
#[test]
fn notes_of_dropped_functions_are_dropped() {
    let symbols = run(Command::new("nm").arg(builds().release.join(DEMO)));
    assert!(
        !String::from_utf8_lossy(&symbols.stdout).contains("sdt_demo_serve"),
        "the binary should not contain the unused C entry point"
    );
    let listing = list_json(&builds().release.join(DEMO));
    let object = object(&listing);
    for probe in object["probes"].as_array().unwrap() {
        for location in locations(probe) {
            let address = location["address"].as_u64().unwrap();
            assert!(address != 0, "a note of a dropped site: {location}");
        }
    }
}

#[test]
fn lazy_arguments_are_not_evaluated_without_a_tracer() {
    let out = run(Command::new(builds().release.join(DEMO)).arg("3"));
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("lazy evaluations: 0 "),
        "no tracer, no evaluation: {stdout}"
    );
}

/// `$N = value` lines of a `gdb -batch` run, in order.
fn gdb_values(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with('$'))
        .filter_map(|l| l.split_once(" = ").map(|(_, v)| v.to_string()))
        .collect()
}

/// `gdb -batch` running `commands` on a private copy of the demo, in C
/// (the frames are Rust, whose expression syntax has no C casts): its
/// stdout and stderr. `None`, with a printed skip, without gdb.
fn gdb_batch(test: &str, commands: &[String]) -> Option<(String, String)> {
    let gdb = require(test, "gdb")?;
    let scratch = Scratch::new();
    let demo = demo_copy(&scratch);
    let mut cmd = Command::new(gdb);
    cmd.args(["-batch", "-nx", "-ex", "set language c"]);
    for c in commands {
        cmd.args(["-ex", c]);
    }
    let out = run(cmd.arg(&demo));
    Some((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn gdb_reads_back_every_argument() {
    let mut commands: Vec<String> = Vec::new();
    for probe in [
        "unsigned", "signed", "twelve", "misc", "text", "bytes", "lazy",
    ] {
        commands.push(format!("break -probe-stap demo:{probe}"));
    }
    commands.push("break -probe-stap demo_lib:request".into());
    commands.push("run".into());
    let mut expected: Vec<&str> = Vec::new();
    let mut stop = |prints: &[(&str, &'static str)]| {
        for (expr, value) in prints {
            commands.push(format!("print {expr}"));
            expected.push(value);
        }
        commands.push("continue".into());
    };
    stop(&[
        ("$_probe_argc", "5"),
        ("/u $_probe_arg0", "200"),
        ("/u $_probe_arg1", "60000"),
        ("/u $_probe_arg2", "4000000000"),
        ("/u $_probe_arg3", "18446744073709551614"),
        ("/u $_probe_arg4", "18446744073709551615"),
    ]);
    stop(&[
        ("/d $_probe_arg0", "-100"),
        ("/d $_probe_arg1", "-30000"),
        ("/d $_probe_arg2", "-2000000000"),
        ("/d $_probe_arg3", "-9223372036854775807"),
        ("/d $_probe_arg4", "-5"),
    ]);
    let twelve = [
        "1", "-2", "3", "-4", "5", "-6", "7", "-8", "9", "-10", "11", "-12",
    ];
    let twelve_prints: Vec<(String, &'static str)> = twelve
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("/d $_probe_arg{i}"), *v))
        .collect();
    let twelve_prints: Vec<(&str, &'static str)> = twelve_prints
        .iter()
        .map(|(e, v)| (e.as_str(), *v))
        .collect();
    stop(&twelve_prints);
    stop(&[
        ("/d $_probe_arg0", "1"),
        ("/d $_probe_arg1", "955"),
        ("*(char *) $_probe_arg2 @ 3", "\"PTR\""),
        ("/x *(unsigned long *) $_probe_arg3", "0xdeadbeefcafe"),
    ]);
    stop(&[
        ("*(char *) $_probe_arg0 @ $_probe_arg1", "\"hello, probe\""),
        ("*(char *) $_probe_arg2 @ $_probe_arg3", "\"owned string\""),
        ("*(char *) $_probe_arg4 @ 9", "\"c string\""),
    ]);
    stop(&[
        ("/d $_probe_arg1", "3"),
        ("/x *(unsigned char *) $_probe_arg0 @ 3", "{0x1, 0x2, 0x3}"),
    ]);
    // GDB raises the semaphore of a probe it breaks on: the lazy
    // probe's arguments are evaluated and its site is reached.
    stop(&[("/x $_probe_arg0", "0x1a2b"), ("/d $_probe_arg1", "0")]);
    stop(&[
        ("/d $_probe_arg0", "0"),
        ("*(char *) $_probe_arg1 @ $_probe_arg2", "\"/index.html\""),
        ("/d $_probe_arg3", "200"),
    ]);
    let Some((stdout, stderr)) = gdb_batch("gdb_reads_back_every_argument", &commands) else {
        return;
    };
    assert_eq!(
        gdb_values(&stdout),
        expected,
        "gdb output:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("lazy evaluations: 1 "),
        "with GDB on demo:lazy its argument is evaluated once:\n{stdout}"
    );
}

/// GDB 13 does not parse the `f` size suffix (nor `sys/sdt.h`'s own
/// `8f@%rax` for a C double), so check the float arguments one level
/// down: at the probe, the registers the note names hold the bits.
#[test]
fn float_arguments_are_in_the_named_registers() {
    let listing = list_json(&builds().release.join(DEMO));
    let floats = &locations(probe(object(&listing), "demo", "floats"))[0];
    let registers: Vec<String> = floats["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a["operand"]["register"]["name"]
                .as_str()
                .expect("a register operand")
                .to_string()
        })
        .collect();
    let commands = [
        "break -probe-stap demo:floats".to_string(),
        "run".to_string(),
        format!("print/x ${}", registers[0]),
        format!("print/x ${}", registers[1]),
    ];
    let Some((stdout, _)) = gdb_batch("float_arguments_are_in_the_named_registers", &commands)
    else {
        return;
    };
    assert_eq!(
        gdb_values(&stdout),
        [
            format!("{:#x}", 1.5f32.to_bits()),
            format!("{:#x}", (-2.25f64).to_bits())
        ],
        "{stdout}"
    );
}

#[test]
fn bpftrace_reads_back_arguments() {
    bpftrace_reads_back("bpftrace_reads_back_arguments", &builds().release);
}

/// Cheap sites keep the `nop` at the note's pc, so every tracer attaches
/// as before.
#[test]
fn bpftrace_reads_back_arguments_at_cheap_sites() {
    bpftrace_reads_back(
        "bpftrace_reads_back_arguments_at_cheap_sites",
        &builds().cheap,
    );
}

fn bpftrace_reads_back(test: &str, build: &Path) {
    let Some(bpftrace) = require(test, "bpftrace") else {
        return;
    };
    if !is_root() {
        skip(test, "attaching uprobes needs root");
        return;
    }
    let scratch = Scratch::new();
    let demo = copy_of(build, &scratch);
    let d = demo.display();
    // bpftrace 0.17 reads arg0..arg5 of a USDT probe, so the demo's
    // probes it reads have at most six.
    let script = format!(
        r#"usdt:{d}:demo:unsigned {{ printf("unsigned %u %u %u %lu %lu\n", arg0, arg1, arg2, arg3, arg4); }}
usdt:{d}:demo:signed {{ printf("signed %d %d %d %ld %ld\n", arg0, arg1, arg2, arg3, arg4); }}
usdt:{d}:demo:misc {{ printf("misc %d %d %s %lx\n", arg0, arg1, str(arg2), *(uint64 *)arg3); }}
usdt:{d}:demo:text {{ printf("text %s|%s|%s\n", str(arg0, arg1), str(arg2, arg3), str(arg4)); }}
usdt:{d}:demo:lazy {{ printf("lazy %x\n", arg0); }}
usdt:{d}:demo_lib:item {{ printf("item %d\n", arg0); }}
usdt:{d}:demo_lib:request {{ printf("request %d %s %d\n", arg0, str(arg1, arg2), arg3); }}"#
    );
    let out = run(Command::new(bpftrace)
        .args(["-e", &script, "-c"])
        .arg(&demo));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Operation not permitted") && !stdout.contains("unsigned") {
        skip(test, &format!("the kernel refused: {stderr}"));
        return;
    }
    for line in [
        "unsigned 200 60000 4000000000 18446744073709551614 18446744073709551615",
        "signed -100 -30000 -2000000000 -9223372036854775807 -5",
        "misc 1 955 PTR deadbeefcafe",
        "text hello, probe|owned string|c string",
        "lazy 1a2b",
        "item 1",
        "item 3",
        "item 20",
        "request 0 /index.html 200",
        "lazy evaluations: 1 ",
    ] {
        assert!(
            stdout.contains(line),
            "bpftrace should print {line:?}:\n{stdout}\n{stderr}"
        );
    }
    assert!(
        !uprobe_events().contains(&*d.to_string()),
        "no uprobe event left for {d}"
    );
}

/// With `cheap-sites`, every site is `nop` then `lea -128(%rsp),%rsp;
/// nop5; lea 128(%rsp),%rsp` (ARCHITECTURE.md), byte for byte.
#[test]
fn cheap_sites_have_the_agreed_bytes() {
    const CHEAP_SITE: [u8; 19] = [
        0x90, // nop: the note's pc
        0x48, 0x8d, 0x64, 0x24, 0x80, // lea -0x80(%rsp),%rsp
        0x0f, 0x1f, 0x44, 0x00, 0x00, // nopl 0x0(%rax,%rax,1)
        0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00, // lea 0x80(%rsp),%rsp
    ];
    for (build, cheap) in [(&builds().cheap, true), (&builds().release, false)] {
        let binary = build.join(DEMO);
        let bytes = std::fs::read(&binary).expect("read the demo");
        let listing = list_json(&binary);
        let mut sites = 0;
        for probe in object(&listing)["probes"].as_array().unwrap() {
            for location in locations(probe) {
                let at = location["file_offset"].as_u64().unwrap() as usize;
                let site = &bytes[at..at + CHEAP_SITE.len()];
                assert_eq!(site == CHEAP_SITE, cheap, "{binary:?} at {location}");
                assert_eq!(site[0], 0x90, "a nop at the note's pc");
                sites += 1;
            }
        }
        assert!(sites > 10, "{sites} sites in {binary:?}");
    }
}

/// One probe as `tplist-bpfcc -vv` prints it: semaphore, and per location
/// its address and (size, signed) per argument.
#[derive(Debug, Default, PartialEq)]
struct BccProbe {
    semaphore: u64,
    locations: Vec<(u64, Vec<(u64, bool)>)>,
}

fn parse_tplist(text: &str) -> std::collections::BTreeMap<String, BccProbe> {
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex");
    let mut probes = std::collections::BTreeMap::new();
    let mut current: Option<&mut BccProbe> = None;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [name, "[sema", sema] if !line.starts_with(' ') => {
                let probe: &mut BccProbe = probes.entry(name.to_string()).or_default();
                probe.semaphore = hex(sema.trim_end_matches(']'));
                current = Some(probe);
            }
            ["location", _, _, address] => {
                let probe = current.as_mut().expect("a probe before its locations");
                probe.locations.push((hex(address), Vec::new()));
            }
            ["argument", _, size, sign, "bytes", "@", ..] => {
                let probe = current.as_mut().expect("a probe before its arguments");
                let location = probe.locations.last_mut().expect("a location");
                location
                    .1
                    .push((size.parse().expect("size"), *sign == "signed"));
            }
            _ => {}
        }
    }
    probes
}

/// bcc (`tplist-bpfcc`, the parser bpftrace 0.17 uses) reads the same
/// probes, sites, semaphores, sizes and signs as `stap-sdt list`.
#[test]
fn bcc_reads_the_same_notes() {
    let Some(tplist) = require("bcc_reads_the_same_notes", "tplist-bpfcc") else {
        return;
    };
    let binary = builds().release.join(DEMO);
    let out = run(Command::new(tplist).args(["-vv", "-l"]).arg(&binary));
    let bcc = parse_tplist(&String::from_utf8_lossy(&out.stdout));
    let listing = list_json(&binary);
    let mut compared = 0;
    for probe in object(&listing)["probes"].as_array().unwrap() {
        let name = format!(
            "{}:{}",
            probe["provider"].as_str().unwrap(),
            probe["name"].as_str().unwrap()
        );
        if name == "demo:floats" {
            continue; // bcc does not parse `4f@` (nor sys/sdt.h's floats)
        }
        let ours = BccProbe {
            semaphore: semaphore(&locations(probe)[0]),
            locations: locations(probe)
                .iter()
                .map(|l| {
                    let args = prefixes(l)
                        .into_iter()
                        .map(|(size, signed, _)| (size, signed));
                    (l["address"].as_u64().unwrap(), args.collect())
                })
                .collect(),
        };
        assert_eq!(bcc.get(&name), Some(&ours), "{name}");
        compared += 1;
    }
    // Everything compared, plus demo:floats: bcc lists no other probe.
    assert_eq!(compared + 1, bcc.len(), "{bcc:?}");
}

/// A tracefs uprobe event (`uprobe_events`), enabled while this value
/// lives; dropping it disables and removes the event.
struct TracefsUprobe {
    tracefs: PathBuf,
    event: String,
}

impl TracefsUprobe {
    /// `p:GROUP/EVENT PATH:0xOFFSET`, enabled.
    fn attach(tracefs: &Path, event: &str, path: &Path, offset: u64) -> std::io::Result<Self> {
        use std::io::Write;
        let mut events = std::fs::OpenOptions::new()
            .append(true)
            .open(tracefs.join("uprobe_events"))?;
        // One write(2) per command: tracefs parses each write on its own.
        events.write_all(format!("p:{event} {}:{offset:#x}\n", path.display()).as_bytes())?;
        let probe = TracefsUprobe {
            tracefs: tracefs.to_path_buf(),
            event: event.to_string(),
        };
        std::fs::write(probe.dir().join("enable"), "1")?;
        Ok(probe)
    }

    fn dir(&self) -> PathBuf {
        self.tracefs.join("events").join(&self.event)
    }

    /// Hits so far, from `uprobe_profile` (`PATH EVENT HITS MISSES`).
    fn hits(&self) -> u64 {
        let profile = std::fs::read_to_string(self.tracefs.join("uprobe_profile")).unwrap();
        let name = self.event.split('/').nth(1).unwrap();
        profile
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.get(1) == Some(&name))
            .and_then(|w| w.get(2)?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for TracefsUprobe {
    fn drop(&mut self) {
        use std::io::Write;
        let _ = std::fs::write(self.dir().join("enable"), "0");
        if let Ok(mut events) = std::fs::OpenOptions::new()
            .append(true)
            .open(self.tracefs.join("uprobe_events"))
        {
            let _ = events.write_all(format!("-:{}\n", self.event).as_bytes());
        }
    }
}

fn tracefs() -> Option<PathBuf> {
    let tracefs = PathBuf::from("/sys/kernel/tracing");
    if !tracefs.join("uprobe_events").exists() {
        let _ = run(Command::new("mount").args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"]));
    }
    tracefs.join("uprobe_events").exists().then_some(tracefs)
}

fn red_zone_line(demo: &Path, rounds: &str) -> String {
    let out = run(Command::new(demo).arg(rounds));
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("red zone: "))
        .expect("the demo prints its red-zone sum")
        .to_string()
}

/// The cheap sites' safety rule: data a leaf function keeps below `%rsp`
/// (the demo's `red_zone`) survives a tracer attached at the `nop5`,
/// which the kernel optimises into a CALL that pushes below `%rsp`.
#[test]
fn cheap_site_nop5_hits_leave_the_red_zone_alone() {
    let test = "cheap_site_nop5_hits_leave_the_red_zone_alone";
    if !is_root() {
        skip(test, "attaching uprobes needs root");
        return;
    }
    let Some(tracefs) = tracefs() else {
        skip(test, "no tracefs with uprobe_events");
        return;
    };
    let scratch = Scratch::new();
    let demo = copy_of(&builds().cheap, &scratch);
    let listing = list_json(&demo);
    let site = &locations(probe(object(&listing), "demo", "red_zone"))[0];
    let nop5 = site["file_offset"].as_u64().unwrap() + 6;
    let rounds = "20000";
    let untraced = red_zone_line(&demo, rounds);
    let event = format!("sdtmacrostest/redzone{}", std::process::id());
    let traced = {
        let probe = match TracefsUprobe::attach(&tracefs, &event, &demo, nop5) {
            Ok(probe) => probe,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                skip(test, &format!("the kernel refused the uprobe: {e}"));
                return;
            }
            Err(e) => panic!("cannot attach {event} at {nop5:#x} of {demo:?}: {e}"),
        };
        let traced = red_zone_line(&demo, rounds);
        assert!(
            probe.hits() >= 20_000,
            "the uprobe fired {} times",
            probe.hits()
        );
        traced
    };
    assert_eq!(traced, untraced);
    assert!(
        !uprobe_events().contains(&event),
        "{event} left in uprobe_events"
    );
}
