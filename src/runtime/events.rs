//! `stap-sdt events`: a runtime's named events with decoded fields, one
//! line each (or JSON).

use super::Scope;
use crate::status::Failure;
use clap::Args;
use lang_bindings::{FieldValue, NamedEvent};
use std::io::Write;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(after_help = "\
EVENT globs match tapset event names (`stap-sdt tapsets -l LANG` lists them); the default \
is every event but the noisy ones (python.line, perl.op.entry, hotspot.jni.*).

Examples:
  stap-sdt events -l python -c '/usr/bin/python3.11 app.py' 'python.import.*' 'python.gc.*'
  stap-sdt events -l java -p 1234 'hotspot.class.loaded' --json
  stap-sdt events -l perl -c ./prog 'perl.file.*' 'perl.phase.change'")]
pub struct EventsArgs {
    #[command(flatten)]
    scope: Scope,

    /// Events to trace (globs on event names).
    #[arg(value_name = "EVENT")]
    events: Vec<String>,

    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// Everything but the per-line, per-op and JNI floods.
const DEFAULT: &[&str] = &[
    "python.function.*",
    "python.gc.*",
    "python.import.*",
    "python.audit",
    "python.instance.*",
    "hotspot.method.*",
    "hotspot.class.*",
    "hotspot.thread.*",
    "hotspot.gc.*",
    "hotspot.mem_pool.*",
    "hotspot.object.*",
    "hotspot.monitor.*",
    "hotspot.vm.*",
    "hotspot.compiled_method.*",
    "hotspot.vmops.*",
    "perl.sub.*",
    "perl.phase.*",
    "perl.file.*",
];

fn json_value(value: &FieldValue) -> serde_json::Value {
    match value {
        FieldValue::Str(s) => s.as_str().into(),
        FieldValue::Int(v) => (*v).into(),
        FieldValue::Uint(v) | FieldValue::Pointer(v) => (*v).into(),
        FieldValue::Bool(v) => (*v).into(),
        FieldValue::Fault | FieldValue::Unavailable => serde_json::Value::Null,
    }
}

fn write(out: &mut dyn Write, event: &NamedEvent, json: bool) -> std::io::Result<()> {
    if json {
        let fields: serde_json::Map<String, serde_json::Value> = event
            .fields
            .iter()
            .map(|(n, v)| (n.to_string(), json_value(v)))
            .collect();
        let line = serde_json::json!({
            "time_ns": event.time_ns as u64,
            "pid": event.pid,
            "tid": event.tid,
            "comm": event.comm,
            "event": &*event.name,
            "fields": fields,
        });
        return writeln!(out, "{line}");
    }
    let secs = event.time_ns / 1_000_000_000;
    write!(
        out,
        "{:02}:{:02}:{:02}.{:06} {:>7} {:>7} {}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
        (event.time_ns / 1000) % 1_000_000,
        event.pid,
        event.tid,
        event.name
    )?;
    for (name, value) in &event.fields {
        write!(out, " {name}={value}")?;
    }
    writeln!(out)
}

pub fn run(args: EventsArgs) -> Result<ExitCode, Failure> {
    let wanted: Vec<&str> = if args.events.is_empty() {
        DEFAULT.to_vec()
    } else {
        args.events.iter().map(String::as_str).collect()
    };
    let mut timeline = args.scope.open_timeline()?;
    let mut run = args.scope.open(&wanted)?;
    let code = run.each(|out, event| {
        if let Some(t) = &mut timeline {
            let fields: Vec<(&str, crate::timeline::ArgValue)> = event
                .fields
                .iter()
                .filter_map(|(name, v)| Some((*name, timeline_value(v)?)))
                .collect();
            t.instant(
                event.time_ns,
                event.pid,
                event.tid,
                &event.comm,
                &event.name,
                &fields,
            );
        }
        write(out, event, args.json)
    });
    let result = run.close(code);
    args.scope.close_timeline(timeline, result)
}

fn timeline_value(value: &FieldValue) -> Option<crate::timeline::ArgValue> {
    use crate::timeline::ArgValue;
    Some(match value {
        FieldValue::Str(s) => ArgValue::Str(s.clone()),
        FieldValue::Int(v) => ArgValue::Int(*v),
        FieldValue::Uint(v) | FieldValue::Pointer(v) => ArgValue::UInt(*v),
        FieldValue::Bool(v) => ArgValue::Int(i64::from(*v)),
        FieldValue::Fault | FieldValue::Unavailable => return None,
    })
}
