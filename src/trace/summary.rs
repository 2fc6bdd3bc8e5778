//! Printing aggregates (`--count`, `--hist`, `latency`): sorted tables,
//! histograms with their statistics, and one JSON object per key.
//!
//! JSON schema (one object per line):
//! - `{"type":"count","keys":{KEY:VALUE…},"count":N}`
//! - `{"type":"hist","keys":{…},"value":"arg0"|"latency","unit":""|"ns",
//!    "count":N,"sum":N,"min":N,"max":N,"mean":F,"p50":N,"p90":N,"p99":N,
//!    "buckets":[{"low":N,"high":N,"count":N}…]}` (only non-empty buckets;
//!   `low` and `high` inclusive)
//! - with `--interval`: `{"type":"interval","time":"RFC 3339","time_ns":N}`
//!   before each round.
//!
//! A key's value is a string (probe, comm, str(argN)), an integer (pid,
//! tid, cpu, argN) or a list of frames (ustack).

use super::stacks::StackNames;
use clap::Args;
use std::io::Write;
use uprobe_engine::{AggRow, AggSpec, AggValue, Buckets, KeyPart, KeyValue, Stats};

/// The aggregation options `trace` and `latency` share.
#[derive(Args, Debug, Clone, Default)]
pub struct AggArgs {
    /// Aggregate per KEY (comma-separated): probe, pid, tid, cpu, comm, argN,
    /// str(argN), ustack. Default: probe.
    #[arg(long, value_name = "KEY,...", value_delimiter = ',')]
    pub by: Vec<String>,

    /// Print only the N keys with the most hits.
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,

    /// Histogram buckets of equal width: MIN,MAX,STEP (values below MIN and
    /// from MAX up get a bucket each). Default: powers of two.
    #[arg(long, value_name = "MIN,MAX,STEP")]
    pub linear: Option<String>,

    /// Most distinct keys kept in the kernel (hits of further keys are counted as lost).
    #[arg(long, value_name = "N", default_value_t = 65536)]
    pub max_keys: u32,
}

impl AggArgs {
    pub fn keys(&self) -> Result<Vec<KeyPart>, String> {
        if self.by.is_empty() {
            return Ok(vec![KeyPart::Probe]);
        }
        self.by
            .iter()
            .map(|k| {
                KeyPart::parse(k).ok_or_else(|| {
                    format!(
                        "--by `{k}`: keys are probe, pid, tid, cpu, comm, arg0..arg11, \
                         str(arg0)..str(arg11), ustack"
                    )
                })
            })
            .collect()
    }

    pub fn buckets(&self) -> Result<Buckets, String> {
        let Some(text) = &self.linear else {
            return Ok(Buckets::Log2);
        };
        let bad =
            || format!("--linear `{text}`: expected MIN,MAX,STEP with MIN < MAX and STEP > 0");
        let parts: Vec<i64> = text
            .split(',')
            .map(|p| p.trim().parse::<i64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let [min, max, step] = parts[..] else {
            return Err(bad());
        };
        if min >= max || step <= 0 {
            return Err(bad());
        }
        let buckets = Buckets::Linear { min, max, step };
        if buckets.count() > uprobe_engine::lower::aggregate::MAX_LINEAR_BUCKETS {
            return Err(format!(
                "--linear `{text}`: {} buckets; at most {} (raise STEP)",
                buckets.count() - 2,
                uprobe_engine::lower::aggregate::MAX_LINEAR_BUCKETS - 2
            ));
        }
        Ok(buckets)
    }

    /// The kernel-side aggregation for this value.
    pub fn spec(&self, value: AggValue, string_bytes: usize) -> Result<AggSpec, String> {
        Ok(AggSpec {
            keys: self.keys()?,
            value,
            buckets: self.buckets()?,
            key_string_bytes: string_bytes.next_multiple_of(8),
        })
    }
}

/// How to print one round of results.
pub struct Printer<'a> {
    pub spec: &'a AggSpec,
    pub json: bool,
    pub top: Option<usize>,
    /// What the histogram is of: `arg3`, `latency`.
    pub value_name: String,
    pub stacks: &'a mut StackNames,
}

