//! Where `sdt-header/include/sdt.h` does better than `<sys/sdt.h>`:
//! per-probe semaphores shared by every call site (checked with a real
//! kernel-maintained semaphore), `.stapsdt.base` surviving `--gc-sections`
//! with bfd, gold and lld, the cheap-site byte shape, and operands that BPF
//! tools can read (with the switch back to SystemTap's constraint).

mod header_support;

use header_support::{list_json, locations, our_include};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use test_support::bounded::BoundedOutput;
use test_support::tracefs::UprobeEvent;
use test_support::{is_root, require, skip, system_sdt_include, uprobe_events, Scratch};

const SEM_MAIN: &str = include_str!("fixtures/header/sem_main.c");
const SEM_OTHER: &str = include_str!("fixtures/header/sem_other.c");
const VALUES: &str = include_str!("fixtures/header/values.c");
const COMPAT: &str = include_str!("fixtures/header/compat.c");

fn include_arg() -> String {
    format!("-I{}", our_include().display())
}

fn build_semaphore_program(scratch: &Scratch, compiler: &str) -> std::path::PathBuf {
    let other = scratch.write("sem_other.c", SEM_OTHER);
    let include = include_arg();
    let exe = format!("sem-{compiler}");
    let args = [
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        &include,
        other.to_str().unwrap(),
    ];
    scratch.compile(compiler, "sem_main.c", SEM_MAIN, &exe, &args)
}

/// Root (to attach uprobes) and gcc, or a printed skip.
fn can_attach(test: &str) -> bool {
    if !is_root() {
        skip(test, "attaching a uprobe needs root");
        return false;
    }
    require(test, "gcc").is_some()
}

/// One file mixes a probe with a semaphore and one without; the two call
/// sites of app:request (two translation units) share one semaphore.
#[test]
fn per_probe_semaphores_mix_and_share() {
    for compiler in ["gcc", "clang"] {
        if require("per_probe_semaphores_mix_and_share", compiler).is_none() {
            continue;
        }
        let scratch = Scratch::new();
        let exe = build_semaphore_program(&scratch, compiler);
        let all = locations(&list_json(&exe));
        let request: Vec<_> = all.iter().filter(|(p, _)| p == "app:request").collect();
        let free: Vec<_> = all.iter().filter(|(p, _)| p == "app:free").collect();
        assert_eq!(
            request.len(),
            2,
            "{compiler}: two call sites of app:request"
        );
        assert_eq!(free.len(), 1, "{compiler}");
        assert!(
            free[0].1["semaphore"].is_null(),
            "{compiler}: app:free has no semaphore"
        );
        let semaphores: Vec<_> = request
            .iter()
            .map(|(_, l)| l["semaphore"]["address"].as_u64())
            .collect();
        assert!(
            semaphores[0].is_some(),
            "{compiler}: app:request has a semaphore"
        );
        assert_eq!(
            semaphores[0], semaphores[1],
            "{compiler}: one semaphore for both sites"
        );
    }
}

/// The kernel raises the semaphore (uprobe `ref_ctr_offset`) when a tracer
/// enables ONE location of app:request; the guards at BOTH call sites see
/// it, the probe fires, and nothing is left behind.
#[test]
fn shared_semaphore_enabled_by_kernel() {
    let test = "shared_semaphore_enabled_by_kernel";
    if !can_attach(test) {
        return;
    }
    let scratch = Scratch::new();
    let exe = build_semaphore_program(&scratch, "gcc");
    let all = locations(&list_json(&exe));
    let (_, site) = all
        .iter()
        .find(|(p, _)| p == "app:request")
        .expect("app:request");
    let offset = site["file_offset"].as_u64().unwrap();
    let semaphore = site["semaphore"]["file_offset"].as_u64().unwrap();

    let mut child = Command::new(&exe)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start fixture");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");

    let group = format!("stapsdt_hdr_{}", std::process::id());
    let mut event = match UprobeEvent::new(&group, "request", &exe, offset, Some(semaphore), "") {
        Ok(event) => event,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            skip(test, &format!("the kernel refused the uprobe: {e}"));
            return;
        }
    };
    event.enable().expect("enable the uprobe event");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "fixture did not see its semaphore"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let said: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(status.success(), "fixture: {said:?}");
    assert_eq!(said, ["enabled here=1 other=1"]);
    assert!(event.hits() >= 1, "the uprobe at the first site fired");
    let name = event.name();
    drop(event);
    assert!(!uprobe_events().contains(&name), "uprobe event left behind");
}

