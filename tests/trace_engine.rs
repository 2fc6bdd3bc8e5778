//! The engine's shape, end to end: one ring in time order across CPUs,
//! strings as long as their pointer+length pair says and from pages the
//! process never touched, and nothing of a killed tracer left in the kernel.

mod trace_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use test_support::Scratch;
use trace_support::*;

/// Four threads each fire `tick` then `tock`, 2000 times, pinned to
/// different CPUs where there are several.
const THREADS: &str = r#"
#define _GNU_SOURCE
#include <sys/sdt.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
static void *fire(void *arg) {
    long t = (long)arg;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(t % (cpus > 0 ? cpus : 1), &set);
    sched_setaffinity(0, sizeof set, &set);
    for (long i = 0; i < 2000; i++) {
        DTRACE_PROBE2(order, tick, t, i);
        DTRACE_PROBE2(order, tock, t, i);
    }
    return 0;
}
int main(void) {
    pthread_t th[4];
    for (long t = 0; t < 4; t++) pthread_create(&th[t], 0, fire, (void *)t);
    for (int t = 0; t < 4; t++) pthread_join(th[t], 0);
    return 0;
}
"#;

#[test]
fn records_of_every_cpu_come_in_time_order() {
    if !prerequisites("records_of_every_cpu_come_in_time_order") {
        return;
    }
    let scratch = Scratch::new();
    let include = test_support::system_sdt_include().unwrap();
    let program = scratch.compile(
        "gcc",
        "order.c",
        THREADS,
        "order",
        &["-O2", "-pthread", "-idirafter", include.to_str().unwrap()],
    );
    let probe = format!("{}:order:*", program.display());
    let cmd = program.display().to_string();
    let (code, out, err) = trace(&["--json", "-c", &cmd, &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    let events = json_lines(&out);
    assert_eq!(events.len(), 4 * 2000 * 2, "{err:?}");
    let mut last = 0u128;
    let mut cpus = std::collections::BTreeSet::new();
    // Per thread: tick i, tock i, tick i+1, ... interleaved, not probe by probe.
    let mut next: std::collections::HashMap<u64, (bool, i64)> = Default::default();
    for e in &events {
        let t: u128 = e["time_ns"].as_str().map_or_else(
            || e["time_ns"].as_u64().unwrap() as u128,
            |s| s.parse().unwrap(),
        );
        assert!(t >= last, "time went back: {last} then {e}");
        last = t;
        cpus.insert(e["cpu"].as_u64().unwrap());
        let thread = e["args"][0].as_u64().unwrap();
        let i = e["args"][1].as_i64().unwrap();
        let tock = e["probe"] == "order:tock";
        let expected = next.entry(thread).or_insert((false, 0));
        assert_eq!((tock, i), *expected, "thread {thread} out of order at {e}");
        *expected = if tock { (false, i + 1) } else { (true, i) };
    }
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(cpus.len() >= online.min(4), "hits on CPUs {cpus:?}");
}

/// A string literal alone on a page the process never reads: the program
/// faults it in (a plain copy at the hit would fail), as uprobe fetchargs
/// do.
const UNTOUCHED: &str = r#"
#include <sys/sdt.h>
__attribute__((aligned(4096))) static const char pad1[4096] = "before";
__attribute__((aligned(4096))) static const char text[] = "never touched before the probe";
__attribute__((aligned(4096))) static const char pad2[4096] = "after";
int main(void) {
    const char *volatile p = text;
    DTRACE_PROBE1(page, cold, p);
    return pad1[0] == pad2[0];
}
"#;

#[test]
fn a_string_on_a_page_never_touched_is_read() {
    if !prerequisites("a_string_on_a_page_never_touched_is_read") {
        return;
    }
    let scratch = Scratch::new();
    let include = test_support::system_sdt_include().unwrap();
    let program = scratch.compile(
        "gcc",
        "cold.c",
        UNTOUCHED,
        "cold",
        &["-O2", "-idirafter", include.to_str().unwrap()],
    );
    let probe = format!("{}:page:cold", program.display());
    let cmd = program.display().to_string();
    for _ in 0..3 {
        // Evict the file's pages between runs: each is a fresh fault.
        let _ = std::fs::write("/proc/sys/vm/drop_caches", "1");
        let (code, out, err) = trace(&["--json", "--str", "0", "-c", &cmd, &probe]);
        assert_eq!(code, Some(0), "{err:?}");
        let events = json_lines(&out);
        assert_eq!(events.len(), 1, "{err:?}");
        assert_eq!(events[0]["args"][0], "never touched before the probe");
    }
}

const RUST_MAIN: &str = r#"
use std::hint::black_box;
use sdt_macros::probe;

fn main() {
    let name = String::from("Ada Lovelace/rustc/598");
    let first = &name[..3];
    probe!(shop, customer, black_box(7u64), str(first), black_box(-5i32));
    let empty = &name[3..3];
    probe!(shop, customer, black_box(8u64), str(empty), black_box(0i32));
}
"#;

/// A private copy of the program (uprobes are keyed by inode).
fn rust_program(scratch: &Scratch) -> PathBuf {
    let built = test_support::sdt_macros_program(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "shop",
        RUST_MAIN,
    );
    let copy = scratch.join("shop");
    std::fs::copy(built, &copy).unwrap();
    copy
}

/// `str(x)` of a slice cut from a longer string: the types note says
/// pointer and length, so no flag is needed and nothing past the slice is
/// read.
#[test]
fn a_rust_str_slice_prints_exactly() {
    if !prerequisites("a_rust_str_slice_prints_exactly") {
        return;
    }
    let scratch = Scratch::new();
    let program = rust_program(&scratch);
    let probe = format!("{}:shop:customer", program.display());
    let cmd = program.display().to_string();
    let (code, out, err) = trace(&["--json", "-c", &cmd, &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    let events = json_lines(&out);
    assert_eq!(events.len(), 2, "{err:?}");
    assert_eq!(events[0]["args"][0], 7);
    assert_eq!(events[0]["args"][1], "Ada", "{}", events[0]);
    assert_eq!(events[0]["args"][2], 3, "the length stays a number");
    assert_eq!(events[0]["args"][3], -5);
    assert_eq!(events[1]["args"][1], "");
    let (code, out, err) = trace(&["--format", "%d %s.", "-c", &cmd, &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    assert_eq!(out, ["7 Ada.", "8 ."]);
    // printf's precision from the length argument, as C writes it for a
    // pointer+length pair, and a fixed one.
    let (code, out, err) = trace(&["--format", "%1$d %2$.*3$s|%2$.2s.", "-c", &cmd, &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    assert_eq!(out, ["7 Ada|Ad.", "8 |."]);
}

/// The BPF programs and links a process holds, by id (`prog 12`,
/// `link 7`), from its descriptors' fdinfo.
fn bpf_objects_of(pid: u32) -> Vec<String> {
    let mut ids = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap() {
        let info = std::fs::read_to_string(fd.unwrap().path()).unwrap_or_default();
        for (key, kind) in [("link_id:", "link"), ("prog_id:", "prog")] {
            if let Some(id) = info.lines().find_map(|l| l.strip_prefix(key)) {
                ids.push(format!("{kind} {}", id.trim()));
            }
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

fn bpf_object_exists(bpftool: &Path, object: &str) -> bool {
    let (kind, id) = object.split_once(' ').unwrap();
    Command::new(bpftool)
        .args([kind, "show", "id", id])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// SIGKILL and SIGHUP: every program and link of the tracer is gone at
/// once, its semaphore reads 0, tracefs has nothing of it.
#[test]
fn a_killed_or_hung_up_tracer_leaves_nothing_in_the_kernel() {
    let test = "a_killed_or_hung_up_tracer_leaves_nothing_in_the_kernel";
    if !prerequisites(test) {
        return;
    }
    let Some(bpftool) = test_support::require(test, "bpftool") else {
        return;
    };
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let (mut target, address) = guarded_target(&fx);
    let probe = format!("{}:fixture:guarded", fx.display());
    let pid = target.pid().to_string();
    for signal in [libc::SIGKILL, libc::SIGHUP] {
        let tracer = Tracer::start(&["-p", &pid, &probe]);
        assert_eq!(read_u16(target.pid(), address), 1, "raised while traced");
        let objects = bpf_objects_of(tracer.pid());
        assert!(
            objects.iter().any(|o| o.starts_with("link"))
                && objects.iter().any(|o| o.starts_with("prog")),
            "{objects:?}"
        );
        tracer.signal(signal);
        let _ = tracer.wait();
        // The kernel frees a program after an RCU grace period once its
        // last descriptor and link are gone: give it a second.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        for object in &objects {
            while bpf_object_exists(&bpftool, object) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert!(
                !bpf_object_exists(&bpftool, object),
                "{object} outlived the tracer by a second (signal {signal})"
            );
        }
        assert_eq!(read_u16(target.pid(), address), 0, "signal {signal}");
        assert!(!test_support::uprobe_events().contains(&fx.display().to_string()));
    }
    target.send("again");
    assert_eq!(target.stdout.wait_for("enabled="), "enabled=0");
    target.send("quit");
    assert!(target.finish().success());
}
