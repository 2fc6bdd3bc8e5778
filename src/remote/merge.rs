//! What hosts send, put together at home: records in time order, blocks
//! per host, and aggregates merged key by key.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::{Duration, Instant};
use uprobe_engine::{AggRow, AggSpec, AggValue, Buckets, KeyPart, KeyValue, Stats};

/// How long a record waits for earlier records of slower hosts. A host
/// prints every 100 ms; the rest is the network's jitter.
pub const HOLD: Duration = Duration::from_millis(300);

/// Records of all hosts in time order, as they arrive.
pub struct Records {
    hosts: Vec<String>,
    json: bool,
    width: usize,
    /// (time, arrival sequence) → (arrival, text with its host).
    held: BTreeMap<(u128, u64), (Instant, String)>,
    seq: u64,
    /// Per host: the time of its latest record (its stream is in time
    /// order), and where that record is held (for its stack lines).
    latest: Vec<Option<u128>>,
    last_key: Vec<Option<(u128, u64)>>,
    ended: Vec<bool>,
}

/// A record's time: `time_ns` of a JSON line, or the `HH:MM:SS.micro` a
/// human line starts with (nanoseconds of the day; every host's lines have
/// the same form).
pub fn record_time(line: &str) -> Option<u128> {
    if line.starts_with('{') {
        let at = line.find("\"time_ns\":")? + 10;
        let digits: String = line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        return digits.parse().ok();
    }
    let b = line.as_bytes();
    let shape = b.len() >= 15
        && b[2] == b':'
        && b[5] == b':'
        && b[8] == b'.'
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit())
        && b[9..15].iter().all(u8::is_ascii_digit);
    if !shape {
        return None;
    }
    let n = |r: std::ops::Range<usize>| line[r].parse::<u128>().ok();
    let micros = ((n(0..2)? * 60 + n(3..5)?) * 60 + n(6..8)?) * 1_000_000 + n(9..15)?;
    Some(micros * 1000)
}

/// The line with its host: a `"host"` member first in a JSON object, else
/// the host's name as the first column.
pub fn tag(line: &str, host: &str, json: bool, width: usize) -> String {
    match line.strip_prefix('{') {
        Some(rest) if json || line.starts_with("{\"") => {
            let name = serde_json::to_string(host).unwrap_or_default();
            let sep = if rest.trim_start().starts_with('}') {
                ""
            } else {
                ","
            };
            format!("{{\"host\":{name}{sep}{rest}")
        }
        _ => format!("{host:<width$} {line}"),
    }
}

impl Records {
    pub fn new(hosts: Vec<String>, json: bool) -> Records {
        let n = hosts.len();
        Records {
            width: hosts.iter().map(|h| h.chars().count()).max().unwrap_or(0),
            hosts,
            json,
            held: BTreeMap::new(),
            seq: 0,
            latest: vec![None; n],
            last_key: vec![None; n],
            ended: vec![false; n],
        }
    }

    pub fn line(&mut self, host: usize, line: &str, out: &mut impl Write) -> std::io::Result<()> {
        let text = if self.json || record_time(line).is_some() {
            tag(line, &self.hosts[host], self.json, self.width)
        } else {
            // A stack frame under a record, or a --format line: as it is,
            // indented past the host column.
            format!("{:w$} {line}", "", w = self.width)
        };
        match record_time(line) {
            Some(t) => {
                self.seq += 1;
                let key = (t, self.seq);
                self.held.insert(key, (Instant::now(), text));
                self.latest[host] = Some(t);
                self.last_key[host] = Some(key);
                Ok(())
            }
            None => match self.last_key[host].and_then(|k| self.held.get_mut(&k)) {
                Some((_, held)) => {
                    held.push('\n');
                    held.push_str(&text);
                    Ok(())
                }
                None => writeln!(out, "{text}"),
            },
        }
    }

    pub fn end(&mut self, host: usize) {
        self.ended[host] = true;
    }

