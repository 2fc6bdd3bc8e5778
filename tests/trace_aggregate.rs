//! Aggregation in the kernel on real processes, with exact numbers:
//! `--count --by`, `--filter`, `--hist`, and `latency` with delays whose
//! log2 bucket is known.

mod trace_support;

use test_support::Scratch;
use trace_support::*;

/// Three children of one parent fire `agg:tick(i, name)` 10, 20 and 30
/// times (names on a page nothing else touches); the parent prints their
/// pids once they are done.
const FORKS: &str = r#"
#include <sys/sdt.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>
static const char *const names[] = {"alpha", "beta", "gamma"};
int main(void) {
    pid_t kids[3];
    for (int k = 0; k < 3; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            for (long i = 0; i < 10 * (k + 1); i++)
                DTRACE_PROBE2(agg, tick, i, names[k]);
            _exit(0);
        }
    }
    for (int k = 0; k < 3; k++)
        waitpid(kids[k], 0, 0);
    printf("%d %d %d\n", kids[0], kids[1], kids[2]);
    return 0;
}
"#;

/// Three threads each take turns of 1.5 ms and 24 ms between `lat:start`
/// and `lat:done` (10 turns), and print on stderr the bounds of each
/// interval by their own clock (`d INNER OUTER`: read between the probes,
/// and around them): the truth each sample's bucket is checked against (a
/// loaded machine oversleeps, and may preempt a thread right at a probe).
const DELAYS: &str = r#"
#include <sys/sdt.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
static long now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}
static void nap(long ns) {
    struct timespec t = {ns / 1000000000, ns % 1000000000};
    while (nanosleep(&t, &t)) {}
}
static void *worker(void *p) {
    long id = (long)p;
    for (int i = 0; i < 10; i++) {
        long before = now();
        DTRACE_PROBE1(lat, start, id);
        long a = now();
        nap(i % 2 ? 24000000 : 1500000);
        long b = now();
        DTRACE_PROBE1(lat, done, id);
        long after = now();
        fprintf(stderr, "d %ld %ld\n", b - a, after - before);
    }
    return 0;
}
int main(void) {
    pthread_t t[3];
    for (long i = 0; i < 3; i++)
        pthread_create(&t[i], 0, worker, (void *)(i + 100));
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], 0);
    return 0;
}
"#;

fn build(test: &str, scratch: &Scratch, source: &str) -> Option<std::path::PathBuf> {
    if !prerequisites(test) {
        return None;
    }
    let include = format!("-I{}", test_support::system_sdt_include()?.display());
    Some(scratch.compile(
        "gcc",
        "agg.c",
        source,
        "agg",
        &["-O1", "-pthread", &include],
    ))
}

fn counts(lines: &[String]) -> Vec<(serde_json::Value, u64)> {
    json_lines(lines)
        .into_iter()
        .filter(|j| j["type"] == "count")
        .map(|j| (j["keys"].clone(), j["count"].as_u64().unwrap()))
        .collect()
}

#[test]
fn counts_by_pid_by_string_and_filtered_are_exact() {
    let scratch = Scratch::new();
    let Some(program) = build(
        "counts_by_pid_by_string_and_filtered_are_exact",
        &scratch,
        FORKS,
    ) else {
        return;
    };
    let probe = format!("{}:agg:tick", program.display());
    // Three tracers at once, system-wide on this private binary.
    let by_pid = Tracer::start(&["--count", "--by", "pid", "--json", &probe]);
    let by_string = Tracer::start(&["--count", "--by", "str(arg1)", "--json", &probe]);
    let even = Tracer::start(&["--count", "--filter", "arg0 % 2 == 0", "--json", &probe]);
    let out = test_support::run(&mut std::process::Command::new(&program));
    assert!(out.status.success());
    let kids: Vec<i64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let pids = [by_pid.pid(), by_string.pid(), even.pid()];

    let (code, lines, err) = by_pid.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let mut got = counts(&lines);
    got.sort_by_key(|(_, n)| *n);
    let want: Vec<(serde_json::Value, u64)> = kids
        .iter()
        .zip([10, 20, 30])
        .map(|(pid, n)| (serde_json::json!({ "pid": pid }), n))
        .collect();
    assert_eq!(got, want, "{lines:?}");

    let (code, lines, err) = by_string.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let mut got = counts(&lines);
    got.sort_by_key(|(_, n)| *n);
    let want: Vec<(serde_json::Value, u64)> = ["alpha", "beta", "gamma"]
        .iter()
        .zip([10, 20, 30])
        .map(|(s, n)| (serde_json::json!({ "str(arg1)": s }), n))
        .collect();
    assert_eq!(got, want, "{lines:?}");

    let (code, lines, err) = even.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    // 5 + 10 + 15 even values of i.
    assert_eq!(
        counts(&lines),
        [(serde_json::json!({"probe": "agg:tick"}), 30)],
        "{lines:?}"
    );
    for pid in pids {
        assert!(events_of(pid).is_empty());
    }
}

