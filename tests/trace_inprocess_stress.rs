//! The in-process backend attaching and detaching 1000 times while 4
//! threads fire a cheap site in a tight loop: no crash, no hit lost
//! without being counted, and at the end the code bytes are the file's and
//! the semaphore reads 0.
//!
//! "No hit lost without being counted": a thread fires `stress:hit` with
//! its sequence number. Between the agent's acknowledgement of an attach
//! (the site is a call from then on) and the next detach request (it stays
//! one until then), every execution of the site is a record; so for each
//! thread the records stamped inside one such window must have consecutive
//! numbers, and every gap must be covered by the ring's lost count. Then an
//! exact burst: fired = delivered + lost.

mod inprocess_support;

use inprocess_support::{bytes_in, bytes_of};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use test_support::Scratch;
use uprobe_engine::inproc::{InProcess, SharedMemory};
use uprobe_engine::{Selector, SessionOptions, SiteRole, Value};

const BIN: &str = env!("CARGO_BIN_EXE_stap-sdt");
const FIXTURE: &str = include_str!("fixtures/inproc_stress.c");
const CYCLES: usize = 1000;
const BURST: u64 = 5000;

fn monotonic_ns() -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills our timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// (thread, seq, monotonic time, probe label) of a record.
struct Hit {
    thread: u64,
    seq: u64,
    time: i128,
    burst: bool,
}

#[test]
fn attach_detach_1000_times_under_4_firing_threads() {
    let test = "attach_detach_1000_times_under_4_firing_threads";
    if test_support::require(test, "gcc").is_none() {
        return;
    }
    let agent =
        test_support::in_process_agent(Path::new(BIN), Path::new(env!("CARGO_MANIFEST_DIR")));
    let scratch = Scratch::new();
    let include = format!("-I{}/sdt-header/include", env!("CARGO_MANIFEST_DIR"));
    let fx = scratch.compile(
        "gcc",
        "inproc_stress.c",
        FIXTURE,
        "stress",
        &["-O2", "-pthread", &include],
    );

    let shared = SharedMemory::new().unwrap();
    let env = shared.child_env(&agent);
    let fd = shared.raw_fd();
    let mut session = InProcess::new(shared, 0, SessionOptions::default()).unwrap();
    let selector = Selector::parse(&format!("{}:stress:*", fx.display())).unwrap();
    session.attach_as(&selector, SiteRole::Hit).unwrap();
    session.start().unwrap();

    let mut command = Command::new(&fx);
    command
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    // SAFETY: between fork and exec only fcntl, async-signal-safe, on a
    // descriptor number copied before the fork.
    unsafe {
        command.pre_exec(move || {
            libc::fcntl(fd, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let pid = child.id();
    session.set_pid(pid);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    assert!(
        session.wait_loaded(Duration::from_secs(5)),
        "the agent loaded"
    );
    assert_eq!(session.patched(), 2, "both sites patched at load");

    let offset = session.clock_offset_ns();
    let mut hits: Vec<Hit> = Vec::new();
    let take = |session: &mut InProcess, hits: &mut Vec<Hit>| {
        session.poll(0, |e| {
            let int = |v: &Value| v.as_i128().unwrap() as u64;
            hits.push(Hit {
                thread: int(&e.args[0]),
                seq: int(&e.args[1]),
                time: e.time_ns as i128 - offset,
                burst: e.probe.label == "stress:burst",
            });
        });
    };
    let started = Instant::now();
    let mut windows = Vec::with_capacity(CYCLES);
    let limit = Duration::from_secs(5);
    for _ in 0..CYCLES {
        session.detach_now(limit).unwrap();
        take(&mut session, &mut hits);
        session.attach_now(limit).unwrap();
        let from = monotonic_ns();
        // Attached for 300 µs, reading meanwhile.
        while monotonic_ns() < from + 300_000 {
            take(&mut session, &mut hits);
        }
        let to = monotonic_ns();
        windows.push((from, to));
    }
    session.detach_now(limit).unwrap();
    let cycling = started.elapsed();
    eprintln!("cycled in {cycling:?}");
    writeln!(stdin, "stop").unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("fired"), "{line}");
    take(&mut session, &mut hits);
    let lost_cycling = session.lost();

    // Consecutive numbers inside each window, per thread; gaps ≤ lost.
    let mut in_windows = 0u64;
    let mut gaps = 0u64;
    let mut seen: HashMap<(u64, u64), usize> = HashMap::new();
    for hit in hits.iter().filter(|h| !h.burst) {
        *seen.entry((hit.thread, hit.seq)).or_default() += 1;
    }
    assert!(seen.values().all(|&n| n == 1), "a hit delivered twice");
    let mut by_thread: HashMap<u64, Vec<&Hit>> = HashMap::new();
    for hit in hits.iter().filter(|h| !h.burst) {
        assert!(hit.thread < 4, "thread {}", hit.thread);
        by_thread.entry(hit.thread).or_default().push(hit);
    }
    for list in by_thread.values_mut() {
        list.sort_by_key(|h| h.time);
        for &(from, to) in &windows {
            // The list is in time order: the window's records are a slice.
            let start = list.partition_point(|h| h.time < from);
            let end = list.partition_point(|h| h.time <= to);
            let mut inside: Vec<u64> = list[start..end].iter().map(|h| h.seq).collect();
            inside.sort_unstable();
            if let (Some(first), Some(last)) = (inside.first(), inside.last()) {
                in_windows += inside.len() as u64;
                gaps += last - first + 1 - inside.len() as u64;
            }
        }
    }
    assert!(
        gaps <= lost_cycling,
        "{gaps} hits missing inside attached windows, {lost_cycling} counted lost"
    );

    eprintln!("checked at {:?}", started.elapsed());
    // The exact burst: attached, 4 × BURST hits.
    session.attach_now(limit).unwrap();
    let lost_before = session.lost();
    writeln!(stdin, "burst {BURST}").unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "burst done");
    let before = hits.len();
    take(&mut session, &mut hits);
    let burst: Vec<&Hit> = hits[before..].iter().filter(|h| h.burst).collect();
    let lost_burst = session.lost() - lost_before;
    assert_eq!(
        burst.len() as u64 + lost_burst,
        4 * BURST,
        "fired = delivered + lost"
    );
    for t in 0..4 {
        let seqs: Vec<u64> = burst
            .iter()
            .filter(|h| h.thread == t)
            .map(|h| h.seq)
            .collect();
        if lost_burst == 0 {
            assert_eq!(seqs, (0..BURST).collect::<Vec<_>>(), "thread {t}");
        }
    }
    session.detach_now(limit).unwrap();
    eprintln!("burst at {:?}", started.elapsed());

    // The code is the file's again and the semaphore is down.
    let sites: Vec<(u64, Option<u64>)> = session
        .probes()
        .map(|p| (p.offset, p.semaphore_offset))
        .collect();
    for (offset, semaphore) in sites {
        assert_eq!(
            bytes_in::<5>(pid, &fx, offset),
            bytes_of::<5>(&fx, offset),
            "site at file offset {offset:#x}"
        );
        if let Some(s) = semaphore {
            assert_eq!(
                u16::from_ne_bytes(bytes_in::<2>(pid, &fx, s)),
                0,
                "semaphore"
            );
        }
    }
    writeln!(stdin, "exit").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "the program ended by itself: {status:?}");
    eprintln!(
        "{CYCLES} attach/detach cycles in {cycling:?}; {in_windows} hits checked in attached \
         windows, {gaps} gaps, {lost_cycling} lost; {} int3 hits",
        session.trapped()
    );
    assert!(in_windows > 0, "hits inside attached windows");
}