    /// Print what can no longer be preceded: records no later than every
    /// running host's latest, and anything held longer than [`HOLD`] (with
    /// what comes before it).
    pub fn release(&mut self, out: &mut impl Write, all: bool) -> std::io::Result<()> {
        let now = Instant::now();
        let mark = (0..self.hosts.len())
            .filter(|&h| !self.ended[h])
            .map(|h| self.latest[h].unwrap_or(0))
            .min()
            .unwrap_or(u128::MAX);
        let overdue = self
            .held
            .iter()
            .filter(|(_, (at, _))| now.duration_since(*at) >= HOLD)
            .map(|(k, _)| k.0)
            .max()
            .unwrap_or(0);
        let limit = if all { u128::MAX } else { mark.max(overdue) };
        while let Some(entry) = self.held.first_entry() {
            if entry.key().0 > limit {
                break;
            }
            let (_, text) = entry.remove();
            writeln!(out, "{text}")?;
        }
        Ok(())
    }
}

/// Each host's output as one block, printed when the host is done.
pub struct Blocks {
    hosts: Vec<String>,
    lines: Vec<Vec<String>>,
}

impl Blocks {
    pub fn new(hosts: Vec<String>) -> Blocks {
        Blocks {
            lines: vec![Vec::new(); hosts.len()],
            hosts,
        }
    }

    pub fn line(&mut self, host: usize, line: String) {
        self.lines[host].push(line);
    }

    pub fn end(&mut self, host: usize, out: &mut impl Write) -> std::io::Result<()> {
        let lines = std::mem::take(&mut self.lines[host]);
        if lines.is_empty() {
            return Ok(());
        }
        let json = lines.iter().all(|l| l.starts_with('{'));
        if !json {
            writeln!(out, "== {} ==", self.hosts[host])?;
        }
        for line in lines {
            if json {
                writeln!(out, "{}", tag(&line, &self.hosts[host], true, 0))?;
            } else {
                writeln!(out, "{line}")?;
            }
        }
        out.flush()
    }
}

/// One row as a host sent it.
#[derive(Clone, Debug)]
struct HostRow {
    keys: serde_json::Map<String, serde_json::Value>,
    stats: Stats,
}

/// `--count`, `--hist`, `latency` of every host, merged.
pub struct Aggregates {
    hosts: Vec<String>,
    /// Home's keys: `None` is the host.
    parts: Vec<Option<KeyPart>>,
    pub spec: AggSpec,
    pub value_name: String,
    /// Per host: its latest complete round, and the round being received.
    current: Vec<Vec<HostRow>>,
    pending: Vec<Vec<HostRow>>,
    /// Whether the host sent a round since the last merge.
    pub changed: bool,
}

impl Aggregates {
    /// `by` as the user gave it (`host` included); `value` and `buckets` as
    /// the hosts aggregate.
    pub fn new(
        hosts: Vec<String>,
        by: &[String],
        value: AggValue,
        buckets: Buckets,
        value_name: String,
    ) -> Result<Aggregates, String> {
        let mut parts = Vec::new();
        for name in by {
            if name == "host" {
                parts.push(None);
            } else {
                parts.push(Some(
                    KeyPart::parse(name).ok_or_else(|| format!("--by `{name}`: not a key"))?,
                ));
            }
        }
        if parts.is_empty() {
            parts.push(Some(KeyPart::Probe));
        }
        let n = hosts.len();
        Ok(Aggregates {
            spec: AggSpec {
                keys: parts.iter().flatten().copied().collect(),
                value,
                buckets,
                key_string_bytes: 128,
            },
            parts,
            hosts,
            value_name,
            current: vec![Vec::new(); n],
            pending: vec![Vec::new(); n],
            changed: false,
        })
    }

    /// The key names, `host` where the user put it.
    pub fn names(&self) -> Vec<String> {
        self.parts
            .iter()
            .map(|p| p.map_or("host".to_string(), |k| k.name()))
            .collect()
    }

