//! The attach path for kernels without `uprobe_multi` links (before 6.6:
//! Debian 12's 6.1, Ubuntu 22.04's 5.15): one uprobe perf event and one BPF
//! link per site. This kernel has both, so `STAP_SDT_ATTACH=perf` makes the
//! tracer take the fallback; every test here sets it for the tracers it
//! starts (the whole test binary is about the fallback).

mod trace_support;

use test_support::Scratch;
use trace_support::*;

/// Tracers started from here on take the perf-event path.
fn use_perf_events(test: &str) -> bool {
    // Every test of this binary sets the same value.
    std::env::set_var("STAP_SDT_ATTACH", "perf");
    prerequisites(test)
}

/// Descriptors of `pid` that are perf events.
fn perf_events_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .filter(|target| target.to_str() == Some("anon_inode:[perf_event]"))
                .count()
        })
        .unwrap_or(0)
}

/// With `-p`: the semaphore is raised (the PMU's `ref_ctr_offset`), the
/// argument arrives, the tracer holds perf events and no `uprobe_multi`
/// link, and at the end the semaphore is back to 0 and nothing is left.
#[test]
fn semaphore_and_arguments_through_uprobe_perf_events() {
    let test = "semaphore_and_arguments_through_uprobe_perf_events";
    if !use_perf_events(test) {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let (mut target, address) = guarded_target(&fx);

    let probe = format!("{}:fixture:guarded", fx.display());
    let pid = target.pid().to_string();
    let mut tracer = Tracer::start(&["-p", &pid, &probe]);
    assert_eq!(read_u16(target.pid(), address), 1, "semaphore raised");
    assert!(
        test_support::uprobe_multi_links(tracer.pid()).is_empty(),
        "no uprobe_multi link in the fallback"
    );
    // The site's uprobe event, and the fork tracker's tracepoint events.
    assert!(perf_events_of(tracer.pid()) >= 1);
    target.send("again");
    target.stdout.wait_for("enabled=1");
    tracer.stdout.wait_for("fixture:guarded arg0=5");
    let tracer_pid = tracer.pid();
    let (code, _, err) = tracer.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    assert!(events_of(tracer_pid).is_empty());
    assert_eq!(read_u16(target.pid(), address), 0, "semaphore lowered");
    target.send("quit");
    assert!(target.finish().success());
}

/// Twelve arguments of every site, in order, with `-c`.
#[test]
fn twelve_arguments_arrive_through_uprobe_perf_events() {
    let test = "twelve_arguments_arrive_through_uprobe_perf_events";
    if !use_perf_events(test) {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let cmd = format!("echo go | {} twelve 3 >/dev/null", fx.display());
    let probe = format!("{}:fixture:twelve", fx.display());
    let (code, out, err) = trace(&["--json", "-c", &cmd, &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    let events = json_lines(&out);
    assert_eq!(events.len(), 3, "{out:?} {err:?}");
    assert_twelve_arguments(&events);
}

/// Counting in the kernel system-wide (pid -1 on CPU 0 runs the program for
/// hits on every CPU), and an entry probe and a return probe of functions.
#[test]
fn counts_and_function_probes_through_uprobe_perf_events() {
    let test = "counts_and_function_probes_through_uprobe_perf_events";
    if !use_perf_events(test) {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let probe = format!("{}:fixture:tick", fx.display());
    let tracer = Tracer::start(&["--count", &probe]);
    // Processes that run while the tracer is attached system-wide.
    for _ in 0..3 {
        let status = std::process::Command::new(&fx)
            .args(["fire", "250"])
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(5));
    }
    let (code, out, err) = tracer.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    assert!(
        out.iter().any(|l| l == "@count[fixture:tick]: 750"),
        "{out:?}"
    );

    let cmd = format!("echo go | {} twelve 2 >/dev/null", fx.display());
    let entry = format!("{}:fn:twelve", fx.display());
    let ret = format!("uretprobe:{}:main", fx.display());
    let (code, out, err) = trace(&["--json", "-c", &cmd, &entry, &ret]);
    assert_eq!(code, Some(0), "{err:?}");
    let events = json_lines(&out);
    let entries: Vec<_> = events.iter().filter(|e| e["probe"] == "twelve").collect();
    assert_eq!(entries.len(), 2, "{out:?}");
    assert_eq!(entries[1]["args"][0], 100);
    let returns: Vec<_> = events
        .iter()
        .filter(|e| e["probe"] == "main%return")
        .collect();
    assert_eq!(returns.len(), 1, "{out:?}");
    assert_eq!(returns[0]["args"][0], 0, "main returned 0");
}
