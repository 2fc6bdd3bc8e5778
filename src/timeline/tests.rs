//! The timeline files, read back by independent readers: serde_json for the
//! JSON, `protoc --decode perfetto.protos.Trace` with Perfetto's own
//! perfetto_trace.proto for the protobuf; the slices must nest as written.

use super::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

const PID: u32 = 4242;
const WORKER: u32 = 4243;

/// A known call tree, as a Python program's flow would give it: on the main
/// thread `<module>` calls `main`, which calls `a` (which calls `b` twice) and
/// `c` (with a plain probe hit inside); a worker thread runs `work` then a
/// complete `request` slice; a counter; one stray return and one function
/// that never returns. The nesting expected per thread is in `expected`.
fn write_call_tree(w: &mut TimelineWriter) {
    let s = |v: &str| ArgValue::Str(v.to_string());
    w.process_name(PID, "python3 app.py");
    w.begin(
        1_000,
        PID,
        PID,
        "python3",
        "<module>",
        &[("file", s("app.py"))],
    );
    w.begin(1_250, PID, PID, "python3", "main", &[]);
    w.begin(1_500, PID, PID, "python3", "a", &[("n", ArgValue::Int(-3))]);
    w.begin(
        2_001,
        PID,
        PID,
        "python3",
        "b",
        &[("x", ArgValue::UInt(u64::MAX))],
    );
    w.end(2_999, PID, PID);
    w.begin(
        3_000,
        PID,
        PID,
        "python3",
        "b",
        &[("f", ArgValue::Float(0.5))],
    );
    w.end(3_500, PID, PID);
    w.end(4_000, PID, PID);
    w.begin(5_000, PID, PID, "python3", "c", &[]);
    w.instant(
        6_000,
        PID,
        PID,
        "python3",
        "gc__start",
        &[("generation", ArgValue::Int(2)), ("quote\"d", s("a\nb\\c"))],
    );
    w.counter(6_500, PID, "heap_bytes", 1.5e6);
    w.end(8_000, PID, PID);
    w.end(9_000, PID, PID);
    w.end(9_100, PID, PID);
    w.end(9_200, PID, PID);
    // The worker: a slice, a known-duration slice, a return never entered,
    // and a call still open at the end.
    w.end(1_000, PID, WORKER);
    w.begin(1_500_123, PID, WORKER, "worker-1", "work", &[]);
    w.end(2_500_456, PID, WORKER);
    w.complete(
        3_000_000,
        400_000,
        PID,
        WORKER,
        "request",
        &[("id", ArgValue::Int(7))],
    );
    w.counter(3_100_000, PID, "heap_bytes", 2e6);
    w.begin(3_600_000, PID, WORKER, "worker-1", "forever", &[]);
}

/// The nesting per thread, as `name(children) name ...`.
fn expected() -> BTreeMap<u32, String> {
    BTreeMap::from([
        (PID, "<module>(main(a(b b) c))".to_string()),
        (WORKER, "work request forever".to_string()),
    ])
}

/// Slice events of one thread, in file order, as (begin?, name, ts ns).
type Slices = BTreeMap<u32, Vec<(bool, String, u64)>>;

/// Checks every begin has its end on the same thread, in order (the end
/// names the innermost open slice, at a time not before its begin), and
/// renders the nesting.
fn nesting(slices: &Slices) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for (tid, events) in slices {
        let mut text = String::new();
        let mut open: Vec<(String, u64, usize)> = Vec::new();
        for (is_begin, name, ts) in events {
            if *is_begin {
                match open.last_mut() {
                    Some((_, _, children)) => {
                        text.push_str(if *children == 0 { "(" } else { " " });
                        *children += 1;
                    }
                    None if !text.is_empty() => text.push(' '),
                    None => {}
                }
                text.push_str(name);
                open.push((name.clone(), *ts, 0));
            } else {
                let (begun, begin_ts, children) = open
                    .pop()
                    .unwrap_or_else(|| panic!("tid {tid}: end of {name} with nothing open"));
                if !name.is_empty() {
                    assert_eq!(&begun, name, "tid {tid}: end names another slice");
                }
                assert!(ts >= &begin_ts, "tid {tid}: {name} ends before it begins");
                if children > 0 {
                    text.push(')');
                }
            }
        }
        assert!(open.is_empty(), "tid {tid}: slices left open: {open:?}");
        out.insert(*tid, text);
    }
    out
}