    /// A JSON line of a host: a row, or the stamp that starts a round.
    pub fn line(&mut self, host: usize, line: &str) -> Result<(), String> {
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("unreadable result line ({e}): {line}"))?;
        match value["type"].as_str() {
            Some("interval") => self.round_done(host),
            Some("count") | Some("hist") => {
                let stats = self.stats(&value)?;
                let keys = value["keys"].as_object().cloned().unwrap_or_default();
                // Each key once per round: a key seen again starts the next
                // (the final print follows the last round without a stamp).
                if self.pending[host].iter().any(|r| r.keys == keys) {
                    self.round_done(host);
                }
                self.pending[host].push(HostRow { keys, stats });
            }
            _ => return Err(format!("unexpected result line: {line}")),
        }
        Ok(())
    }

    /// The host's rows so far are a whole round (its final print ends with
    /// its output).
    pub fn round_done(&mut self, host: usize) {
        if !self.pending[host].is_empty() {
            self.current[host] = std::mem::take(&mut self.pending[host]);
            self.changed = true;
        }
    }

    fn stats(&self, row: &serde_json::Value) -> Result<Stats, String> {
        let count = row["count"].as_u64().unwrap_or(0);
        if row["type"] == "count" {
            return Ok(Stats {
                count,
                ..Stats::default()
            });
        }
        let buckets = &self.spec.buckets;
        let mut stats = Stats {
            count,
            sum: i128::from(row["sum"].as_i64().unwrap_or(0)),
            min: row["min"].as_i64().unwrap_or(0),
            max: row["max"].as_i64().unwrap_or(0),
            buckets: vec![0; buckets.count()],
        };
        for b in row["buckets"].as_array().into_iter().flatten() {
            let low = i128::from(b["low"].as_i64().unwrap_or(0));
            let index = (0..buckets.count())
                .find(|&i| buckets.range(i).0 == low)
                .ok_or_else(|| format!("a bucket from {low} is not one of ours"))?;
            stats.buckets[index] += b["count"].as_u64().unwrap_or(0);
        }
        Ok(stats)
    }

    fn key_value(part: KeyPart, value: &serde_json::Value) -> KeyValue {
        match (part, value) {
            (KeyPart::Probe, v) => KeyValue::Probe(v.as_str().unwrap_or("").to_string()),
            (_, serde_json::Value::String(s)) => KeyValue::Str(s.clone()),
            (_, v) => KeyValue::Int(v.as_i64().unwrap_or(0)),
        }
    }

    /// The rows as home prints them: keys per `--by`, hosts summed unless
    /// `host` is one of them.
    pub fn merged(&self) -> Vec<AggRow> {
        self.merge_by(&self.parts)
    }

    /// Every host's rows apart, with the host first (for metrics).
    pub fn per_host(&self) -> (Vec<String>, Vec<AggRow>) {
        let mut parts = vec![None];
        parts.extend(self.parts.iter().flatten().map(|k| Some(*k)));
        let names = parts
            .iter()
            .map(|p| p.map_or("host".to_string(), |k: KeyPart| k.name()))
            .collect();
        (names, self.merge_by(&parts))
    }

    fn merge_by(&self, parts: &[Option<KeyPart>]) -> Vec<AggRow> {
        let mut merged: HashMap<Vec<KeyValue>, Stats> = HashMap::new();
        for (host, rows) in self.current.iter().enumerate() {
            for row in rows {
                let key: Vec<KeyValue> = parts
                    .iter()
                    .map(|p| match p {
                        None => KeyValue::Probe(self.hosts[host].clone()),
                        Some(k) => Self::key_value(
                            *k,
                            row.keys.get(&k.name()).unwrap_or(&serde_json::Value::Null),
                        ),
                    })
                    .collect();
                let into = merged.entry(key).or_insert_with(|| Stats {
                    min: i64::MAX,
                    max: i64::MIN,
                    buckets: vec![0; row.stats.buckets.len()],
                    ..Stats::default()
                });
                add(into, &row.stats);
            }
        }
        merged
            .into_iter()
            .map(|(key, mut stats)| {
                if stats.min > stats.max {
                    (stats.min, stats.max) = (0, 0);
                }
                AggRow { key, stats }
            })
            .collect()
    }
}