#[test]
fn a_histogram_in_human_form_has_its_statistics() {
    let scratch = Scratch::new();
    let Some(program) = build(
        "a_histogram_in_human_form_has_its_statistics",
        &scratch,
        FORKS,
    ) else {
        return;
    };
    let probe = format!("{}:agg:tick", program.display());
    let tracer = Tracer::start(&["--hist", "arg0", "--linear", "0,30,10", &probe]);
    assert!(test_support::run(&mut std::process::Command::new(&program))
        .status
        .success());
    let (code, lines, err) = tracer.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    // i in 0..10, 0..20, 0..30: sum 45 + 190 + 435; 30 values below 10.
    assert_eq!(lines[0], "@arg0[agg:tick]:", "{lines:?}");
    assert_eq!(
        lines[1], "count 60, sum 670, min 0, max 29, mean 11, p50 9, p90 24, p99 29",
        "{lines:?}"
    );
    let bucket = |label: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("{label}: {lines:?}"))
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_string()
    };
    assert_eq!(bucket("[0, 10)"), "30");
    assert_eq!(bucket("[10, 20)"), "20");
    assert_eq!(bucket("[20, 30)"), "10");
}

/// The log2 bucket of a positive value: [2^k, 2^(k+1)).
fn log2_bucket(v: i64) -> i64 {
    1 << (63 - v.leading_zeros())
}

/// The histogram holds every sample in its bucket: each sample's true
/// value lies between the fixture's inner and outer readings, so it may be
/// in any bucket from the inner one's to the outer one's (almost always
/// one); the histogram must be a way of placing every sample so.
fn latency_check(lines: &[String], err: &[String]) {
    let truth: Vec<(i64, i64)> = err
        .iter()
        .filter_map(|l| {
            let mut w = l.strip_prefix("d ")?.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        })
        .collect();
    assert_eq!(truth.len(), 30, "{err:?}");
    let hists: Vec<serde_json::Value> = json_lines(lines)
        .into_iter()
        .filter(|j| j["type"] == "hist")
        .collect();
    assert_eq!(hists.len(), 1, "{lines:?}");
    let h = &hists[0];
    assert_eq!(h["unit"], "ns");
    assert_eq!(h["count"], 30, "{h}");
    let mut ours: std::collections::BTreeMap<i64, i64> = h["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(
                b["high"].as_i64().unwrap(),
                2 * b["low"].as_i64().unwrap() - 1
            );
            (b["low"].as_i64().unwrap(), b["count"].as_i64().unwrap())
        })
        .collect();
    // Intervals of buckets on a line: placing each sample, by earliest
    // last bucket, in its lowest bucket with room finds a placement when
    // there is one.
    let mut ranges: Vec<(i64, i64)> = truth
        .iter()
        .map(|&(inner, outer)| (log2_bucket(inner), log2_bucket(outer)))
        .collect();
    ranges.sort_by_key(|&(low, high)| (high, low));
    for (low, high) in ranges {
        let slot = ours
            .range_mut(low..=high)
            .find(|(_, n)| **n > 0)
            .map(|(_, n)| n)
            .unwrap_or_else(|| {
                panic!(
                    "no room in [{low}, {}) for a sample: {h}\n{truth:?}",
                    2 * high
                )
            });
        *slot -= 1;
    }
    // Percentiles in the bucket of the true percentile (by either reading).
    for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
        let rank = (p * 30.0_f64).ceil() as usize;
        let at = |f: fn(&(i64, i64)) -> i64| {
            let mut v: Vec<i64> = truth.iter().map(f).collect();
            v.sort();
            log2_bucket(v[rank - 1])
        };
        let (low, high) = (at(|t| t.0), at(|t| t.1));
        let got = h[name].as_i64().unwrap();
        assert!(
            (low..2 * high).contains(&got),
            "{name} {got} not in [{low}, {}): {h}",
            2 * high
        );
    }
    let inner_min = truth.iter().map(|t| t.0).min().unwrap();
    let inner_max = truth.iter().map(|t| t.0).max().unwrap();
    assert!(h["min"].as_i64().unwrap() >= inner_min, "{h}");
    assert!(h["max"].as_i64().unwrap() >= inner_max, "{h}");
}