/// Rows merged at home from several hosts (`--remote`), printed as a
/// session's are, with their keys named by `names` (`host` among them).
pub fn print_merged(
    out: &mut impl Write,
    spec: &AggSpec,
    json: bool,
    top: Option<usize>,
    value_name: &str,
    names: &[String],
    rows: Vec<AggRow>,
) -> std::io::Result<()> {
    let mut stacks = StackNames::new(false, 0);
    let mut printer = Printer {
        spec,
        json,
        top,
        value_name: value_name.to_string(),
        stacks: &mut stacks,
    };
    printer.print_named(out, rows, Some(names))
}

impl Printer<'_> {
    pub fn print(&mut self, out: &mut impl Write, rows: Vec<AggRow>) -> std::io::Result<()> {
        self.print_named(out, rows, None)
    }

    fn print_named(
        &mut self,
        out: &mut impl Write,
        mut rows: Vec<AggRow>,
        names: Option<&[String]>,
    ) -> std::io::Result<()> {
        // Largest last, as bpftrace prints maps; ties by key.
        rows.sort_by(|a, b| (a.stats.count, &a.key).cmp(&(b.stats.count, &b.key)));
        if let Some(n) = self.top {
            let drop = rows.len().saturating_sub(n);
            rows.drain(..drop);
        }
        for row in &rows {
            if self.spec.value == AggValue::Count {
                self.count_row(out, row, names)?;
            } else {
                self.hist_row(out, row, names)?;
            }
        }
        Ok(())
    }

    fn key_json(&mut self, row: &AggRow, names: Option<&[String]>) -> serde_json::Value {
        let mut keys = serde_json::Map::new();
        let names = match names {
            Some(n) => n.to_vec(),
            None => self.spec.keys.iter().map(|k| k.name()).collect(),
        };
        for (name, value) in names.into_iter().zip(&row.key) {
            let v = match value {
                KeyValue::Probe(s) | KeyValue::Str(s) => serde_json::json!(s),
                KeyValue::Int(n) => serde_json::json!(n),
                KeyValue::Stack { pid, ips } => serde_json::json!(self.stacks.frames(*pid, ips)),
            };
            keys.insert(name, v);
        }
        serde_json::Value::Object(keys)
    }

    /// `probe, 1234, "text"` for a human line; stacks go on lines of their own.
    fn key_text(&mut self, row: &AggRow) -> (String, Vec<String>) {
        let mut parts = Vec::new();
        let mut stack = Vec::new();
        for value in &row.key {
            match value {
                KeyValue::Probe(s) => parts.push(s.clone()),
                KeyValue::Str(s) => parts.push(format!("{s:?}")),
                KeyValue::Int(n) => parts.push(n.to_string()),
                KeyValue::Stack { pid, ips } => stack = self.stacks.frames(*pid, ips),
            }
        }
        (parts.join(", "), stack)
    }

    fn count_row(
        &mut self,
        out: &mut impl Write,
        row: &AggRow,
        names: Option<&[String]>,
    ) -> std::io::Result<()> {
        if self.json {
            let line = serde_json::json!({
                "type": "count",
                "keys": self.key_json(row, names),
                "count": row.stats.count,
            });
            return writeln!(out, "{line}");
        }
        let (key, stack) = self.key_text(row);
        if stack.is_empty() {
            return writeln!(out, "@count[{key}]: {}", row.stats.count);
        }
        writeln!(out, "@count[{key}{}", if key.is_empty() { "" } else { "," })?;
        for frame in &stack {
            writeln!(out, "    {frame}")?;
        }
        writeln!(out, "]: {}", row.stats.count)
    }

    fn hist_row(
        &mut self,
        out: &mut impl Write,
        row: &AggRow,
        names: Option<&[String]>,
    ) -> std::io::Result<()> {
        let s = &row.stats;
        let unit = if self.spec.value == AggValue::Latency {
            "ns"
        } else {
            ""
        };
        let pct = |p: f64| percentile(s, &self.spec.buckets, p);
        if self.json {
            let buckets: Vec<serde_json::Value> = s
                .buckets
                .iter()
                .enumerate()
                .filter(|(_, &n)| n > 0)
                .map(|(b, &n)| {
                    let (low, high) = self.spec.buckets.range(b);
                    serde_json::json!({"low": low as i64, "high": high.min(i128::from(i64::MAX)) as i64, "count": n})
                })
                .collect();
            let line = serde_json::json!({
                "type": "hist",
                "keys": self.key_json(row, names),
                "value": self.value_name,
                "unit": unit,
                "count": s.count,
                "sum": s.sum as i64,
                "min": s.min,
                "max": s.max,
                "mean": mean(s),
                "p50": pct(0.50),
                "p90": pct(0.90),
                "p99": pct(0.99),
                "buckets": buckets,
            });
            return writeln!(out, "{line}");
        }
        let (key, stack) = self.key_text(row);
        writeln!(out, "@{}[{key}]:", self.value_name)?;
        for frame in &stack {
            writeln!(out, "    {frame}")?;
        }
        let show = |v: i64| with_unit(v, unit);
        writeln!(
            out,
            "count {}, sum {}, min {}, max {}, mean {}, p50 {}, p90 {}, p99 {}",
            s.count,
            with_unit(
                s.sum.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
                unit
            ),
            show(s.min),
            show(s.max),
            show(mean(s).round() as i64),
            show(pct(0.50)),
            show(pct(0.90)),
            show(pct(0.99)),
        )?;
        let used: Vec<usize> = (0..s.buckets.len()).filter(|&b| s.buckets[b] > 0).collect();
        let (Some(&first), Some(&last)) = (used.first(), used.last()) else {
            return writeln!(out);
        };
        let most = used.iter().map(|&b| s.buckets[b]).max().unwrap_or(1);
        for b in first..=last {
            let n = s.buckets[b];
            let bar = (n * 52).div_ceil(most.max(1)) as usize;
            writeln!(
                out,
                "{:<22}{:>8} |{:<52}|",
                bucket_label(&self.spec.buckets, b, unit),
                n,
                "@".repeat(bar)
            )?;
        }
        writeln!(out)
    }
}

