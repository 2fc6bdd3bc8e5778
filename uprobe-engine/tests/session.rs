//! The library API against a real program: attach, deliver typed values,
//! count in the kernel, and leave nothing behind on drop.

use std::process::Command;
use test_support::bounded::Held;
use test_support::Scratch;
use uprobe_engine::{Selector, Session, SessionOptions, Target, Value};

const PROGRAM: &str = r#"
#include <sys/sdt.h>
#include <stdio.h>
int main(void) {
    char line[16];
    const char *word = "engine";
    printf("ready\n");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) return 1;
    for (long i = 0; i < 50; i++)
        DTRACE_PROBE3(lib, hit, i, -i, word);
    return 0;
}
"#;

fn build(test: &str, scratch: &Scratch) -> Option<std::path::PathBuf> {
    if !test_support::is_root() {
        test_support::skip(test, "attaching uprobes needs root");
        return None;
    }
    test_support::require(test, "gcc")?;
    let include = format!("-I{}", test_support::system_sdt_include()?.display());
    Some(scratch.compile("gcc", "prog.c", PROGRAM, "prog", &["-O2", &include]))
}

/// Run the program, released once the session is started.
fn run_released(program: &std::path::Path, session: &mut Session) -> u32 {
    let held = Held::start(&mut Command::new(program));
    session.start().unwrap();
    let pid = held.id();
    held.release();
    pid
}

#[test]
fn events_carry_typed_values() {
    let scratch = Scratch::new();
    let Some(program) = build("events_carry_typed_values", &scratch) else {
        return;
    };
    let options = SessionOptions {
        strings: vec![2],
        ..SessionOptions::default()
    };
    let mut session = Session::new(Target::AllProcesses, options).unwrap();
    let selector = Selector::parse(&format!("{}:lib:hit", program.display())).unwrap();
    let reports = session.attach(&selector).unwrap();
    assert_eq!(reports.len(), 1);
    assert!(reports[0].warnings.is_empty(), "{:?}", reports[0].warnings);
    let pid = run_released(&program, &mut session);
    let mut seen = Vec::new();
    for _ in 0..20 {
        session.poll(50, |e| {
            assert_eq!(e.pid, pid);
            assert_eq!(e.probe.label, "lib:hit");
            seen.push(e.args.clone());
        });
        if seen.len() == 50 {
            break;
        }
    }
    assert_eq!(seen.len(), 50);
    for (i, args) in seen.iter().enumerate() {
        assert_eq!(args[0], Value::Signed(i as i64));
        assert_eq!(args[1], Value::Signed(-(i as i64)));
        assert_eq!(args[2], Value::Str("engine".into()));
    }
    assert_eq!(session.lost(), 0);
    let path = program.display().to_string();
    // Tests of this file run in one process: only this program's links.
    let ours = |path: &str| -> Vec<String> {
        test_support::uprobe_multi_links(std::process::id())
            .into_iter()
            .filter(|l| l.contains(&format!("path:\t{path}\n")))
            .collect()
    };
    let links = ours(&path);
    assert_eq!(links.len(), 1, "one link for the site: {links:?}");
    assert!(links[0].contains(&path), "{}", links[0]);
    drop(session);
    assert!(ours(&path).is_empty(), "released on drop");
    assert!(!test_support::uprobe_events().contains(&path), "no tracefs");
}

#[test]
fn counting_fetches_nothing_and_counts_every_hit() {
    let scratch = Scratch::new();
    let Some(program) = build("counting_fetches_nothing_and_counts_every_hit", &scratch) else {
        return;
    };
    let options = SessionOptions {
        count_only: true,
        ..SessionOptions::default()
    };
    let mut session = Session::new(Target::AllProcesses, options).unwrap();
    let selector = Selector::parse(&format!("{}:lib:hit", program.display())).unwrap();
    session.attach(&selector).unwrap();
    run_released(&program, &mut session);
    let path = program.display().to_string();
    let ours = || -> usize {
        test_support::uprobe_multi_links(std::process::id())
            .iter()
            .filter(|l| l.contains(&format!("path:\t{path}\n")))
            .count()
    };
    assert_eq!(ours(), 1);
    let counts = session.counts();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].1, 50);
    drop(session);
    assert_eq!(ours(), 0);
}

/// Run the fixture under a session with these options, return the session
/// (stopped) for reading.
fn run_with(test: &str, scratch: &Scratch, options: SessionOptions) -> Option<Session> {
    let program = build(test, scratch)?;
    let mut session = Session::new(Target::AllProcesses, options).unwrap();
    let selector = Selector::parse(&format!("{}:lib:hit", program.display())).unwrap();
    session.attach(&selector).unwrap();
    run_released(&program, &mut session);
    session.stop();
    Some(session)
}

