//! Bad input and missing privileges: one clear message naming the input,
//! the exit status of the shared table (1 nothing matches, 2 bad input,
//! 3 no privileges), never a panic.

mod trace_support;

use std::process::Command;
use test_support::bounded::BoundedOutput;
use test_support::Scratch;
use trace_support::*;

#[test]
fn bad_probes_are_named() {
    let scratch = Scratch::new();
    let missing = scratch.join("missing");
    let missing = missing.display().to_string();
    let cases = [
        (format!("{missing}:a:b"), format!("{missing}: No such file")),
        ("a:b:c:d:e".to_string(), "bad probe `a:b:c:d:e`".to_string()),
        (
            "x::y".to_string(),
            "bad probe `x::y`: empty field".to_string(),
        ),
        (
            "no-such-library-xyz.so:p:n".to_string(),
            "no-such-library-xyz.so: no such file".to_string(),
        ),
    ];
    for (probe, message) in cases {
        let (code, out, err) = trace(&[&probe]);
        assert_eq!(code, Some(2), "{probe}: {err:?}");
        assert!(out.is_empty());
        assert!(
            err.len() == 1 && err[0].contains(&message) && !err[0].contains("panicked"),
            "{probe}: {err:?}"
        );
    }
    let (code, _, err) = trace(&["--hist", "arg12", "x:y:z"]);
    assert_eq!(code, Some(2));
    assert!(err[0].contains("--hist `arg12`"), "{err:?}");
    let (code, _, err) = trace(&["--format", "%q", "x:y:z"]);
    assert_eq!(code, Some(2));
    assert!(err[0].contains("unknown conversion `%q`"), "{err:?}");
}

#[test]
fn no_match_and_no_process_are_named() {
    if !prerequisites("no_match_and_no_process_are_named") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let probe = format!("{}:nope:x*", fx.display());
    let (code, _, err) = trace(&[&probe]);
    assert_eq!(code, Some(1));
    assert!(err[0].contains("no SDT probe matches `nope:x*`"), "{err:?}");
    let probe = format!("{}:fn:no_such_function", fx.display());
    let (code, _, err) = trace(&[&probe]);
    assert_eq!(code, Some(1));
    assert!(
        err[0].contains("no function symbol matches `no_such_function`"),
        "{err:?}"
    );
    let (code, _, err) = trace(&["-p", "999999999", "fixture:tick"]);
    assert_eq!(code, Some(2));
    assert!(err[0].contains("pid 999999999: no such process"), "{err:?}");
}

#[test]
fn without_privileges_one_sentence_says_what_is_needed() {
    if !test_support::is_root() {
        // Unprivileged already: the message must come straight away.
        let (code, _, err) = trace(&["/bin/true:fn:main"]);
        assert_eq!(code, Some(3));
        assert!(err[0].contains("needs root"), "{err:?}");
        return;
    }
    let Some(setpriv) = test_support::require("without_privileges_one_sentence", "setpriv") else {
        return;
    };
    // A copy of the binary and fixture that `nobody` can run.
    let scratch = Scratch::new();
    let bin = scratch.join("stap-sdt");
    std::fs::copy(BIN, &bin).unwrap();
    let out = Command::new(setpriv)
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(&bin)
        .args(["trace", "libc.so.6:fn:malloc"])
        .bounded_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(
        err.trim(),
        "stap-sdt: tracing needs root, or the CAP_PERFMON and CAP_SYS_ADMIN capabilities \
         (to load BPF programs and attach uprobes); a program of your own with cheap sites \
         can be traced without them: stap-sdt trace --in-process -c CMD (docs/inprocess.md)"
    );
}
