//! Nothing left behind: semaphores back to 0, no uprobe events after a
//! normal end, SIGINT, SIGTERM; the events of a SIGKILLed tracer are
//! removed by the next run. Also: semaphores seen by processes started
//! after the attach, and two tracers on one probe.

mod trace_support;

use test_support::Scratch;
use trace_support::*;

#[test]
fn semaphore_raised_while_traced_and_restored_after() {
    if !prerequisites("semaphore_raised_while_traced_and_restored_after") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let (mut target, address) = guarded_target(&fx);

    let probe = format!("{}:fixture:guarded", fx.display());
    let pid = target.pid().to_string();
    // Two tracers on the same probe: both see the hit. The kernel shares one
    // uprobe (inode, offset) between them, so the counter is raised once.
    let first = Tracer::start(&["-p", &pid, &probe]);
    let mut second = Tracer::start(&["-p", &pid, &probe]);
    assert_eq!(read_u16(target.pid(), address), 1);
    target.send("again");
    target.stdout.wait_for("enabled=1");
    second.stdout.wait_for("fixture:guarded arg0=5");
    let (code, out, _) = first.interrupt();
    assert_eq!(code, Some(0));
    assert!(
        out.iter().any(|l| l.contains("fixture:guarded arg0=5")),
        "{out:?}"
    );
    // The second tracer still holds the probe: still enabled, still traced.
    assert_eq!(read_u16(target.pid(), address), 1);
    target.send("again");
    target.stdout.wait_for("enabled=1");
    let second_pid = second.pid();
    second.interrupt();
    assert!(events_of(second_pid).is_empty());
    // Detached: the semaphore is back to 0 and the program sees it.
    assert_eq!(read_u16(target.pid(), address), 0);
    target.send("again");
    let lines = target.stdout.wait_for("enabled=0");
    assert_eq!(lines, "enabled=0");
    target.send("quit");
    assert!(
        target.finish().success(),
        "the traced process ran on unharmed"
    );
}

#[test]
fn process_started_after_attach_sees_the_semaphore() {
    if !prerequisites("process_started_after_attach_sees_the_semaphore") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let probe = format!("{}:fixture:guarded", fx.display());
    let tracer = Tracer::start(&["--json", &probe]);
    let mut target = Target::spawn(&fx, &["guarded"]);
    target.stdout.wait_for("enabled=1");
    target.send("quit");
    assert!(target.finish().success());
    let mut tracer = tracer;
    tracer.stdout.wait_for("fixture:guarded");
    let (code, _, _) = tracer.interrupt();
    assert_eq!(code, Some(0));
}

fn ends_cleanly_on(signal: i32, name: &str) {
    if !prerequisites(name) {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let mut target = Target::spawn(&fx, &["loop"]);
    target.stdout.wait_for("ready");
    let probe = format!("{}:fixture:tick", fx.display());
    let tracer = Tracer::start(&["--count", &probe]);
    let tracer_json = Tracer::start(&["--json", &probe]);
    assert!(
        !events_of(tracer_json.pid()).is_empty(),
        "events exist while tracing"
    );
    target.send("go");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (pid, pid_json) = (tracer.pid(), tracer_json.pid());
    tracer.signal(signal);
    tracer_json.signal(signal);
    let (code, out, err) = tracer.wait();
    assert_eq!(code, Some(0), "{err:?}");
    let count_line = out
        .iter()
        .find(|l| l.starts_with("@count[fixture:tick]: "))
        .unwrap_or_else(|| panic!("no summary: {out:?}"));
    let n: u64 = count_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n > 10, "{count_line}");
    let (code, out, _) = tracer_json.wait();
    assert_eq!(code, Some(0));
    assert!(json_lines(&out).len() > 10);
    assert!(events_of(pid).is_empty() && events_of(pid_json).is_empty());
    // The traced process runs on unharmed: it still answers.
    assert!(target.child.try_wait().unwrap().is_none());
}

#[test]
fn sigint_ends_cleanly_with_the_summary() {
    ends_cleanly_on(libc::SIGINT, "sigint_ends_cleanly_with_the_summary");
}

#[test]
fn sigterm_ends_cleanly_with_the_summary() {
    ends_cleanly_on(libc::SIGTERM, "sigterm_ends_cleanly_with_the_summary");
}