/// The bucket of `v`, as the kernel's programs place it.
fn mean(s: &Stats) -> f64 {
    if s.count == 0 {
        0.0
    } else {
        s.sum as f64 / s.count as f64
    }
}

/// The value at rank `p` of the histogram: found in its bucket, placed
/// linearly within the bucket (clamped to the observed min and max), so
/// it always lies in the bucket that holds the true percentile.
pub fn percentile(s: &Stats, buckets: &Buckets, p: f64) -> i64 {
    if s.count == 0 {
        return 0;
    }
    let rank = ((p * s.count as f64).ceil() as u64).clamp(1, s.count);
    let mut seen = 0;
    for (b, &n) in s.buckets.iter().enumerate() {
        if n == 0 {
            continue;
        }
        if seen + n >= rank {
            let (low, high) = buckets.range(b);
            let (low, high) = (low.max(i128::from(s.min)), high.min(i128::from(s.max)));
            let within = (rank - seen) as f64 / n as f64;
            let v = low as f64 + (high - low) as f64 * within;
            return (v.round() as i128).clamp(low, high) as i64;
        }
        seen += n;
    }
    s.max
}

fn bucket_label(buckets: &Buckets, b: usize, unit: &str) -> String {
    match buckets {
        Buckets::Log2 => match b {
            0 => "(..., 0)".into(),
            1 => "[0]".into(),
            2 => format!("[1{unit}]"),
            b => format!("[{}, {})", power(b as u32 - 2), power(b as u32 - 1)),
        },
        Buckets::Linear { .. } => {
            let (low, high) = buckets.range(b);
            let last = buckets.count() - 1;
            match b {
                0 => format!("(..., {})", high + 1),
                b if b == last => format!("[{low}, ...)"),
                _ => format!("[{low}, {})", high + 1),
            }
        }
    }
}

/// 2^k as bpftrace prints bucket bounds (K, M, G: powers of 1024; also
/// for nanoseconds, whose powers of two have no round decimal names).
fn power(k: u32) -> String {
    let units = ["", "K", "M", "G", "T", "P", "E"];
    let unit = (k / 10) as usize;
    if unit < units.len() {
        format!("{}{}", 1u64 << (k % 10), units[unit])
    } else {
        format!("2^{k}")
    }
}