/// `from` added into `into`: counts and sums add, bucket by bucket.
fn add(into: &mut Stats, from: &Stats) {
    into.count += from.count;
    into.sum += from.sum;
    if from.count > 0 {
        into.min = into.min.min(from.min);
        into.max = into.max.max(from.max);
    }
    if into.buckets.len() < from.buckets.len() {
        into.buckets.resize(from.buckets.len(), 0);
    }
    for (a, b) in into.buckets.iter_mut().zip(&from.buckets) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_both_forms() {
        assert_eq!(
            record_time(r#"{"time_ns":1700000000123456789,"pid":1}"#),
            Some(1700000000123456789)
        );
        assert_eq!(
            record_time("17:47:35.424675   27757 fx"),
            Some(((17 * 3600 + 47 * 60 + 35) * 1_000_000 + 424675) * 1000)
        );
        assert_eq!(record_time("query: SELECT 1"), None);
        assert_eq!(
            tag(r#"{"time_ns":1}"#, "h1", true, 2),
            r#"{"host":"h1","time_ns":1}"#
        );
        assert_eq!(
            tag("12:00:00.000001 x", "h1", false, 3),
            "h1  12:00:00.000001 x"
        );
    }

    #[test]
    fn records_of_two_hosts_come_out_in_time_order() {
        let mut r = Records::new(vec!["a".into(), "b".into()], true);
        let mut out = Vec::new();
        r.line(0, r#"{"time_ns":10}"#, &mut out).unwrap();
        r.line(0, r#"{"time_ns":30}"#, &mut out).unwrap();
        r.release(&mut out, false).unwrap();
        // b has sent nothing yet: nothing can be printed.
        assert!(out.is_empty());
        r.line(1, r#"{"time_ns":20}"#, &mut out).unwrap();
        r.release(&mut out, false).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "{\"host\":\"a\",\"time_ns\":10}\n{\"host\":\"b\",\"time_ns\":20}\n"
        );
        r.end(1);
        r.release(&mut out, true).unwrap();
        assert!(String::from_utf8_lossy(&out).ends_with("\"time_ns\":30}\n"));
    }

    #[test]
    fn the_final_print_after_interval_rounds_replaces_them() {
        let mut m = Aggregates::new(
            vec!["a".into()],
            &[],
            AggValue::Count,
            Buckets::Log2,
            "count".into(),
        )
        .unwrap();
        let row = |n: u64| format!(r#"{{"type":"count","keys":{{"probe":"p:q"}},"count":{n}}}"#);
        m.line(0, r#"{"type":"interval","time_ns":1}"#).unwrap();
        m.line(0, &row(5)).unwrap();
        // The final print: no stamp before it.
        m.line(0, &row(7)).unwrap();
        m.round_done(0);
        assert_eq!(m.merged()[0].stats.count, 7);
    }

    #[test]
    fn histograms_merge_bucket_by_bucket() {
        let hosts = vec!["a".into(), "b".into()];
        let by = vec!["host".to_string()];
        let mut m =
            Aggregates::new(hosts, &by, AggValue::Arg(0), Buckets::Log2, "arg0".into()).unwrap();
        m.line(0, r#"{"type":"hist","keys":{"probe":"p:q"},"count":2,"sum":5,"min":1,"max":4,"buckets":[{"low":1,"high":1,"count":1},{"low":4,"high":7,"count":1}]}"#).unwrap();
        m.line(1, r#"{"type":"hist","keys":{"probe":"p:q"},"count":1,"sum":6,"min":6,"max":6,"buckets":[{"low":4,"high":7,"count":1}]}"#).unwrap();
        m.round_done(0);
        m.round_done(1);
        let mut rows = m.merged();
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(rows.len(), 2);
        let all = Aggregates::new(
            vec!["a".into(), "b".into()],
            &[],
            AggValue::Arg(0),
            Buckets::Log2,
            "arg0".into(),
        )
        .unwrap();
        let mut all = all;
        all.current = m.current.clone();
        let rows = all.merged();
        assert_eq!(rows.len(), 1);
        let s = &rows[0].stats;
        assert_eq!((s.count, s.sum, s.min, s.max), (3, 11, 1, 6));
        assert_eq!(s.buckets[2], 1);
        assert_eq!(s.buckets[4], 2);
    }
}