#[test]
fn events_of_a_killed_tracer_are_removed_by_the_next_run() {
    if !prerequisites("events_of_a_killed_tracer_are_removed_by_the_next_run") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let (mut target, address) = guarded_target(&fx);
    let probe = format!("{}:fixture:guarded", fx.display());
    let tracer = Tracer::start(&["-p", &target.pid().to_string(), &probe]);
    let dead = tracer.pid();
    assert_eq!(read_u16(target.pid(), address), 1);
    assert!(!events_of(dead).is_empty());
    tracer.signal(libc::SIGKILL);
    let _ = tracer.wait();
    // The kernel closed the perf events: the semaphore is released at once.
    // The tracefs events outlive their creator until a later run removes
    // them (possibly another test's tracer, running in parallel: so their
    // presence here is not asserted, only their absence after our run).
    assert_eq!(read_u16(target.pid(), address), 0);
    let (code, _, err) = trace(&["--duration", "0.1", &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    assert!(
        events_of(dead).is_empty(),
        "the next run removed the dead tracer's events"
    );
    target.send("quit");
    assert!(target.finish().success());
}

#[test]
fn beside_bpftrace_on_the_same_probe() {
    let test = "beside_bpftrace_on_the_same_probe";
    if !prerequisites(test) {
        return;
    }
    let Some(bpftrace) = test_support::require(test, "bpftrace") else {
        return;
    };
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let (mut target, address) = guarded_target(&fx);
    let pid = target.pid().to_string();
    let mut bt = std::process::Command::new(bpftrace)
        .args(["-p", &pid, "-e"])
        .arg(format!(
            "usdt:{}:fixture:guarded {{ printf(\"bpftrace %d\\n\", arg0); }}",
            fx.display()
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut bt_out = Lines::new(bt.stdout.take().unwrap());
    bt_out.wait_for("Attaching");
    let probe = format!("{}:fixture:guarded", fx.display());
    let mut ours = Tracer::start(&["-p", &pid, &probe]);
    target.send("again");
    target.stdout.wait_for("enabled=1");
    // KNOWN DEFECT (issue 10 note): while our pid-filtered uprobe_multi
    // link shares the site with bpftrace 0.17's perf uprobe, bpftrace's
    // hit is not seen; ours is.
    ours.stdout.wait_for("fixture:guarded arg0=5");
    let (code, _, _) = ours.interrupt();
    assert_eq!(code, Some(0));
    // bpftrace still works after we left.
    target.send("again");
    target.stdout.wait_for("enabled=1");
    bt_out.wait_for("bpftrace 5");
    // bpftrace 0.17 can lose a SIGINT (it then waits in epoll_wait for
    // good): repeat it until bpftrace is gone.
    test_support::bounded::signal_until_gone(&mut bt, libc::SIGINT, "bpftrace");
    assert_eq!(
        read_u16(target.pid(), address),
        0,
        "both released the semaphore"
    );
    target.send("quit");
    assert!(target.finish().success());
}

/// All 529 `hotspot*` locations of libjvm.so: attached in one link per
/// program, at once; Ctrl-C detaches them all at once too (the kernel
/// took tens of seconds with one uprobe event per location).
#[test]
fn libjvm_sites_attach_and_detach_at_once() {
    let test = "libjvm_sites_attach_and_detach_at_once";
    if !prerequisites(test) {
        return;
    }
    let libjvm = std::path::Path::new("/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so");
    if !libjvm.exists() {
        test_support::skip(test, "OpenJDK 17 is not installed (.ci/run installs it)");
        return;
    }
    // A private copy: uprobes are keyed by inode, and other tests run java.
    let scratch = Scratch::new();
    let copy = scratch.join("libjvm.so");
    std::fs::copy(libjvm, &copy).unwrap();
    let mut child = std::process::Command::new(BIN)
        .arg("trace")
        .arg(format!("{}:hotspot*:*", copy.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = Lines::new(child.stderr.take().unwrap());
    let pid = child.id();
    let started = std::time::Instant::now();
    let line = stderr.wait_for("Tracing ");
    assert!(line.contains("Tracing 529 locations"), "{line}");
    // One link per distinct argument layout (libjvm has about 120).
    let links = test_support::uprobe_multi_links(pid).len();
    assert!((1..=529).contains(&links), "{links} links");
    test_support::bounded::signal_pid(pid, libc::SIGINT);
    let status = test_support::bounded::wait_within(
        &mut child,
        std::time::Duration::from_secs(120),
        "stap-sdt trace after SIGINT",
    );
    let took = started.elapsed();
    assert!(status.success());
    assert!(events_of(pid).is_empty(), "its links were released");
    // Generous for a loaded CI machine; measured ~0.1 s (benches/trace_bench.sh).
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
}
