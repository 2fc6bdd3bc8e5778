//! The perl tapset. Debian's perl is built without probes, so these tests
//! run a C fixture built the way perl builds its probes: perl's provider
//! file (tests/fixtures/lang_perldtrace.d) through `stap-sdt dtrace -h`
//! (header with PERL_*() and PERL_*_ENABLED()) and `dtrace -G` (semaphore
//! object), then tests/fixtures/lang_perl_fixture.c compiled against it.
//! Each test builds its own copy (uprobes are keyed by inode).

mod lang_support;

use lang_support::*;
use std::process::Command;
use std::time::Duration;
use test_support::Scratch;

const FIXTURE: &str = include_str!("fixtures/lang_perl_fixture.c");
const PROVIDER: &str = include_str!("fixtures/lang_perldtrace.d");

fn dtrace(scratch: &Scratch, mode: &str, output: &str) {
    let out = test_support::run(
        Command::new(BIN)
            .args(["dtrace", mode, "-s"])
            .arg(scratch.join("perldtrace.d"))
            .arg("-o")
            .arg(scratch.join(output))
            .env("CC", "gcc"),
    );
    assert!(
        out.status.success(),
        "stap-sdt dtrace {mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fixture(test: &str, scratch: &Scratch) -> Option<String> {
    if !prerequisites(test) {
        return None;
    }
    test_support::require(test, "gcc")?;
    scratch.write("perldtrace.d", PROVIDER);
    dtrace(scratch, "-h", "perldtrace.h");
    dtrace(scratch, "-G", "perldtrace.o");
    let include = format!("-I{}", scratch.path().display());
    let object = scratch.join("perldtrace.o").display().to_string();
    let path = scratch.compile(
        "gcc",
        "perl_fixture.c",
        FIXTURE,
        "fakeperl",
        &["-O2", &include, &object],
    );
    Some(path.display().to_string())
}

#[test]
fn perl_calls_and_latency() {
    let scratch = Scratch::new();
    let Some(fx) = fixture("perl_calls_and_latency", &scratch) else {
        return;
    };
    let out = stap_sdt(&["calls", "-l", "perl", "-c", &fx], Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(calls_of(&out.stdout, "Foo::g"), 7, "{}", out.stdout);
    assert_eq!(calls_of(&out.stdout, "main::f"), 3);
    assert_eq!(call_rows(&out.stdout).len(), 2);
    let out = stap_sdt(
        &["calls", "-l", "perl", "-L", "-c", &fx],
        Duration::from_secs(30),
    );
    let f = out
        .stdout
        .lines()
        .find(|l| l.starts_with("main::f "))
        .unwrap_or_else(|| panic!("{out:#?}"));
    // FUNCTION CALLS TOTAL SELF MEAN P50 P99 MAX
    let column = |i: usize| -> f64 { f.split_whitespace().nth(i).unwrap().parse().unwrap() };
    let (total, own, mean, p50, p99, max) = (
        column(2),
        column(3),
        column(4),
        column(5),
        column(6),
        column(7),
    );
    assert!(mean > 0.0, "{f}");
    // main::f calls Foo::g: its own time is less than its total.
    assert!(own < total, "{f}");
    assert!(p50 <= p99 && p99 <= max && mean <= max, "{f}");
}

#[test]
fn perl_events_decode_every_probe() {
    let scratch = Scratch::new();
    let Some(fx) = fixture("perl_events_decode_every_probe", &scratch) else {
        return;
    };
    let out = stap_sdt(
        &["events", "-l", "perl", "-c", &fx, "perl.*"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "{out:#?}");
    // Drop time, pid and tid.
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().skip(3).collect::<Vec<_>>().join(" "))
        .collect();
    let expect_g = [
        r#"perl.sub.entry sub="g" file="Foo.pm" line=7 package="Foo""#,
        r#"perl.op.entry op="add""#,
        r#"perl.sub.return sub="g" file="Foo.pm" line=7 package="Foo""#,
    ];
    let f_entry = r#"perl.sub.entry sub="f" file="/srv/app/script.pl" line=3 package="main""#;
    let f_return = r#"perl.sub.return sub="f" file="/srv/app/script.pl" line=3 package="main""#;
    let mut expected = vec![
        r#"perl.phase.change new="START" old="CONSTRUCT""#.to_string(),
        r#"perl.file.loading file="Foo.pm""#.into(),
        r#"perl.file.loaded file="Foo.pm""#.into(),
        r#"perl.phase.change new="RUN" old="START""#.into(),
    ];
    for _ in 0..3 {
        expected.push(f_entry.into());
        for _ in 0..2 {
            expected.extend(expect_g.iter().map(|s| s.to_string()));
        }
        expected.push(f_return.into());
    }
    expected.extend(expect_g.iter().map(|s| s.to_string()));
    expected.push(r#"perl.phase.change new="END" old="RUN""#.into());
    expected.push(r#"perl.phase.change new="DESTRUCT" old="END""#.into());
    assert_eq!(lines, expected, "{}", out.stdout);
}

#[test]
fn perl_without_probes_is_named() {
    if !prerequisites("perl_without_probes_is_named") {
        return;
    }
    let Some(perl) = test_support::require("perl_without_probes_is_named", "perl") else {
        return;
    };
    let command = format!("{} -e 1", perl.display());
    let out = stap_sdt(
        &["calls", "-l", "perl", "-c", &command],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert!(
        out.stderr.contains("carries no perl probes"),
        "{}",
        out.stderr
    );
    let tapsets = stap_sdt(&["tapsets", "-l", "perl"], Duration::from_secs(30));
    assert!(
        tapsets.stdout.contains("no perl probes"),
        "{}",
        tapsets.stdout
    );
}
