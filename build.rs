//! Build steps of the `stap-sdt` binary:
//! - the git commit it is built from, for `stap-sdt --version`;
//! - the Rust types of Perfetto's trace format for src/timeline/perfetto.rs.
//!
//! The source is Perfetto's own merged `perfetto_trace.proto` (proto/perfetto/),
//! unchanged. It defines some two thousand messages; the timeline writer emits
//! a handful. So the descriptor set that `protox` (a protobuf compiler written in
//! Rust: no `protoc` binary is needed to build stap-sdt) makes from the file is
//! pruned before `prost-build` turns it into Rust: a few large messages keep only
//! the fields listed in `KEEP_FIELDS`, and only the messages and enums reachable
//! from `Trace` through the kept fields stay. Field numbers, names and types are
//! Perfetto's, so the bytes are what Perfetto's full definitions decode (the
//! tests check that with `protoc --decode perfetto.protos.Trace`).

use prost_types::{DescriptorProto, FileDescriptorSet};
use std::collections::{BTreeSet, HashMap};
use std::process::Command;

const PROTO_DIR: &str = "proto/perfetto";
const PROTO_FILE: &str = "perfetto_trace.proto";
const ROOT: &str = ".perfetto.protos.Trace";

/// Messages cut down to the fields the writer uses; all other reachable
/// messages keep every field.
const KEEP_FIELDS: &[(&str, &[&str])] = &[
    (
        ".perfetto.protos.TracePacket",
        &[
            "timestamp",
            "timestamp_clock_id",
            "trusted_packet_sequence_id",
            "sequence_flags",
            "incremental_state_cleared",
            "first_packet_on_sequence",
            "track_event",
            "track_descriptor",
            "clock_snapshot",
            "interned_data",
        ],
    ),
    (
        ".perfetto.protos.TrackEvent",
        &[
            "type",
            "track_uuid",
            "name",
            "name_iid",
            "debug_annotations",
            "counter_value",
            "double_counter_value",
        ],
    ),
    (
        ".perfetto.protos.TrackDescriptor",
        &[
            "uuid",
            "parent_uuid",
            "name",
            "process",
            "thread",
            "counter",
        ],
    ),
    (".perfetto.protos.InternedData", &["event_names"]),
    (
        ".perfetto.protos.DebugAnnotation",
        &[
            "name",
            "bool_value",
            "uint_value",
            "int_value",
            "double_value",
            "string_value",
        ],
    ),
    (
        ".perfetto.protos.ProcessDescriptor",
        &["pid", "process_name"],
    ),
    (
        ".perfetto.protos.ThreadDescriptor",
        &["pid", "tid", "thread_name"],
    ),
    (
        ".perfetto.protos.CounterDescriptor",
        &["unit", "is_incremental"],
    ),
];

fn perfetto_types() {
    let path = format!("{PROTO_DIR}/{PROTO_FILE}");
    println!("cargo:rerun-if-changed={path}");
    println!("cargo:rerun-if-changed=build.rs");

    let mut fds: FileDescriptorSet = protox::compile([PROTO_FILE], [PROTO_DIR])
        .unwrap_or_else(|e| panic!("parsing {path}: {e}"));
    prune(&mut fds);
    prost_build::Config::new()
        .compile_fds(fds)
        .unwrap_or_else(|e| panic!("generating Rust from {path}: {e}"));
}

/// Every message by fully qualified name (".pkg.Outer.Inner"), with its
/// fields already cut to `KEEP_FIELDS`.
fn index_messages(
    prefix: &str,
    messages: &[DescriptorProto],
    keep: &HashMap<&str, &[&str]>,
    out: &mut HashMap<String, DescriptorProto>,
    enums: &mut BTreeSet<String>,
) {
    for m in messages {
        let fqn = format!("{prefix}.{}", m.name());
        let mut m = m.clone();
        if let Some(fields) = keep.get(fqn.as_str()) {
            cut_fields(&mut m, fields);
        }
        for e in &m.enum_type {
            enums.insert(format!("{fqn}.{}", e.name()));
        }
        index_messages(&fqn, &m.nested_type, keep, out, enums);
        out.insert(fqn, m);
    }
}

