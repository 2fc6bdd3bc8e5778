//! When the programs wake a reader that sleeps on the ring: not for every
//! record (a wakeup costs the traced thread more than the record), but as
//! soon as the ring fills past half, so that a burst is read before it is
//! lost. A sleeping `poll` on the ring's descriptor shows both.

use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};
use test_support::bounded::Held;
use test_support::Scratch;
use uprobe_engine::{Selector, Session, SessionOptions, Target};

/// Fires `lib:n` (one integer: 64-byte records in the ring) as many times
/// as its argument says, once told to go.
const PROGRAM: &str = r#"
#include <sys/sdt.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    char line[16];
    printf("ready\n");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) return 1;
    for (long i = 0; i < n; i++)
        DTRACE_PROBE1(lib, n, i);
    return 0;
}
"#;

/// A 64 KiB ring: the programs wake the reader once 32 KiB, 512 records, wait.
const RING_PAGES: usize = 16;
const RECORD_BYTES: usize = 64;

/// How long a `poll` on the ring descriptor, entered before the fixture
/// fires `hits` times, sleeps (it gives up after `limit`), and how many
/// events the session then reads.
fn poll_while_firing(test: &str, hits: usize, limit: Duration) -> Option<(Duration, usize)> {
    if !test_support::is_root() {
        test_support::skip(test, "attaching uprobes needs root");
        return None;
    }
    test_support::require(test, "gcc")?;
    let scratch = Scratch::new();
    let include = format!("-I{}", test_support::system_sdt_include()?.display());
    let program = scratch.compile("gcc", "prog.c", PROGRAM, "prog", &["-O2", &include]);
    let options = SessionOptions {
        ring_pages: RING_PAGES,
        ..SessionOptions::default()
    };
    let mut session = Session::new(Target::AllProcesses, options).unwrap();
    let selector = Selector::parse(&format!("{}:lib:n", program.display())).unwrap();
    session.attach(&selector).unwrap();
    let held = Held::start(Command::new(&program).arg(hits.to_string()));
    session.start().unwrap();
    let fd = session.as_fd().unwrap().as_raw_fd();
    let sleeper = std::thread::spawn(move || {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let start = Instant::now();
        // SAFETY: one pollfd we own; the session (and the descriptor)
        // outlives this thread, which is joined below.
        unsafe { libc::poll(&mut pfd, 1, limit.as_millis() as i32) };
        start.elapsed()
    });
    // Let the poll go to sleep on an empty ring before the hits come.
    std::thread::sleep(Duration::from_millis(200));
    let fired = Instant::now();
    held.release();
    let slept = sleeper.join().unwrap();
    let after_firing = slept.saturating_sub(Duration::from_millis(200));
    let mut events = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while events < hits && Instant::now() < deadline {
        events += session.poll(50, |_| {});
    }
    assert_eq!(session.lost(), 0, "the ring holds every record");
    eprintln!(
        "{test}: poll returned {after_firing:?} after the hits began ({:?} ago)",
        fired.elapsed()
    );
    Some((after_firing, events))
}

#[test]
fn a_ring_filling_past_half_wakes_a_sleeping_reader() {
    // 800 records: 50 KiB, past the 32 KiB mark, within the ring.
    let hits = 800;
    assert!(hits * RECORD_BYTES > RING_PAGES * 4096 / 2);
    let Some((slept, events)) = poll_while_firing(
        "a_ring_filling_past_half_wakes_a_sleeping_reader",
        hits,
        Duration::from_secs(20),
    ) else {
        return;
    };
    assert!(
        slept < Duration::from_secs(5),
        "woken by the record past half: {slept:?}"
    );
    assert_eq!(events, hits);
}

#[test]
fn a_few_records_do_not_wake_a_sleeping_reader() {
    // 400 records: 25.6 KiB, below the 32 KiB mark (but well past an
    // eighth of the ring, where the reader used to be woken). The reader
    // finds them on its own clock; no program wakes it.
    let hits = 400;
    assert!(hits * RECORD_BYTES < RING_PAGES * 4096 / 2);
    let Some((slept, events)) = poll_while_firing(
        "a_few_records_do_not_wake_a_sleeping_reader",
        hits,
        Duration::from_millis(1500),
    ) else {
        return;
    };
    assert!(
        slept >= Duration::from_millis(1000),
        "nothing woke the poll: {slept:?}"
    );
    assert_eq!(events, hits);
}