fn tmp(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

/// µs → ns (exact for the small times of these tests; the text itself is
/// checked for its three decimals).
fn ts_ns(v: &serde_json::Value) -> u64 {
    (v.as_f64().unwrap() * 1000.0).round() as u64
}

#[test]
fn format_follows_the_extension() {
    let f = |p: &str| Format::from_path(Path::new(p));
    assert_eq!(f("t.json"), Ok(Format::ChromeJson));
    assert_eq!(f("dir/T.JSON"), Ok(Format::ChromeJson));
    assert_eq!(f("t.pftrace"), Ok(Format::Perfetto));
    assert_eq!(f("t.perfetto-trace"), Ok(Format::Perfetto));
    assert!(f("t.txt").unwrap_err().contains(".pftrace"));
    assert!(TimelineWriter::create("/nonexistent-dir/t.json").is_err());
}

#[test]
fn chrome_json_decodes_and_slices_nest() {
    let (_dir, path) = tmp("t.json");
    let mut w = TimelineWriter::create(&path).unwrap();
    write_call_tree(&mut w);
    let stats = w.finish().unwrap();
    assert_eq!(stats.unmatched_ends, 2, "{stats:?}");
    assert_eq!(stats.unclosed_begins, 1, "{stats:?}");
    assert_eq!(stats.processes, 1);
    assert_eq!(stats.threads, 2);
    assert_eq!(stats.bytes, std::fs::metadata(&path).unwrap().len());

    let text = std::fs::read_to_string(&path).unwrap();
    for needle in [r#""ts":1500.123,"#, r#""ts":1.000,"#, r#""dur":400.000,"#] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["otherData"]["clock"], "CLOCK_MONOTONIC");
    let events = doc["traceEvents"].as_array().unwrap();
    let mut slices = Slices::new();
    let mut names = BTreeMap::new();
    let mut counted = 0;
    for e in events {
        assert_eq!(e["pid"], PID);
        let tid = e["tid"].as_u64().unwrap() as u32;
        let name = e["name"].as_str().unwrap().to_string();
        match e["ph"].as_str().unwrap() {
            "M" => {
                names.insert((name, tid), e["args"]["name"].as_str().unwrap().to_string());
                continue;
            }
            "B" => slices
                .entry(tid)
                .or_default()
                .push((true, name, ts_ns(&e["ts"]))),
            "E" => slices
                .entry(tid)
                .or_default()
                .push((false, name, ts_ns(&e["ts"]))),
            "X" => {
                let ts = ts_ns(&e["ts"]);
                let dur = ts_ns(&e["dur"]);
                assert_eq!((ts, dur), (3_000_000, 400_000));
                assert_eq!(e["args"]["id"], 7);
                let list = slices.entry(tid).or_default();
                list.push((true, name.clone(), ts));
                list.push((false, name, ts + dur));
            }
            "i" => {
                assert_eq!(e["s"], "t");
                assert_eq!(ts_ns(&e["ts"]), 6_000);
                assert_eq!(e["args"]["generation"], 2);
                assert_eq!(e["args"]["quote\"d"], "a\nb\\c");
            }
            "C" => assert!(e["args"]["value"].as_f64().unwrap() >= 1.5e6),
            other => panic!("unexpected ph {other}"),
        }
        counted += 1;
    }
    assert_eq!(counted, stats.events);
    assert_eq!(nesting(&slices), expected());
    // Timestamps as given, sub-µs kept.
    let work = &slices[&WORKER][0];
    assert_eq!((work.1.as_str(), work.2), ("work", 1_500_123));
    // The open slice ends at the timeline's last timestamp.
    assert_eq!(slices[&WORKER].last().unwrap().2, 3_600_000);
    assert_eq!(names[&("process_name".to_string(), PID)], "python3 app.py");
    assert_eq!(names[&("thread_name".to_string(), PID)], "python3");
    assert_eq!(names[&("thread_name".to_string(), WORKER)], "worker-1");
    // Arguments keep their types.
    let b = events.iter().find(|e| e["name"] == "b").unwrap();
    assert_eq!(b["args"]["x"], u64::MAX);
    let a = events.iter().find(|e| e["name"] == "a").unwrap();
    assert_eq!(a["args"]["n"], -3);
}

/// Perfetto's perfetto_trace.proto, committed under proto/perfetto.
fn proto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/perfetto")
}

/// `protoc --decode`'s text format as a tree: (field, scalar or children).
#[derive(Debug)]
enum Text {
    Scalar(String),
    Message(Vec<(String, Text)>),
}

impl Text {
    fn fields<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Text> + 'a {
        let list: &[(String, Text)] = match self {
            Text::Message(list) => list,
            Text::Scalar(_) => &[],
        };
        list.iter().filter(move |(n, _)| n == name).map(|(_, v)| v)
    }
    fn get(&self, name: &str) -> Option<&Text> {
        match self {
            Text::Message(list) => list.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            Text::Scalar(_) => None,
        }
    }
    fn scalar(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Text::Scalar(s) => Some(s),
            Text::Message(_) => None,
        }
    }
    fn num(&self, name: &str) -> Option<u64> {
        self.scalar(name).map(|s| s.parse().unwrap())
    }
    fn string(&self, name: &str) -> Option<String> {
        let s = self.scalar(name)?;
        Some(s.trim_matches('"').to_string())
    }
}