#[test]
fn a_filter_keeps_only_matching_events() {
    let scratch = Scratch::new();
    let options = SessionOptions {
        strings: vec![2],
        filter: Some(
            uprobe_engine::Filter::parse(r#"arg0 % 2 == 0 && arg1 > -40 && str(arg2) == "engine""#)
                .unwrap(),
        ),
        ..SessionOptions::default()
    };
    let Some(mut session) = run_with("a_filter_keeps_only_matching_events", &scratch, options)
    else {
        return;
    };
    let mut seen = Vec::new();
    session.poll(0, |e| seen.push(e.args[0].clone()));
    let expected: Vec<Value> = (0..40).step_by(2).map(Value::Signed).collect();
    assert_eq!(seen, expected);
    assert_eq!(session.lost(), 0);
}

#[test]
fn aggregates_by_string_with_a_filter() {
    use uprobe_engine::{AggSpec, AggValue, Buckets, KeyPart, KeyValue};
    let scratch = Scratch::new();
    let options = SessionOptions {
        filter: Some(uprobe_engine::Filter::parse("arg0 >= 10 || comm == \"nobody\"").unwrap()),
        aggregate: Some(AggSpec {
            keys: vec![KeyPart::Str(2), KeyPart::Probe],
            value: AggValue::Count,
            buckets: Buckets::Log2,
            key_string_bytes: 64,
        }),
        ..SessionOptions::default()
    };
    let Some(session) = run_with("aggregates_by_string_with_a_filter", &scratch, options) else {
        return;
    };
    let rows = session.aggregates();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0].key,
        [
            KeyValue::Str("engine".into()),
            KeyValue::Probe("lib:hit".into())
        ]
    );
    assert_eq!(rows[0].stats.count, 40);
    assert_eq!(session.lost_keys(), 0);
}

#[test]
fn histograms_of_an_argument_are_exact() {
    use uprobe_engine::{AggSpec, AggValue, Buckets, KeyPart};
    let scratch = Scratch::new();
    let log2 = SessionOptions {
        aggregate: Some(AggSpec {
            keys: vec![KeyPart::Probe],
            value: AggValue::Arg(0),
            buckets: Buckets::Log2,
            key_string_bytes: 8,
        }),
        ..SessionOptions::default()
    };
    let Some(session) = run_with("histograms_of_an_argument_are_exact", &scratch, log2) else {
        return;
    };
    let rows = session.aggregates();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let s = &rows[0].stats;
    assert_eq!((s.count, s.sum, s.min, s.max), (50, 1225, 0, 49));
    // 0 | 1 | 2-3 | 4-7 | 8-15 | 16-31 | 32-49
    let mut want = vec![0u64; 66];
    for (b, n) in [(1, 1), (2, 1), (3, 2), (4, 4), (5, 8), (6, 16), (7, 18)] {
        want[b] = n;
    }
    assert_eq!(s.buckets, want);
    drop(session);

    let linear = SessionOptions {
        aggregate: Some(AggSpec {
            keys: vec![KeyPart::Probe],
            value: AggValue::Arg(1),
            buckets: Buckets::Linear {
                min: -45,
                max: 0,
                step: 10,
            },
            key_string_bytes: 8,
        }),
        ..SessionOptions::default()
    };
    let scratch = Scratch::new();
    let session = run_with("histograms_of_an_argument_are_exact", &scratch, linear).unwrap();
    let s = &session.aggregates()[0].stats;
    assert_eq!((s.min, s.max), (-49, 0));
    // below -45: -49..-46 (4); [-45,-35): 10; … [-5, 0): 5 (-5..-1); 0 and above: 1
    assert_eq!(s.buckets, [4, 10, 10, 10, 10, 5, 1]);
}

/// A caller's own poll loop: the session's descriptor becomes readable when
/// records arrive, and `take_events` hands them out owned.
#[test]
fn the_ring_descriptor_drives_a_callers_poll_loop() {
    use std::os::fd::AsRawFd;
    let scratch = Scratch::new();
    let Some(program) = build("the_ring_descriptor_drives_a_callers_poll_loop", &scratch) else {
        return;
    };
    let mut session = Session::new(Target::AllProcesses, SessionOptions::default()).unwrap();
    assert!(session.as_fd().is_none(), "nothing to wait on before start");
    let selector = Selector::parse(&format!("{}:lib:hit", program.display())).unwrap();
    session.attach(&selector).unwrap();
    let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen_stop = stopped.clone();
    // A closure, not only a function pointer, may say when to stop attaching.
    session.stop_attaching_when(move || seen_stop.load(std::sync::atomic::Ordering::Relaxed));
    run_released(&program, &mut session);
    let fd = session.as_fd().unwrap().as_raw_fd();
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while events.len() < 50 && std::time::Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd we own.
        unsafe { libc::poll(&mut pfd, 1, Session::LOOK_MS) };
        events.extend(session.take_events());
        if events.len() < 50 {
            // The last records are held back a millisecond for ordering.
            std::thread::sleep(std::time::Duration::from_millis(2));
            events.extend(session.take_events());
        }
    }
    assert_eq!(events.len(), 50);
    assert!(events.windows(2).all(|w| w[0].time_ns <= w[1].time_ns));
    assert_eq!(
        session.probes().nth(events[0].probe).unwrap().label,
        "lib:hit"
    );
    assert_eq!(events[49].args[0], Value::Signed(49));
    assert!(!stopped.load(std::sync::atomic::Ordering::Relaxed));
}
