//! Pictures from real runs: `flow -l python --timeline` as Chrome JSON and
//! as Perfetto protobuf (decoded by `protoc` with Perfetto's own message
//! definitions), slices nested exactly as the script's call tree; `calls
//! -L --folded/--flamegraph` naming its functions.

mod lang_support;

use lang_support::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use test_support::Scratch;

const PYTHON: &str = "/usr/bin/python3.11";

/// <module> → top → mid ×2 → leaf ×2 each.
const TREE: &str = "\
def leaf(x):
    return x + 1
def mid(n):
    return leaf(n) + leaf(n + 1)
def top():
    return mid(1) + mid(2)
top()
";

/// The script's calls as (depth below <module>, function), in order.
fn expected() -> Vec<(usize, String)> {
    let mut v = vec![(0, "<module>".to_string()), (1, "top".to_string())];
    for _ in 0..2 {
        v.push((2, "mid".into()));
        v.push((3, "leaf".into()));
        v.push((3, "leaf".into()));
    }
    v
}

fn python(test: &str) -> bool {
    if !Path::new(PYTHON).exists() {
        test_support::skip(
            test,
            "python3.11 is not installed (.ci/apt-packages lists it)",
        );
        return false;
    }
    prerequisites(test)
}

/// One event of a thread's slices: a begin with its name, or an end.
enum Slice {
    Begin(String),
    End,
}

/// The begins of the script's functions, with their depth below its
/// `<module>`; checks every thread's slices close in order.
fn tree_of(threads: Vec<Vec<Slice>>, script: &str) -> Vec<(usize, String)> {
    let mut calls = Vec::new();
    for slices in threads {
        let mut open: Vec<String> = Vec::new();
        let mut base = None;
        for s in slices {
            match s {
                Slice::Begin(name) => {
                    if let Some(f) = name.strip_prefix(&format!("{script}:")) {
                        let depth = open.len();
                        let base = *base.get_or_insert(depth);
                        calls.push((depth - base, f.to_string()));
                    }
                    open.push(name);
                }
                Slice::End => {
                    assert!(open.pop().is_some(), "an end without a begin");
                }
            }
        }
        assert!(open.is_empty(), "slices left open: {open:?}");
    }
    calls
}

fn chrome_json(path: &Path, script: &str) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).expect("the timeline is JSON");
    let events = doc["traceEvents"]
        .as_array()
        .or(doc.as_array())
        .unwrap()
        .clone();
    let mut threads: std::collections::BTreeMap<(i64, i64), Vec<Slice>> = Default::default();
    let mut last_ts = std::collections::HashMap::new();
    for e in &events {
        let ph = e["ph"].as_str().unwrap_or("");
        if ph != "B" && ph != "E" {
            continue;
        }
        let key = (e["pid"].as_i64().unwrap(), e["tid"].as_i64().unwrap());
        let ts = e["ts"].as_f64().unwrap();
        let last = last_ts.entry(key).or_insert(ts);
        assert!(ts >= *last, "time goes back on a thread: {e}");
        *last = ts;
        threads.entry(key).or_default().push(if ph == "B" {
            Slice::Begin(e["name"].as_str().unwrap().to_string())
        } else {
            Slice::End
        });
    }
    tree_of(threads.into_values().collect(), script)
}