#[test]
fn latency_samples_land_in_their_buckets() {
    let scratch = Scratch::new();
    let Some(program) = build("latency_samples_land_in_their_buckets", &scratch, DELAYS) else {
        return;
    };
    let start = format!("{}:lat:start", program.display());
    let done = format!("{}:lat:done", program.display());
    let command = program.display().to_string();
    // By thread, under -c.
    let (code, lines, err) = run_subcommand("latency", &["--json", "-c", &command, &start, &done]);
    assert_eq!(code, Some(0), "{err:?}");
    latency_check(&lines, &err);
    // With a timeline: the pairs are made in user space from records, and
    // each is a slice on its thread's track, as long as the histogram says.
    let timeline = scratch.join("lat.json");
    let (code, lines, err) = run_subcommand(
        "latency",
        &[
            "--json",
            "--timeline",
            &timeline.display().to_string(),
            "-c",
            &command,
            &start,
            &done,
        ],
    );
    assert_eq!(code, Some(0), "{err:?}");
    latency_check(&lines, &err);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&timeline).unwrap()).unwrap();
    let slices: Vec<&serde_json::Value> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .collect();
    assert_eq!(slices.len(), 30);
    let threads: std::collections::BTreeSet<i64> =
        slices.iter().map(|e| e["tid"].as_i64().unwrap()).collect();
    assert_eq!(threads.len(), 3, "a track per thread");
    let sum_us: f64 = slices.iter().map(|e| e["dur"].as_f64().unwrap()).sum();
    let hist = json_lines(&lines)
        .into_iter()
        .find(|j| j["type"] == "hist")
        .unwrap();
    let sum_ns = hist["sum"].as_f64().unwrap();
    assert!(
        (sum_us * 1000.0 - sum_ns).abs() < 30.0,
        "{sum_us} us vs {sum_ns} ns"
    );
    // By argument alone.
    let (code, lines, err) = run_subcommand(
        "latency",
        &["--json", "--match", "arg0", "-c", &command, &start, &done],
    );
    assert_eq!(code, Some(0), "{err:?}");
    latency_check(&lines, &err);
    // By argument, system-wide, with the key taken at START.
    let tracer = Tracer::start_subcommand(
        "latency",
        &["--json", "--match", "arg0", "--by", "arg0", &start, &done],
    );
    assert!(test_support::run(&mut std::process::Command::new(&program))
        .status
        .success());
    let (code, lines, err) = tracer.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let per_thread: Vec<serde_json::Value> = json_lines(&lines)
        .into_iter()
        .filter(|j| j["type"] == "hist")
        .collect();
    let mut ids: Vec<(i64, u64)> = per_thread
        .iter()
        .map(|h| {
            (
                h["keys"]["arg0"].as_i64().unwrap(),
                h["count"].as_u64().unwrap(),
            )
        })
        .collect();
    ids.sort();
    assert_eq!(ids, [(100, 10), (101, 10), (102, 10)], "{lines:?}");
}