/// The byte at a location's file offset.
fn byte_at(path: &Path, offset: u64) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    bytes[offset as usize..offset as usize + 19].to_vec()
}

/// `--gc-sections` with each linker keeps `.stapsdt.base`, and the note's
/// base and pc stay right (the pc points at the site's nop).
#[test]
fn stapsdt_base_survives_gc_sections() {
    let test = "stapsdt_base_survives_gc_sections";
    if require(test, "gcc").is_none() {
        return;
    }
    for linker in ["bfd", "gold", "lld"] {
        let program = match linker {
            "bfd" => "ld.bfd",
            "gold" => "ld.gold",
            _ => "ld.lld",
        };
        if require(test, program).is_none() {
            continue;
        }
        let scratch = Scratch::new();
        let include = include_arg();
        let fuse = format!("-fuse-ld={linker}");
        let gc = [
            "-O2",
            "-ffunction-sections",
            "-fdata-sections",
            "-Wl,--gc-sections",
            &fuse,
        ];
        let mut args = gc.to_vec();
        args.push(&include);
        let exe = scratch.compile("gcc", "values.c", VALUES, &format!("gc-{linker}"), &args);
        let json = list_json(&exe);
        let object = &json["objects"][0];
        let base = object["stapsdt_base"].as_u64();
        assert!(base.is_some(), "{linker}: .stapsdt.base was collected");
        let all = locations(&json);
        assert_eq!(all.len(), 3, "{linker}");
        for (probe, loc) in &all {
            assert_eq!(
                loc["note_base"].as_u64(),
                base,
                "{linker} {probe}: note base"
            );
            let at = byte_at(&exe, loc["file_offset"].as_u64().unwrap());
            assert_eq!(at[0], 0x90, "{linker} {probe}: the pc is the site's nop");
        }
        if system_sdt_include().is_some() {
            let system =
                scratch.compile("gcc", "values.c", VALUES, &format!("gc-sys-{linker}"), &gc);
            let kept = list_json(&system)["objects"][0]["stapsdt_base"]
                .as_u64()
                .is_some();
            eprintln!("{linker}: <sys/sdt.h> keeps .stapsdt.base under --gc-sections: {kept}");
        }
    }
}

/// The cheap site is `nop` (the note's pc) then lea/nop5/lea, byte for byte
/// as documented (tracers recognise it by these bytes), with gcc and clang.
#[test]
fn cheap_site_bytes() {
    const SHAPE: [u8; 19] = [
        0x90, // nop: the probe address
        0x48, 0x8d, 0x64, 0x24, 0x80, // lea -128(%rsp),%rsp
        0x0f, 0x1f, 0x44, 0x00, 0x00, // nopl 0(%rax,%rax,1)
        0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00, // lea 128(%rsp),%rsp
    ];
    for compiler in ["gcc", "clang"] {
        if require("cheap_site_bytes", compiler).is_none() {
            continue;
        }
        let scratch = Scratch::new();
        let include = include_arg();
        for (flag, cheap) in [
            ("-DSTAP_SDT_CHEAP_SITE=1", true),
            ("-DSTAP_SDT_CHEAP_SITE=0", false),
        ] {
            let exe = scratch.compile(compiler, "values.c", VALUES, "v", &["-O2", &include, flag]);
            for (probe, loc) in locations(&list_json(&exe)) {
                let at = byte_at(&exe, loc["file_offset"].as_u64().unwrap());
                if cheap {
                    assert_eq!(at, SHAPE, "{compiler} {probe}");
                } else {
                    assert_eq!(at[0], 0x90, "{compiler} {probe}");
                    assert_ne!(at[1..6], SHAPE[1..6], "{compiler} {probe}: plain site");
                }
            }
        }
    }
}

