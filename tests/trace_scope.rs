//! Whose hits are seen: -p (threads included, other processes of the same
//! binary not), -c (from the first instruction, through exec, with the
//! exit status), system-wide.

mod trace_support;

use std::collections::BTreeSet;
use test_support::Scratch;
use trace_support::*;

#[test]
fn pid_scope_excludes_other_processes_of_the_same_binary() {
    if !prerequisites("pid_scope_excludes_other_processes_of_the_same_binary") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let mut traced = Target::spawn(&fx, &["loop"]);
    let mut other = Target::spawn(&fx, &["loop"]);
    traced.stdout.wait_for("ready");
    other.stdout.wait_for("ready");
    let probe = format!("{}:fixture:tick", fx.display());
    let mut tracer = Tracer::start(&["--json", "-p", &traced.pid().to_string(), &probe]);
    // A system-wide tracer beside it sees both: the probe fires in both.
    let mut everyone = Tracer::start(&["--json", &probe]);
    traced.send("go");
    other.send("go");
    tracer.stdout.wait_for("fixture:tick");
    everyone
        .stdout
        .wait_for(&format!("\"pid\":{}", other.pid()));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (code, out, _) = tracer.interrupt();
    assert_eq!(code, Some(0));
    let pids: BTreeSet<u64> = json_lines(&out)
        .iter()
        .map(|e| e["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids, BTreeSet::from([traced.pid() as u64]));
    let (_, out, _) = everyone.interrupt();
    let pids: BTreeSet<u64> = json_lines(&out)
        .iter()
        .map(|e| e["pid"].as_u64().unwrap())
        .collect();
    assert!(pids.contains(&(traced.pid() as u64)) && pids.contains(&(other.pid() as u64)));
}

#[test]
fn pid_scope_covers_threads_started_later() {
    if !prerequisites("pid_scope_covers_threads_started_later") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let mut target = Target::spawn(&fx, &["threads"]);
    target.stdout.wait_for("ready");
    let probe = format!("{}:fixture:thread", fx.display());
    let mut tracer = Tracer::start(&["--json", "-p", &target.pid().to_string(), &probe]);
    target.send("go");
    assert!(target.finish().success());
    // The tracer exits by itself when the process is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while tracer.child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "tracer did not notice the exit"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (_, out, _) = tracer.wait();
    let events = json_lines(&out);
    assert_eq!(events.len(), 20, "4 threads x 5 hits: {out:?}");
    let tids: BTreeSet<u64> = events.iter().map(|e| e["tid"].as_u64().unwrap()).collect();
    assert_eq!(tids.len(), 4);
    assert!(
        !tids.contains(&(u64::from(target_pid(&events)))),
        "hits come from the threads"
    );
    for n in 0..4 {
        let hits = events.iter().filter(|e| e["args"][0] == n).count();
        assert_eq!(hits, 5, "thread {n}");
    }
}

fn target_pid(events: &[serde_json::Value]) -> u32 {
    events[0]["pid"].as_u64().unwrap() as u32
}

#[test]
fn command_traced_through_exec_with_exit_status() {
    if !prerequisites("command_traced_through_exec_with_exit_status") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let probe = format!("{}:fixture:before_exec", fx.display());
    let cmd = format!("{} exec", fx.display());
    let (code, out, err) = trace(&["-c", &cmd, &probe]);
    assert_eq!(code, Some(7), "the command's status is ours: {err:?}");
    assert!(
        err.iter().any(|l| l.contains("exited with status 7")),
        "{err:?}"
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].contains("fixture:before_exec arg0=1"), "{out:?}");
}

#[test]
fn command_hits_are_all_counted_from_the_first_instruction() {
    if !prerequisites("command_hits_are_all_counted_from_the_first_instruction") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let probe = format!("{}:fixture:tick", fx.display());
    let cmd = format!("{} fire 1000", fx.display());
    let (code, out, err) = trace(&["--count", "-c", &cmd, &probe]);
    assert_eq!(code, Some(5), "{err:?}");
    assert_eq!(out, ["@count[fixture:tick]: 1000"]);
    let (code, out, _) = trace(&["--hist", "arg0", "-c", &cmd, &probe]);
    assert_eq!(code, Some(5));
    assert_eq!(out[0], "@arg0[fixture:tick]:");
    assert!(
        out[1].starts_with("count 1000, sum 499500, min 0, max 999, mean 500,"),
        "{out:?}"
    );
    let bucket = |label: &str| -> u64 {
        out.iter()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} in {out:?}"))
            .split_whitespace()
            .nth(label.split_whitespace().count())
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(bucket("[0]"), 1);
    assert_eq!(bucket("[1]"), 1);
    assert_eq!(bucket("[2, 4)"), 2);
    assert_eq!(bucket("[512, 1K)"), 1000 - 512);
}

#[test]
fn interval_counts_grow_and_format_lines_follow_the_template() {
    if !prerequisites("interval_counts_grow_and_format_lines_follow_the_template") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let probe = format!("{}:fixture:tick", fx.display());
    // `loop 1` fires about 1000 ticks, 2 ms apart: several intervals.
    let cmd = format!("echo go | {} loop 1 >/dev/null", fx.display());
    let (code, out, err) = trace(&["--count", "--interval", "0.5", "-c", &cmd, &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    // Each round is stamped with the time.
    let stamps = out.iter().filter(|l| l.starts_with("@time 20")).count();
    let counts: Vec<u64> = out
        .iter()
        .filter(|l| !l.starts_with("@time "))
        .map(|l| {
            l.strip_prefix("@count[fixture:tick]: ")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(counts.len() >= 3, "{out:?}");
    assert_eq!(
        stamps,
        counts.len() - 1,
        "the final round has no stamp: {out:?}"
    );
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert_eq!(*counts.last().unwrap(), 1001);

    let cmd = format!("{} fire 3", fx.display());
    let (code, out, _) = trace(&["--format", "tick %1$03d|%1$x", "-c", &cmd, &probe]);
    assert_eq!(code, Some(5));
    assert_eq!(out, ["tick 000|0", "tick 001|1", "tick 002|2"]);
}

#[test]
fn lost_events_are_counted_exactly() {
    if !prerequisites("lost_events_are_counted_exactly") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let probe = format!("{}:fixture:tick", fx.display());
    // One page of ring while the tracer is stopped (SIGSTOP): it cannot
    // hold 100000 records, some are dropped, and the programs count them
    // exactly. (Running, the reader may keep up with one page.)
    {
        let extra: Option<&str> = None;
        let tracer = Tracer::start(&["--json", "--buffer-pages", "1", &probe]);
        tracer.signal(libc::SIGSTOP);
        let status = std::process::Command::new(&fx)
            .args(["fire", "100000"])
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(5));
        tracer.signal(libc::SIGCONT);
        let (code, out, err) = tracer.interrupt();
        assert_eq!(code, Some(0), "{extra:?} {err:?}");
        let lost: usize = err
            .iter()
            .find_map(|l| {
                l.strip_prefix("stap-sdt: ")?
                    .strip_suffix(" events lost (ring buffer full; raise --buffer-pages)")
            })
            .unwrap_or_else(|| panic!("no lost-events line: {err:?}"))
            .parse()
            .unwrap();
        assert!(lost > 0);
        assert_eq!(
            out.len() + lost,
            100_000,
            "{extra:?}: delivered + lost = fired"
        );
    }
}