/// `trace --timeline … --counter arg0`: every hit an instant with its
/// arguments, and arg0 a counter track of the process.
#[test]
fn a_timeline_of_hits_with_a_counter() {
    let scratch = Scratch::new();
    let Some(program) = build("a_timeline_of_hits_with_a_counter", &scratch, DELAYS) else {
        return;
    };
    let probe = format!("{}:lat:start", program.display());
    let timeline = scratch.join("hits.json");
    let command = program.display().to_string();
    let (code, _, err) = trace(&[
        "--timeline",
        &timeline.display().to_string(),
        "--counter",
        "arg0",
        "-c",
        &command,
        &probe,
    ]);
    assert_eq!(code, Some(0), "{err:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&timeline).unwrap()).unwrap();
    let events = doc["traceEvents"].as_array().unwrap();
    let instants: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "i").collect();
    assert_eq!(instants.len(), 30);
    assert!(instants.iter().all(|e| e["name"] == "lat:start"));
    let mut ids: Vec<i64> = instants
        .iter()
        .map(|e| e["args"]["arg0"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids, [100, 101, 102]);
    let counters: Vec<f64> = events
        .iter()
        .filter(|e| e["ph"] == "C")
        .map(|e| {
            let args = e["args"].as_object().unwrap();
            args.values().next().unwrap().as_f64().unwrap()
        })
        .collect();
    assert_eq!(counters.len(), 30, "{events:?}");
    assert!(counters.iter().all(|v| (100.0..=102.0).contains(v)));
    let (code, _, err) = trace(&["--counter", "arg0", &probe]);
    assert_eq!(code, Some(2), "--counter without --timeline: {err:?}");
}

/// `probe == "glob"` in a filter, keys by command and thread, `--top`,
/// and `--interval` rounds stamped in JSON.
#[test]
fn probe_globs_keys_by_thread_and_stamped_rounds() {
    let scratch = Scratch::new();
    let Some(program) = build(
        "probe_globs_keys_by_thread_and_stamped_rounds",
        &scratch,
        DELAYS,
    ) else {
        return;
    };
    let probes = format!("{}:lat:*", program.display());
    let command = program.display().to_string();
    let (code, lines, err) = trace(&[
        "--count",
        "--by",
        "comm,tid",
        "--filter",
        r#"probe == "lat:st*""#,
        "--interval",
        "0.1",
        "--top",
        "3",
        "--json",
        "-c",
        &command,
        &probes,
    ]);
    assert_eq!(code, Some(0), "{err:?}");
    let objects = json_lines(&lines);
    let stamps = objects.iter().filter(|o| o["type"] == "interval").count();
    assert!(stamps >= 1, "{lines:?}");
    assert!(objects
        .iter()
        .filter(|o| o["type"] == "interval")
        .all(|o| o["time"]
            .as_str()
            .is_some_and(|t| t.starts_with("20") && t.ends_with('Z'))));
    // Every stamp starts a round of at most 3 rows (--top 3), and the
    // final round (unstamped) ends the output: lat:start only, 10 per thread.
    let rounds: Vec<&[serde_json::Value]> = objects.split(|o| o["type"] == "interval").collect();
    assert!(
        rounds.iter().all(|r| r.len() <= 6),
        "--top 3 per round: {lines:?}"
    );
    let rows = &objects[objects.len() - 3..];
    assert!(rows.iter().all(|o| o["type"] == "count"), "{lines:?}");
    for row in rows {
        assert_eq!(row["count"], 10, "{row}");
        assert_eq!(row["keys"]["comm"], "agg", "{row}");
        assert!(row["keys"]["tid"].as_i64().unwrap() > 0);
    }
}

#[test]
fn filter_mistakes_are_named_before_attaching() {
    let scratch = Scratch::new();
    let Some(program) = build(
        "filter_mistakes_are_named_before_attaching",
        &scratch,
        FORKS,
    ) else {
        return;
    };
    let probe = format!("{}:agg:tick", program.display());
    let (code, _, err) = trace(&["--filter", "arg0 = 1", &probe]);
    assert_eq!(code, Some(2));
    let err = err.join("\n");
    assert!(err.contains("column 6") && err.contains("=="), "{err}");
    assert!(err.contains("  arg0 = 1\n       ^"), "{err}");
    let (code, _, err) = trace(&["--count", "--filter", "arg5 > 1", &probe]);
    assert_eq!(code, Some(2));
    assert!(
        err.join("\n").contains("arg5: agg:tick has 2 arguments"),
        "{err:?}"
    );
    let (code, _, err) = trace(&["--hist", "arg7", &probe]);
    assert_eq!(code, Some(2));
    assert!(err.join("\n").contains("has 2 arguments"), "{err:?}");
    let (code, _, err) = trace(&["--count", "--by", "nonsense", &probe]);
    assert_eq!(code, Some(2));
    assert!(err.join("\n").contains("--by `nonsense`"), "{err:?}");
}