fn cut_fields(m: &mut DescriptorProto, keep: &[&str]) {
    for name in keep {
        assert!(
            m.field.iter().any(|f| f.name() == *name),
            "{}: no field {name} in Perfetto's proto",
            m.name()
        );
    }
    m.field.retain(|f| keep.contains(&f.name()));
    // Oneofs left without a field go; the others are renumbered.
    let used: BTreeSet<i32> = m.field.iter().filter_map(|f| f.oneof_index).collect();
    let renumber: HashMap<i32, i32> = used
        .iter()
        .enumerate()
        .map(|(new, old)| (*old, new as i32))
        .collect();
    m.oneof_decl = m
        .oneof_decl
        .iter()
        .enumerate()
        .filter(|(i, _)| used.contains(&(*i as i32)))
        .map(|(_, o)| o.clone())
        .collect();
    for f in &mut m.field {
        if let Some(i) = f.oneof_index {
            f.oneof_index = Some(renumber[&i]);
        }
    }
    m.extension.clear();
}

fn prune(fds: &mut FileDescriptorSet) {
    let keep: HashMap<&str, &[&str]> = KEEP_FIELDS.iter().copied().collect();
    assert_eq!(fds.file.len(), 1, "{PROTO_FILE} imports nothing");
    let file = &mut fds.file[0];
    let package = format!(".{}", file.package());

    let mut messages = HashMap::new();
    let mut enums = BTreeSet::new();
    index_messages(
        &package,
        &file.message_type,
        &keep,
        &mut messages,
        &mut enums,
    );
    for e in &file.enum_type {
        enums.insert(format!("{package}.{}", e.name()));
    }

    // Reachable types from the root; a nested type keeps its parents too.
    let mut reached = BTreeSet::new();
    let mut todo = vec![ROOT.to_string()];
    while let Some(name) = todo.pop() {
        if !reached.insert(name.clone()) {
            continue;
        }
        if let Some((parent, _)) = name.rsplit_once('.') {
            if messages.contains_key(parent) {
                todo.push(parent.to_string());
            }
        }
        if let Some(m) = messages.get(&name) {
            for f in &m.field {
                if let Some(t) = &f.type_name {
                    assert!(
                        messages.contains_key(t) || enums.contains(t),
                        "unresolved type {t}"
                    );
                    todo.push(t.clone());
                }
            }
        }
    }

    file.message_type = rebuild(&package, &file.message_type, &messages, &reached);
    file.enum_type
        .retain(|e| reached.contains(&format!("{package}.{}", e.name())));
    file.extension.clear();
    // Comments would point at the wrong items once fields are gone.
    file.source_code_info = None;
}

fn rebuild(
    prefix: &str,
    original: &[DescriptorProto],
    messages: &HashMap<String, DescriptorProto>,
    reached: &BTreeSet<String>,
) -> Vec<DescriptorProto> {
    let mut out = Vec::new();
    for m in original {
        let fqn = format!("{prefix}.{}", m.name());
        if !reached.contains(&fqn) {
            continue;
        }
        let mut m = messages[&fqn].clone();
        let nested = std::mem::take(&mut m.nested_type);
        m.nested_type = rebuild(&fqn, &nested, messages, reached);
        m.enum_type
            .retain(|e| reached.contains(&format!("{fqn}.{}", e.name())));
        m.extension.clear();
        out.push(m);
    }
    out
}

/// The git commit this binary was built from, for `stap-sdt --version`.
fn commit() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=STAP_SDT_COMMIT={commit}");
    // Rebuild when HEAD moves (a commit, a checkout); --git-path finds the
    // files of a worktree too.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    commit();
    perfetto_types();
}