fn rip_relative_operands(json: &serde_json::Value) -> Vec<String> {
    locations(json)
        .iter()
        .flat_map(|(probe, loc)| {
            loc["args"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["raw"].as_str().unwrap().contains("(%rip)"))
                .map(|a| format!("{probe} {}", a["raw"]))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// By default no argument is `sym(%rip)` (globals, statics, float and
/// string constants), at -O0 and -O2, gcc and clang; defining
/// STAP_SDT_ARG_CONSTRAINT=nor and STAP_SDT_FLOAT_ARGS=1 brings SystemTap's
/// forms back.
#[test]
fn operands_avoid_rip_relative_by_default() {
    for compiler in ["gcc", "clang"] {
        if require("operands_avoid_rip_relative_by_default", compiler).is_none() {
            continue;
        }
        let scratch = Scratch::new();
        let include = include_arg();
        for opt in ["-O0", "-O2"] {
            let exe = scratch.compile(compiler, "compat.c", COMPAT, "d", &[opt, &include]);
            let json = list_json(&exe);
            assert_eq!(
                rip_relative_operands(&json),
                Vec::<String>::new(),
                "{compiler} {opt}"
            );
            for (probe, loc) in locations(&json) {
                for arg in loc["args"].as_array().unwrap() {
                    let kind = arg["operand"]["kind"].as_str().unwrap();
                    assert!(
                        kind == "register" || kind == "immediate",
                        "{compiler} {opt} {probe}: {arg}"
                    );
                }
            }
        }
        let flags = [
            "-O2",
            &include,
            "-DSTAP_SDT_ARG_CONSTRAINT=nor",
            "-DSTAP_SDT_FLOAT_ARGS=1",
        ];
        let exe = scratch.compile(compiler, "compat.c", COMPAT, "nor", &flags);
        assert!(
            !rip_relative_operands(&list_json(&exe)).is_empty(),
            "{compiler}: with the switch, globals are read from memory again"
        );
    }
}

const REDZONE: &str = include_str!("fixtures/header/redzone.c");

/// Run `exe 5000` and return its checksum line.
fn checksum(exe: &Path) -> String {
    let out = Command::new(exe)
        .arg("5000")
        .bounded_output()
        .expect("run fixture");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A uprobe on the cheap site's 5-byte nop (where a tracer that knows the
/// shape attaches, and the kernel can optimise it into a CALL) leaves the
/// red zone of a leaf function intact: the -O0 fixture computes the same
/// checksum with 5000 hits as without. The control, a bare nop5 after a
/// plain site, shows the hazard when the kernel optimises it.
#[test]
fn cheap_site_nop5_uprobe_keeps_red_zone() {
    let test = "cheap_site_nop5_uprobe_keeps_red_zone";
    if !can_attach(test) {
        return;
    }
    let scratch = Scratch::new();
    let include = include_arg();
    let instance_name = format!("stapsdt_redzone_{}", std::process::id());
    let instance = match test_support::tracefs::TracingInstance::new(&instance_name) {
        Ok(instance) => instance,
        Err(e) => {
            skip(test, &format!("cannot create a tracing instance: {e}"));
            return;
        }
    };
    let mut control_corrupted = None;
    for (variant, flag, nop5_at) in [
        ("cheap", "-DSTAP_SDT_CHEAP_SITE=1", 6),
        ("bare", "-DBARE_NOP5", 1),
    ] {
        let exe = scratch.compile(
            "gcc",
            "redzone.c",
            REDZONE,
            variant,
            &["-O0", &include, flag],
        );
        let (_, site) = locations(&list_json(&exe)).pop().expect("redzone:site");
        let nop5 = site["file_offset"].as_u64().unwrap() + nop5_at;
        assert_eq!(
            byte_at(&exe, nop5)[..5],
            [0x0f, 0x1f, 0x44, 0x00, 0x00],
            "{variant}: nop5"
        );
        let expected = checksum(&exe);
        let group = format!("stapsdt_rz_{}", std::process::id());
        let mut event = match UprobeEvent::new(&group, variant, &exe, nop5, None, "") {
            Ok(event) => event,
            Err(e) => {
                skip(test, &format!("the kernel refused the uprobe: {e}"));
                return;
            }
        };
        event.enable_in(&instance).expect("enable in the instance");
        let attached = checksum(&exe);
        assert_eq!(
            event.hits(),
            5000,
            "{variant}: every iteration hit the uprobe"
        );
        drop(event);
        if variant == "cheap" {
            assert_eq!(
                attached, expected,
                "the cheap site let the uprobe corrupt the red zone"
            );
        } else {
            control_corrupted = Some(attached != expected);
        }
    }
    drop(instance);
    match control_corrupted {
        Some(true) => eprintln!("control: a bare nop5 uprobe corrupted the red zone, as expected"),
        _ => eprintln!("control: the bare nop5 was not corrupted (kernel did not optimise it)"),
    }
    assert!(
        !uprobe_events().contains("stapsdt_rz_"),
        "uprobe events left behind"
    );
}