/// A value with its unit: nanoseconds as ns/us/ms/s, plain numbers as they are.
fn with_unit(v: i64, unit: &str) -> String {
    if unit != "ns" {
        return v.to_string();
    }
    let a = v.unsigned_abs();
    let (div, name) = match a {
        0..1_000 => return format!("{v}ns"),
        1_000..1_000_000 => (1e3, "us"),
        1_000_000..1_000_000_000 => (1e6, "ms"),
        _ => (1e9, "s"),
    };
    let x = format!("{:.3}", v as f64 / div);
    let x = x.trim_end_matches('0').trim_end_matches('.');
    format!("{x}{name}")
}

/// `{"type":"interval",…}` or `@time …` before an interval's round.
pub fn interval_stamp(out: &mut impl Write, json: bool) -> std::io::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let stamp = super::output::rfc3339(now.as_nanos());
    if json {
        let line = serde_json::json!({"type": "interval", "time": stamp, "time_ns": now.as_nanos() as u64});
        writeln!(out, "{line}")
    } else {
        writeln!(out, "@time {stamp}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(values: &[i64], buckets: &Buckets) -> Stats {
        let mut s = Stats {
            buckets: vec![0; buckets.count()],
            min: *values.iter().min().unwrap(),
            max: *values.iter().max().unwrap(),
            ..Stats::default()
        };
        for &v in values {
            s.count += 1;
            s.sum += i128::from(v);
            let b = (0..buckets.count())
                .find(|&b| {
                    let (lo, hi) = buckets.range(b);
                    (lo..=hi).contains(&i128::from(v))
                })
                .unwrap();
            s.buckets[b] += 1;
        }
        s
    }

    #[test]
    fn percentiles_fall_in_the_bucket_of_the_truth() {
        let values: Vec<i64> = (0..1000)
            .map(|i| if i % 2 == 0 { 1_000_000 } else { 20_000_000 })
            .collect();
        let s = stats(&values, &Buckets::Log2);
        let p50 = percentile(&s, &Buckets::Log2, 0.5);
        assert!((524_288..1_048_576 + 1).contains(&p50), "{p50}");
        let p99 = percentile(&s, &Buckets::Log2, 0.99);
        assert!((16_777_216..=20_000_000).contains(&p99), "{p99}");
        let lin = Buckets::Linear {
            min: 0,
            max: 100,
            step: 10,
        };
        let s = stats(&(0..100).collect::<Vec<_>>(), &lin);
        assert_eq!(percentile(&s, &lin, 0.5), 49);
        assert_eq!(percentile(&s, &lin, 1.0), 99);
    }

    #[test]
    fn user_space_buckets_agree_with_their_ranges() {
        let lin = Buckets::Linear {
            min: -45,
            max: 0,
            step: 10,
        };
        for buckets in [Buckets::Log2, lin] {
            for v in [-100, -46, -45, -5, -1, 0, 1, 2, 3, 1023, 1024, i64::MAX] {
                let (lo, hi) = buckets.range(buckets.index(v));
                assert!((lo..=hi).contains(&i128::from(v)), "{v} in {buckets:?}");
            }
        }
    }

    #[test]
    fn units_and_labels() {
        assert_eq!(with_unit(999, "ns"), "999ns");
        assert_eq!(with_unit(1_500_000, "ns"), "1.5ms");
        assert_eq!(with_unit(2_000_000_000, "ns"), "2s");
        assert_eq!(bucket_label(&Buckets::Log2, 12, ""), "[1K, 2K)");
        assert_eq!(bucket_label(&Buckets::Log2, 22, "ns"), "[1M, 2M)");
        let lin = Buckets::Linear {
            min: 0,
            max: 100,
            step: 10,
        };
        assert_eq!(bucket_label(&lin, 0, ""), "(..., 0)");
        assert_eq!(bucket_label(&lin, 1, ""), "[0, 10)");
        assert_eq!(bucket_label(&lin, 11, ""), "[100, ...)");
    }

    #[test]
    fn bad_aggregation_options_are_named() {
        let args = AggArgs {
            by: vec!["pid".into(), "argx".into()],
            linear: Some("10,0,1".into()),
            ..AggArgs::default()
        };
        assert!(args.keys().unwrap_err().contains("argx"));
        assert!(args.buckets().unwrap_err().contains("MIN < MAX"));
        let many = AggArgs {
            linear: Some("0,1000000,1".into()),
            ..AggArgs::default()
        };
        assert!(many.buckets().unwrap_err().contains("raise STEP"));
    }
}