fn parse_text(out: &str) -> Text {
    let mut stack: Vec<(String, Vec<(String, Text)>)> = vec![(String::new(), Vec::new())];
    for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line == "}" {
            let (name, fields) = stack.pop().unwrap();
            stack
                .last_mut()
                .unwrap()
                .1
                .push((name, Text::Message(fields)));
        } else if let Some(name) = line.strip_suffix(" {") {
            stack.push((name.to_string(), Vec::new()));
        } else {
            let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("{line}"));
            stack
                .last_mut()
                .unwrap()
                .1
                .push((name.to_string(), Text::Scalar(value.to_string())));
        }
    }
    assert_eq!(stack.len(), 1);
    Text::Message(stack.pop().unwrap().1)
}

/// Decodes a Perfetto file with protoc; None (the test skips) without protoc.
fn protoc_decode(test: &str, path: &Path) -> Option<Text> {
    let protoc = test_support::require(test, "protoc")?;
    let out = Command::new(protoc)
        .arg("--decode=perfetto.protos.Trace")
        .arg(format!("--proto_path={}", proto_dir().display()))
        .arg("perfetto_trace.proto")
        .stdin(std::fs::File::open(path).unwrap())
        .output()
        .expect("running protoc");
    assert!(
        out.status.success(),
        "protoc --decode failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(parse_text(&String::from_utf8(out.stdout).unwrap()))
}

#[test]
fn perfetto_decodes_with_perfettos_proto_and_slices_nest() {
    let (_dir, path) = tmp("t.pftrace");
    let mut w = TimelineWriter::create(&path).unwrap();
    write_call_tree(&mut w);
    let stats = w.finish().unwrap();
    assert_eq!((stats.unmatched_ends, stats.unclosed_begins), (2, 1));
    let Some(trace) = protoc_decode("perfetto_decodes", &path) else {
        return;
    };

    let mut iids = BTreeMap::new();
    let mut tracks = BTreeMap::new(); // uuid → (pid, tid or 0, name)
    let mut counter_tracks = BTreeMap::new();
    let mut slices = Slices::new();
    let mut counters = Vec::new();
    let mut instants = Vec::new();
    let mut events = 0;
    for (i, p) in trace.fields("packet").enumerate() {
        assert_eq!(p.num("trusted_packet_sequence_id"), Some(1));
        if i == 0 {
            // The clock snapshot opens the sequence.
            let snap = p
                .get("clock_snapshot")
                .expect("first packet: clock snapshot");
            let ids: Vec<&str> = snap
                .fields("clocks")
                .map(|c| c.scalar("clock_id").unwrap())
                .collect();
            assert_eq!(ids, ["6", "3", "1"]);
            assert_eq!(p.scalar("incremental_state_cleared"), Some("true"));
            continue;
        }
        if let Some(interned) = p.get("interned_data") {
            for n in interned.fields("event_names") {
                iids.insert(n.num("iid").unwrap(), n.string("name").unwrap());
            }
        }
        if let Some(d) = p.get("track_descriptor") {
            assert!(p.num("timestamp").is_some(), "descriptors are timestamped");
            let uuid = d.num("uuid").unwrap();
            assert!(uuid < 1 << 63);
            if let Some(proc) = d.get("process") {
                tracks.insert(
                    uuid,
                    (proc.num("pid").unwrap(), 0, proc.string("process_name")),
                );
            } else if let Some(t) = d.get("thread") {
                // Grouped under its process by pid; the process came first.
                let pid = t.num("pid").unwrap();
                assert!(tracks.values().any(|(p, tid, _)| (*p, *tid) == (pid, 0)));
                tracks.insert(
                    uuid,
                    (
                        t.num("pid").unwrap(),
                        t.num("tid").unwrap(),
                        t.string("thread_name"),
                    ),
                );
            } else {
                assert!(d.get("counter").is_some());
                let parent = d.num("parent_uuid").unwrap();
                assert_eq!(tracks[&parent].0, PID as u64, "counter under its process");
                counter_tracks.insert(uuid, d.string("name").unwrap());
            }
            continue;
        }
        let e = p.get("track_event").expect("a track event");
        events += 1;
        assert_eq!(p.scalar("timestamp_clock_id"), Some("3"), "CLOCK_MONOTONIC");
        let ts = p.num("timestamp").unwrap();
        let uuid = e.num("track_uuid").unwrap();
        let name = e
            .num("name_iid")
            .map(|iid| iids[&iid].clone())
            .unwrap_or_default();
        match e.scalar("type").unwrap() {
            "TYPE_SLICE_BEGIN" | "TYPE_SLICE_END" => {
                let (pid, tid, _) = &tracks[&uuid];
                assert_eq!(*pid, PID as u64);
                let begin = e.scalar("type") == Some("TYPE_SLICE_BEGIN");
                slices
                    .entry(*tid as u32)
                    .or_default()
                    .push((begin, name, ts));
            }
            "TYPE_INSTANT" => instants.push((name, ts, e)),
            "TYPE_COUNTER" => counters.push((
                counter_tracks[&uuid].clone(),
                ts,
                e.scalar("double_counter_value").unwrap().to_string(),
            )),
            other => panic!("type {other}"),
        }
    }
    // A complete slice is a begin and an end in the protobuf.
    assert_eq!(events, stats.events + 1);
    assert_eq!(nesting(&slices), expected());
    assert_eq!(slices[&WORKER][0].2, 1_500_123);
    assert_eq!(slices[&WORKER].last().unwrap().2, 3_600_000);
    let mut names: Vec<_> = tracks
        .values()
        .map(|(_, tid, n)| (*tid, n.clone().unwrap()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            (0, "python3 app.py".into()),
            (PID as u64, "python3".into()),
            (WORKER as u64, "worker-1".into())
        ]
    );
    assert_eq!(
        counters,
        [
            ("heap_bytes".to_string(), 6_500, "1500000".to_string()),
            ("heap_bytes".into(), 3_100_000, "2000000".into())
        ]
    );
    // The instant's debug annotations.
    let (name, ts, e) = &instants[0];
    assert_eq!((name.as_str(), *ts), ("gc__start", 6_000));
    let ann: Vec<_> = e.fields("debug_annotations").collect();
    assert_eq!(ann[0].string("name").unwrap(), "generation");
    assert_eq!(ann[0].scalar("int_value"), Some("2"));
    assert_eq!(ann[1].scalar("string_value"), Some(r#""a\nb\\c""#));
}

#[test]
fn other_clocks_and_unnamed_threads() {
    let (_dir, path) = tmp("t.perfetto-trace");
    let mut w = TimelineWriter::create_with_clock(&path, Clock::Realtime).unwrap();
    w.complete(1_700_000_000_000_000_000, 5, 7, 8, "x", &[]);
    w.instant(1_700_000_000_000_000_001, 7, 8, "", "hit", &[]);
    let stats = w.finish().unwrap();
    assert_eq!(stats.events, 2);
    let Some(trace) = protoc_decode("other_clocks", &path) else {
        return;
    };
    let packets: Vec<_> = trace.fields("packet").collect();
    // The process (named after nothing yet) and the thread without a name.
    let thread = packets
        .iter()
        .find_map(|p| p.get("track_descriptor")?.get("thread"))
        .unwrap();
    assert_eq!(thread.string("thread_name"), None);
    let last = packets.last().unwrap();
    assert_eq!(last.scalar("timestamp_clock_id"), Some("1"));
    assert_eq!(last.num("timestamp"), Some(1_700_000_000_000_000_001));

    let (_dir2, path) = tmp("t.json");
    let mut w = TimelineWriter::create_with_clock(&path, Clock::Boottime).unwrap();
    w.counter(1, 7, "nan", f64::NAN);
    drop(w); // finished by Drop
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(doc["otherData"]["clock"], "CLOCK_BOOTTIME");
    assert_eq!(doc["traceEvents"][0]["args"]["value"], "NaN");
}

#[test]
fn the_main_thread_names_its_process() {
    let (_dir, path) = tmp("t.json");
    let mut w = TimelineWriter::create(&path).unwrap();
    w.instant(10, 5, 6, "helper", "a", &[]);
    w.instant(20, 5, 5, "server", "b", &[]);
    w.instant(30, 5, 5, "server", "c", &[]);
    w.finish().unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let meta: Vec<String> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "M")
        .map(|e| format!("{} {} {}", e["name"], e["tid"], e["args"]["name"]))
        .collect();
    assert_eq!(
        meta,
        [
            r#""thread_name" 6 "helper""#,
            r#""thread_name" 5 "server""#,
            r#""process_name" 5 "server""#
        ]
    );
}

#[test]
fn write_errors_come_back_from_finish() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["full.json", "full.pftrace"] {
        let path = dir.path().join(name);
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let mut w = TimelineWriter::create(&path).unwrap();
        // More than the 256 KiB buffer, so writing fails before finish.
        for i in 0..20_000u64 {
            w.begin(i, 1, 1, "t", "a_function_with_a_long_name", &[]);
            w.end(i + 1, 1, 1);
        }
        assert!(w.error().unwrap().contains("No space left"), "{name}");
        let err = w.finish().unwrap_err();
        assert!(err.contains("No space left"), "{name}: {err}");
    }
}
