//! One line per hit: human, `--json`, or a `--format` template.

use super::printf::Template;
use std::io::Write;
use uprobe_engine::{Event, Value};

pub enum Style {
    Human,
    Json,
    Template(Template),
}

/// `HH:MM:SS.micro` (UTC) of a wall-clock time in nanoseconds.
fn clock(time_ns: u128) -> String {
    let micros = time_ns / 1000;
    let secs = micros / 1_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
        micros % 1_000_000
    )
}

fn json_value(value: &Value) -> serde_json::Value {
    match value {
        Value::Signed(v) => (*v).into(),
        Value::Unsigned(v) => (*v).into(),
        Value::Float(v) => (*v).into(),
        Value::Str(s) => s.as_str().into(),
        Value::Unavailable | Value::Fault => serde_json::Value::Null,
    }
}

pub fn write_event(out: &mut impl Write, style: &Style, event: &Event) -> std::io::Result<()> {
    match style {
        Style::Human => {
            write!(
                out,
                "{} {:>7} {:>7} {:<15} {}",
                clock(event.time_ns),
                event.pid,
                event.tid,
                event.comm,
                event.probe.label
            )?;
            for (i, value) in event.args.iter().enumerate() {
                write!(out, " arg{i}={value}")?;
            }
            writeln!(out)
        }
        Style::Json => {
            let line = serde_json::json!({
                "time_ns": event.time_ns as u64,
                "pid": event.pid,
                "tid": event.tid,
                "cpu": event.cpu,
                "comm": event.comm,
                "probe": event.probe.label,
                "path": event.probe.path,
                "args": event.args.iter().map(json_value).collect::<Vec<_>>(),
            });
            writeln!(out, "{line}")
        }
        Style::Template(t) => writeln!(out, "{}", t.render(&event.args)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_utc_time_of_day() {
        // 1970-01-02 01:02:03.000004
        let ns = ((86_400 + 3_723) * 1_000_000 + 4) * 1000;
        assert_eq!(clock(ns), "01:02:03.000004");
    }
}
