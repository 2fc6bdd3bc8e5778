//! One line per hit: human, `--json`, or a `--format` template.

use super::printf::Template;
use std::io::Write;
use uprobe_engine::{Event, Value};

pub enum Style {
    Human,
    Json(JsonProbes),
    Template(Template),
}

/// Per probe, the constant middle of its JSON lines
/// (`,"probe":"…","path":"…","args":[`), escaped once rather than per hit.
#[derive(Default)]
pub struct JsonProbes {
    fragments: Vec<Option<Vec<u8>>>,
}

impl JsonProbes {
    fn fragment(&mut self, probe: &uprobe_engine::ProbeInfo) -> &[u8] {
        if self.fragments.len() <= probe.index {
            self.fragments.resize(probe.index + 1, None);
        }
        self.fragments[probe.index].get_or_insert_with(|| {
            let mut text = b",\"probe\":".to_vec();
            // Writing to a Vec cannot fail.
            let _ = json_str(&mut text, &probe.label);
            text.extend_from_slice(b",\"path\":");
            let _ = json_str(&mut text, &probe.path.to_string_lossy());
            text.extend_from_slice(b",\"args\":[");
            text
        })
    }
}

/// An integer in decimal, without `fmt`'s machinery (this runs for every
/// number of every hit).
fn int(out: &mut impl Write, value: impl itoa::Integer) -> std::io::Result<()> {
    out.write_all(itoa::Buffer::new().format(value).as_bytes())
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

/// `YYYY-MM-DDTHH:MM:SS.micro Z` (UTC) of a wall-clock time in nanoseconds.
pub fn rfc3339(time_ns: u128) -> String {
    let secs = (time_ns / 1_000_000_000) as i64;
    let days = secs.div_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{}Z", clock(time_ns))
}

/// A JSON string (escaped by serde_json).
fn json_str(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, text).map_err(std::io::Error::from)
}

fn json_value(out: &mut impl Write, value: &Value) -> std::io::Result<()> {
    match value {
        Value::Signed(v) => int(out, *v),
        Value::Unsigned(v) => int(out, *v),
        Value::Float(v) if v.is_finite() => write!(out, "{v}"),
        Value::Str(s) => json_str(out, s),
        Value::Float(_) | Value::Unavailable | Value::Fault => out.write_all(b"null"),
    }
}

/// One JSON object per hit, written field by field: this runs once per
/// hit, so it builds no intermediate document.
fn write_json(
    out: &mut impl Write,
    probes: &mut JsonProbes,
    event: &Event,
    stack: Option<&[String]>,
) -> std::io::Result<()> {
    out.write_all(b"{\"time_ns\":")?;
    int(out, event.time_ns)?;
    out.write_all(b",\"pid\":")?;
    int(out, event.pid)?;
    out.write_all(b",\"tid\":")?;
    int(out, event.tid)?;
    out.write_all(b",\"cpu\":")?;
    int(out, event.cpu)?;
    out.write_all(b",\"comm\":")?;
    json_str(out, event.comm)?;
    out.write_all(probes.fragment(event.probe))?;
    for (i, value) in event.args.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        json_value(out, value)?;
    }
    out.write_all(b"]")?;
    if let Some(frames) = stack {
        out.write_all(b",\"ustack\":")?;
        serde_json::to_writer(&mut *out, frames).map_err(std::io::Error::from)?;
    }
    out.write_all(b"}\n")
}

/// Frames under the line of their hit.
fn write_frames(out: &mut impl Write, stack: Option<&[String]>) -> std::io::Result<()> {
    for frame in stack.unwrap_or_default() {
        writeln!(out, "        {frame}")?;
    }
    Ok(())
}

/// One hit; `stack`: its user stack's frames (with `--stack`).
pub fn write_event(
    out: &mut impl Write,
    style: &mut Style,
    event: &Event,
    stack: Option<&[String]>,
) -> std::io::Result<()> {
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
            writeln!(out)?;
            write_frames(out, stack)
        }
        Style::Json(probes) => write_json(out, probes, event, stack),
        Style::Template(t) => {
            let line = t.render(&event.args);
            out.write_all(line.as_bytes())?;
            // A template's own trailing newline ends the line (printf's habit).
            if !line.ends_with('\n') {
                out.write_all(b"\n")?;
            }
            write_frames(out, stack)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        // date -u -d @1796135201.5
        assert_eq!(
            rfc3339(1_796_135_201_500_000_000),
            "2026-12-01T14:26:41.500000Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        // 1970-01-02 01:02:03.000004
        let ns = ((86_400 + 3_723) * 1_000_000 + 4) * 1000;
        assert_eq!(clock(ns), "01:02:03.000004");
    }
}
