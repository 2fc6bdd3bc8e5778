//! Shared by the `lang_*` tests: run a runtime view of `stap-sdt` bounded
//! in time, parse its tables, and check it left no uprobe events behind.
#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_stap-sdt");

/// Root, or a printed skip.
pub fn prerequisites(test: &str) -> bool {
    if !test_support::is_root() {
        test_support::skip(test, "attaching uprobes needs root (CI runs as root)");
        return false;
    }
    true
}

/// What a finished run printed.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run `stap-sdt ARGS`; kill it (and fail) after `limit`. Checks that the
/// tracer's tracefs group is gone afterwards.
pub fn stap_sdt(args: &[&str], limit: Duration) -> Output {
    let run = test_support::bounded::collect_within(Command::new(BIN).args(args), limit)
        .expect("start stap-sdt");
    let (pid, status) = (run.pid, run.status);
    let output = Output {
        code: status.and_then(|s| s.code()),
        stdout: String::from_utf8_lossy(&run.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&run.stderr).into_owned(),
    };
    assert!(
        status.is_some(),
        "stap-sdt {args:?} ran longer than {limit:?}: {output:#?}"
    );
    assert_no_events_of(pid);
    output
}

/// No tracefs event of any session of this tracer: groups are
/// `stapsdt_PID` and `stapsdt_PID_N` (one per engine session).
pub fn assert_no_events_of(tracer_pid: u32) {
    let left = test_support::uprobe_multi_links(tracer_pid);
    assert!(left.is_empty(), "uprobe links left behind: {left:#?}");
    assert!(test_support::tracer_uprobe_events(tracer_pid).is_empty());
}

/// `NAME  N` rows of a `calls` table → (name, calls), header skipped.
pub fn call_rows(stdout: &str) -> Vec<(String, u64)> {
    stdout
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?.to_string();
            let calls = words.next()?.parse().ok()?;
            Some((name, calls))
        })
        .collect()
}

/// Calls of `name` in a `calls` table (0 when absent).
pub fn calls_of(stdout: &str, name: &str) -> u64 {
    call_rows(stdout)
        .into_iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, c)| c)
}

/// The `-> NAME` / `<- NAME` column of `flow` lines whose name contains `filter`,
/// with the indentation kept.
pub fn flow_lines(stdout: &str, filter: &str) -> Vec<String> {
    stdout
        .lines()
        .skip(1)
        .filter(|l| l.contains(filter))
        .filter_map(|l| {
            let at = l.find("->").or_else(|| l.find("<-"))?;
            // Indentation: spaces between the time column and the arrow.
            let before = &l[..at];
            let indent = before.len() - before.trim_end().len() - 1;
            Some(format!("{}{}", " ".repeat(indent), &l[at..]))
        })
        .collect()
}

/// `stap-sdt events -l LANGUAGE -c COMMAND [--json] EVENTS...`, bounded.
pub fn events(language: &str, command: &str, json: bool, wanted: &[&str]) -> Output {
    let mut args = vec!["events", "-l", language, "-c", command];
    if json {
        args.push("--json");
    }
    args.extend_from_slice(wanted);
    stap_sdt(&args, Duration::from_secs(120))
}

/// The `--json` event lines of a run (the traced program's own output,
/// which shares stdout, is skipped).
pub fn json_events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}
