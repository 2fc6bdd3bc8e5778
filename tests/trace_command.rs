//! `-c CMD` runs what the shell runs: a shim script in front of the probed
//! program is named before the start, a run that never mapped the probed
//! file says so, SIGTERM/SIGHUP end the command too, and a bare
//! PROVIDER:NAME finds the command's own probes.

mod trace_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};
use test_support::bounded::BoundedOutput;
use test_support::Scratch;
use trace_support::*;

/// An executable `#!/bin/sh` script `name` in `scratch` with `body`.
fn shim(scratch: &Scratch, name: &str, body: &str) -> std::path::PathBuf {
    let path = scratch.write(name, format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn shim_running_another_copy_is_named_before_the_start_and_after_no_hits() {
    let test = "shim_running_another_copy_is_named_before_the_start_and_after_no_hits";
    if !prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let other = scratch.join("fx-other");
    std::fs::copy(&fx, &other).unwrap();
    // The copy runs ~2 s (1000 ticks, 2 ms apart), so the tracer sees it mapped.
    let script = shim(
        &scratch,
        "fx-shim",
        &format!("exec {} loop 1 </dev/zero >/dev/null", other.display()),
    );
    let probe = format!("{}:fixture:tick", fx.display());
    let (code, out, err) = trace(&["-c", &script.display().to_string(), &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    assert!(out.is_empty(), "no hit in the probed copy: {out:?}");
    let warnings: Vec<&String> = err.iter().filter(|l| l.contains("-c runs ")).collect();
    assert_eq!(warnings.len(), 1, "one warning: {err:?}");
    assert!(
        warnings[0].contains(&format!(
            "-c runs {}, a script (#!/bin/sh)",
            script.display()
        )) && warnings[0].contains(&format!("the probes are in {}", fx.display())),
        "{err:?}"
    );
    assert!(
        err.iter().any(|l| l
            == &format!(
                "stap-sdt: no hits: the command never mapped {} (it ran {})",
                fx.display(),
                other.display()
            )),
        "{err:?}"
    );

    // A different ELF program than the one probed, run directly.
    let cmd = format!("{} fire 3", other.display());
    let (code, out, err) = trace(&["-c", &cmd, &probe]);
    assert_eq!(code, Some(5), "{err:?}");
    assert!(out.is_empty(), "{out:?}");
    assert!(
        err.iter().any(|l| l.contains(&format!(
            "-c runs {}, a different file; the probes are in {}",
            other.display(),
            fx.display()
        ))),
        "{err:?}"
    );
}

#[test]
fn shim_running_the_probed_program_sees_hits_and_no_missing_hits_line() {
    let test = "shim_running_the_probed_program_sees_hits_and_no_missing_hits_line";
    if !prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let script = shim(
        &scratch,
        "fx-shim",
        &format!("exec {} fire 3", fx.display()),
    );
    let probe = format!("{}:fixture:tick", fx.display());
    let (code, out, err) = trace(&["-c", &script.display().to_string(), &probe]);
    assert_eq!(code, Some(5), "{err:?}");
    assert_eq!(out.len(), 3, "{out:?} {err:?}");
    assert!(out[2].contains("fixture:tick arg0=2"), "{out:?}");
    assert!(!err.iter().any(|l| l.contains("no hits")), "{err:?}");
    // The shim is still named (it is a script): one line, before the start.
    assert_eq!(
        err.iter().filter(|l| l.contains("a script")).count(),
        1,
        "{err:?}"
    );
    // Without the shim, the program itself: no warning at all.
    let cmd = format!("{} fire 3", fx.display());
    let (code, out, err) = trace(&["-c", &cmd, &probe]);
    assert_eq!(code, Some(5));
    assert_eq!(out.len(), 3);
    assert!(
        !err.iter()
            .any(|l| l.contains("-c runs") || l.contains("no hits")),
        "{err:?}"
    );
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// The pid of the tracer's child running `program`, once it runs it.
fn command_pid(tracer: u32, program: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let children = std::fs::read_to_string(format!("/proc/{tracer}/task/{tracer}/children"))
            .unwrap_or_default();
        for pid in children.split_whitespace().filter_map(|p| p.parse().ok()) {
            if std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == program) {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the command never ran {program:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_and_sighup_end_the_command_and_the_tracer() {
    let test = "sigterm_and_sighup_end_the_command_and_the_tracer";
    if !prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    // A private copy of sleep, so the pid found is surely the command's.
    let sleep = scratch.join("sleep");
    std::fs::copy(test_support::which("sleep").expect("sleep"), &sleep).unwrap();
    let probe = format!("{}:fixture:tick", fx.display());
    for signal in [libc::SIGTERM, libc::SIGHUP] {
        let cmd = format!("{} 30", sleep.display());
        let tracer = Tracer::start(&["-c", &cmd, &probe]);
        let child = command_pid(tracer.pid(), &sleep);
        assert!(alive(child));
        let started = Instant::now();
        tracer.signal(signal);
        let (code, _, err) = tracer.wait();
        assert_eq!(code, Some(0), "signal {signal}: {err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "signal {signal}: took {:?}",
            started.elapsed()
        );
        assert!(
            !alive(child),
            "signal {signal}: the command is still running"
        );
        assert!(
            err.iter().any(|l| l.contains(&format!(
                "ended `{cmd}` with signal {signal} (status {})",
                128 + signal
            ))),
            "{err:?}"
        );
    }
}

#[test]
fn bare_selector_with_command_finds_the_programs_probes() {
    let test = "bare_selector_with_command_finds_the_programs_probes";
    if !prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let _fx = fixture(&scratch);
    // `./fx`, relative, as a user types it.
    let out = std::process::Command::new(BIN)
        .current_dir(scratch.path())
        .args(["trace", "-c", "./fx fire 3", "fixture:tick"])
        .stdin(std::process::Stdio::null())
        .bounded_output()
        .expect("run stap-sdt trace");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout} {stderr}");
    for (i, line) in lines.iter().enumerate() {
        assert!(line.contains(&format!("fixture:tick arg0={i}")), "{line}");
    }
    assert!(!stderr.contains("-c runs"), "{stderr}");
    // A probe the program does not have: the error names the program.
    let out = std::process::Command::new(BIN)
        .current_dir(scratch.path())
        .args(["trace", "-c", "./fx fire 3", "fixture:nope"])
        .stdin(std::process::Stdio::null())
        .bounded_output()
        .expect("run stap-sdt trace");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr.contains("no SDT probe matches `fixture:nope`")
            && stderr.contains(&scratch.join("fx").display().to_string()),
        "{stderr}"
    );
}
