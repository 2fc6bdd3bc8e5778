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

/// A JSON string (escaped by serde_json).
fn json_str(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, text).map_err(std::io::Error::from)
}

fn json_value(out: &mut impl Write, value: &Value) -> std::io::Result<()> {
    match value {
        Value::Signed(v) => write!(out, "{v}"),
        Value::Unsigned(v) => write!(out, "{v}"),
        Value::Float(v) if v.is_finite() => write!(out, "{v}"),
        Value::Str(s) => json_str(out, s),
        Value::Float(_) | Value::Unavailable | Value::Fault => out.write_all(b"null"),
    }
}

/// One JSON object per hit, written field by field: this runs once per
/// hit, so it builds no intermediate document.
fn write_json(out: &mut impl Write, event: &Event) -> std::io::Result<()> {
    write!(
        out,
        "{{\"time_ns\":{},\"pid\":{},\"tid\":{},\"cpu\":{},\"comm\":",
        event.time_ns, event.pid, event.tid, event.cpu
    )?;
    json_str(out, event.comm)?;
    out.write_all(b",\"probe\":")?;
    json_str(out, &event.probe.label)?;
    out.write_all(b",\"path\":")?;
    json_str(out, &event.probe.path.to_string_lossy())?;
    out.write_all(b",\"args\":[")?;
    for (i, value) in event.args.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        json_value(out, value)?;
    }
    out.write_all(b"]}\n")
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
        Style::Json => write_json(out, event),
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