/// The slices of a Perfetto file, read from `protoc --decode`'s text: the
/// interned event names, and each track event's type, name and track.
fn perfetto(path: &Path, script: &str) -> Option<Vec<(usize, String)>> {
    let protoc = test_support::require("timelines_nest_as_the_call_tree", "protoc")?;
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/perfetto");
    let out = Command::new(protoc)
        .arg("--decode=perfetto.protos.Trace")
        .arg(format!("--proto_path={}", proto.display()))
        .arg("perfetto_trace.proto")
        .stdin(std::fs::File::open(path).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut names: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
    // (track, begin with its name id, or end): names are resolved at the
    // end (a packet's interned names come after its event in the text).
    let mut events: Vec<(u64, Option<u64>)> = Vec::new();
    // (enclosing block names), and the fields of the block being read.
    let mut blocks: Vec<String> = Vec::new();
    let (mut iid, mut name, mut kind, mut track, mut name_iid) = (None, None, None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(block) = line.strip_suffix(" {") {
            blocks.push(block.to_string());
            continue;
        }
        if line == "}" {
            match blocks.pop().as_deref() {
                Some("event_names") => {
                    names.insert(iid.take().unwrap(), name.take().unwrap());
                }
                Some("track_event") => {
                    match kind.take().as_deref() {
                        Some("TYPE_SLICE_BEGIN") => {
                            events.push((track.take().unwrap(), Some(name_iid.unwrap())))
                        }
                        Some("TYPE_SLICE_END") => events.push((track.take().unwrap(), None)),
                        _ => {}
                    }
                    name_iid = None;
                }
                _ => {}
            }
            continue;
        }
        let Some((field, value)) = line.split_once(": ") else {
            continue;
        };
        match (blocks.last().map(String::as_str), field) {
            (Some("event_names"), "iid") => iid = value.parse::<u64>().ok(),
            (Some("event_names"), "name") => name = Some(value.trim_matches('"').to_string()),
            (Some("track_event"), "type") => kind = Some(value.to_string()),
            (Some("track_event"), "track_uuid") => track = value.parse().ok(),
            (Some("track_event"), "name_iid") => name_iid = value.parse::<u64>().ok(),
            _ => {}
        }
    }
    let mut threads: std::collections::BTreeMap<u64, Vec<Slice>> = Default::default();
    for (track, begin) in events {
        threads.entry(track).or_default().push(match begin {
            Some(iid) => Slice::Begin(names[&iid].clone()),
            None => Slice::End,
        });
    }
    Some(tree_of(threads.into_values().collect(), script))
}

#[test]
fn timelines_nest_as_the_call_tree() {
    let test = "timelines_nest_as_the_call_tree";
    if !python(test) {
        return;
    }
    let scratch = Scratch::new();
    let script = scratch.join("tree.py");
    std::fs::write(&script, TREE).unwrap();
    let command = format!("{PYTHON} {}", script.display());
    let script = script.display().to_string();
    for file in ["t.json", "t.pftrace"] {
        let path = scratch.join(file);
        let out = stap_sdt(
            &[
                "flow",
                "-l",
                "python",
                "-c",
                &command,
                "--timeline",
                &path.display().to_string(),
            ],
            Duration::from_secs(60),
        );
        assert_eq!(out.code, Some(0), "{out:#?}");
        assert!(out.stderr.contains("events of"), "{}", out.stderr);
        let tree = if file.ends_with(".json") {
            chrome_json(&path, &script)
        } else {
            match perfetto(&path, &script) {
                Some(t) => t,
                None => continue,
            }
        };
        assert_eq!(tree, expected(), "{file}");
    }
}

#[test]
fn call_stacks_become_a_flame_graph() {
    let test = "call_stacks_become_a_flame_graph";
    if !python(test) {
        return;
    }
    let scratch = Scratch::new();
    let script = scratch.join("tree.py");
    // The tree many times over: wide enough beside the interpreter's
    // start-up for the SVG to draw every frame (it leaves out frames
    // narrower than a pixel).
    std::fs::write(
        &script,
        TREE.replace("top()\n", "for _ in range(3000):\n    top()\n"),
    )
    .unwrap();
    let command = format!("{PYTHON} {}", script.display());
    let folded = scratch.join("calls.folded");
    let svg = scratch.join("calls.svg");
    let out = stap_sdt(
        &[
            "calls",
            "-l",
            "python",
            "-L",
            "-c",
            &command,
            "--folded",
            &folded.display().to_string(),
            "--flamegraph",
            &svg.display().to_string(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{out:#?}");
    let s = script.display().to_string();
    let text = std::fs::read_to_string(&folded).unwrap();
    // <module>;top;mid;leaf with some self time: both leaf calls of both mids.
    let leaf = text
        .lines()
        .find(|l| l.contains(&format!("{s}:<module>;{s}:top;{s}:mid;{s}:leaf ")))
        .unwrap_or_else(|| panic!("{text}"));
    let ns: u64 = leaf.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(ns > 0, "{leaf}");
    let drawing = std::fs::read_to_string(&svg).unwrap();
    assert!(
        drawing.starts_with("<?xml") && drawing.contains("<svg"),
        "not an SVG"
    );
    for f in ["leaf", "mid", "top"] {
        assert!(drawing.contains(&format!("tree.py:{f}")), "{f} not drawn");
    }
}
