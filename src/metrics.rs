//! `--serve ADDR:PORT`: the current counts and histograms as an OpenMetrics
//! text endpoint (`/metrics`) that Prometheus scrapes.
//!
//! The tracer publishes a snapshot of its aggregates every few hundred ms
//! (from its own loop: the kernel maps belong to it); scrapes read the
//! latest snapshot, so a scrape never waits for the kernel or the tracer.
//! prometheus-client writes the exposition format, tiny_http serves it.

use clap::{ArgMatches, Args, FromArgMatches};
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use uprobe_engine::{AggRow, AggSpec, AggValue, Buckets, KeyValue, Stats};

/// The options of `trace`, `latency` and `calls`.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Serve the counts and histograms as OpenMetrics text at http://ADDR:PORT/metrics
    /// while tracing (trace --count/--hist, latency, calls), for Prometheus to scrape.
    #[arg(long, value_name = "ADDR:PORT")]
    pub serve: Option<String>,

    /// With --serve: the most label sets (series) per metric; past it, the keys with
    /// the most hits are served and the rest counted in stap_sdt_series_dropped.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub serve_max_series: usize,
}

const COMMANDS: &[&str] = &["trace", "latency", "calls"];

/// Add the options to the commands that take them.
pub fn augment(mut command: clap::Command) -> clap::Command {
    for name in COMMANDS {
        command = command.mut_subcommand(*name, ServeArgs::augment_args);
    }
    command
}

/// One metric family of a snapshot.
#[derive(Debug, Clone)]
struct Family {
    name: String,
    help: String,
    /// `None`: a counter of `stats.count`; else a histogram in these buckets.
    buckets: Option<Buckets>,
    labels: Vec<String>,
    rows: Vec<(Vec<String>, Stats)>,
}

#[derive(Debug, Default)]
struct Snapshot {
    families: Vec<Family>,
    lost: u64,
    lost_keys: u64,
    dropped: u64,
}

#[derive(Debug)]
struct Exporter {
    snapshot: Mutex<Snapshot>,
    max_series: usize,
    last: Mutex<Option<Instant>>,
    warned: AtomicBool,
}

static EXPORTER: OnceLock<Arc<Exporter>> = OnceLock::new();

/// How often the tracer's loop refreshes the snapshot.
const EVERY: Duration = Duration::from_millis(200);

/// Start serving if the command asks: before anything is attached, so that
/// an address in use costs nothing.
pub fn start(command: &str, matches: &ArgMatches) -> Result<(), crate::status::Failure> {
    if !COMMANDS.contains(&command) {
        return Ok(());
    }
    let args = ServeArgs::from_arg_matches(matches).unwrap_or_default();
    let Some(addr) = args.serve else {
        return Ok(());
    };
    let aggregating = command != "trace"
        || matches!(matches.try_get_one::<bool>("count"), Ok(Some(true)))
        || matches!(matches.try_get_raw("hist"), Ok(Some(_)));
    if !aggregating {
        return Err("--serve goes with trace --count or --hist, latency and calls".into());
    }
    if command == "calls" && matches!(matches.try_get_raw("remote"), Ok(Some(_))) {
        return Err("--serve with --remote: trace --count/--hist and latency".into());
    }
    if args.serve_max_series == 0 {
        return Err("--serve-max-series: at least 1".into());
    }
    let server = tiny_http::Server::http(&addr)
        .map_err(|e| format!("--serve {addr}: cannot listen: {e}"))?;
    let exporter = Arc::new(Exporter {
        snapshot: Mutex::new(Snapshot::default()),
        max_series: args.serve_max_series,
        last: Mutex::new(None),
        warned: AtomicBool::new(false),
    });
    let _ = EXPORTER.set(exporter.clone());
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let path = request.url().split('?').next().unwrap_or("");
            let response = if path == "/metrics" {
                let body = exporter.render();
                let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
                tiny_http::Response::from_string(body).with_header(
                    tiny_http::Header::from_bytes(&b"Content-Type"[..], kind.as_bytes())
                        .expect("a valid header"),
                )
            } else {
                tiny_http::Response::from_string("stap-sdt serves /metrics\n").with_status_code(404)
            };
            let _ = request.respond(response);
        }
    });
    Ok(())
}

pub fn serving() -> bool {
    EXPORTER.get().is_some()
}

/// Whether a refresh is due (and if so, now counted as done).
fn due() -> Option<&'static Arc<Exporter>> {
    let e = EXPORTER.get()?;
    let mut last = e.last.lock().ok()?;
    if last.is_some_and(|t| t.elapsed() < EVERY) {
        return None;
    }
    *last = Some(Instant::now());
    Some(e)
}

/// The hook of the trace loop: the session's rows, if serving and due.
pub fn publish_session(session: &uprobe_engine::Session, spec: &AggSpec, value_name: &str) {
    if !serving() {
        return;
    }
    let names: Vec<String> = spec.keys.iter().map(|k| k.name()).collect();
    publish_rows(
        spec,
        value_name,
        &names,
        session.aggregates(),
        session.lost(),
        session.lost_keys(),
    );
}

/// Publish aggregate rows keyed by `names` (`--remote` gives `host` too).
pub fn publish_rows(
    spec: &AggSpec,
    value_name: &str,
    names: &[String],
    rows: Vec<AggRow>,
    lost: u64,
    lost_keys: u64,
) {
    let Some(exporter) = due() else {
        return;
    };
    let mut labels: Vec<String> = names.iter().map(|n| label_name(n)).collect();
    let (name, help, buckets) = match spec.value {
        AggValue::Count => ("stap_sdt_hits", "Probe hits".to_string(), None),
        AggValue::Arg(_) => (
            "stap_sdt_value",
            "Values of a probe argument (label arg)".to_string(),
            Some(spec.buckets),
        ),
        AggValue::Latency => (
            "stap_sdt_latency_nanoseconds",
            "Time from START to END, in nanoseconds".to_string(),
            Some(spec.buckets),
        ),
    };
    let extra = matches!(spec.value, AggValue::Arg(_)).then(|| value_name.to_string());
    if extra.is_some() {
        labels.push("arg".into());
    }
    let rows = rows
        .into_iter()
        .map(|row| {
            let mut values: Vec<String> = row.key.iter().map(label_value).collect();
            values.extend(extra.clone());
            (values, row.stats)
        })
        .collect();
    exporter.set(
        vec![Family {
            name: name.into(),
            help,
            buckets,
            labels,
            rows,
        }],
        lost,
        lost_keys,
    );
}

/// The hook of `calls`: calls per function, and with -L their durations.
pub fn publish_calls(
    per_function: &std::collections::HashMap<String, crate::runtime::calls::Tally>,
    latency: bool,
) {
    let Some(exporter) = due() else {
        return;
    };
    let labels = vec!["function".to_string()];
    let mut families = vec![Family {
        name: "stap_sdt_calls".into(),
        help: "Function calls".into(),
        buckets: None,
        labels: labels.clone(),
        rows: per_function
            .iter()
            .map(|(f, t)| {
                (
                    vec![f.clone()],
                    Stats {
                        count: t.calls,
                        ..Stats::default()
                    },
                )
            })
            .collect(),
    }];
    if latency {
        families.push(Family {
            name: "stap_sdt_call_duration_nanoseconds".into(),
            help: "Entry-to-return time of the calls that returned, in nanoseconds".into(),
            buckets: Some(Buckets::Log2),
            labels,
            rows: per_function
                .iter()
                .map(|(f, t)| {
                    let mut buckets = t.buckets.clone();
                    buckets.resize(Buckets::Log2.count(), 0);
                    let stats = Stats {
                        count: t.returned,
                        sum: i128::from(t.total_ns),
                        min: 0,
                        max: t.max_ns as i64,
                        buckets,
                    };
                    (vec![f.clone()], stats)
                })
                .collect(),
        });
    }
    exporter.set(families, 0, 0);
}

/// `str(arg1)` → `str_arg1`: what Prometheus allows in a label name.
fn label_name(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    while name.ends_with('_') {
        name.pop();
    }
    name
}

fn label_value(value: &KeyValue) -> String {
    match value {
        KeyValue::Probe(s) | KeyValue::Str(s) => s.clone(),
        KeyValue::Int(n) => n.to_string(),
        // Unnamed here (naming reads the process's maps): the addresses.
        KeyValue::Stack { pid, ips } => {
            let ips: Vec<String> = ips.iter().map(|ip| format!("{ip:#x}")).collect();
            format!("{pid}:{}", ips.join(";"))
        }
    }
}

impl Exporter {
    /// Keep at most `max_series` rows per family (those with the most hits).
    fn set(&self, mut families: Vec<Family>, lost: u64, lost_keys: u64) {
        let mut dropped = 0;
        for f in &mut families {
            if f.rows.len() > self.max_series {
                f.rows
                    .sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(&b.0)));
                dropped += (f.rows.len() - self.max_series) as u64;
                if !self.warned.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "stap-sdt: --serve: {} has {} label sets, more than --serve-max-series {}: \
                         serving the {} with the most hits (stap_sdt_series_dropped counts the rest; \
                         fewer --by keys, or --filter, keep it small)",
                        f.name,
                        f.rows.len(),
                        self.max_series,
                        self.max_series
                    );
                }
                f.rows.truncate(self.max_series);
            }
        }
        if let Ok(mut s) = self.snapshot.lock() {
            *s = Snapshot {
                families,
                lost,
                lost_keys,
                dropped,
            };
        }
    }

    fn render(&self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        let snapshot = match self.snapshot.lock() {
            Ok(s) => Snapshot {
                families: s.families.clone(),
                lost: s.lost,
                lost_keys: s.lost_keys,
                dropped: s.dropped,
            },
            Err(_) => Snapshot::default(),
        };
        registry.register_collector(Box::new(Collected(snapshot)));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }
}

/// A snapshot as prometheus-client's collector: encoded at each scrape.
#[derive(Debug)]
struct Collected(Snapshot);

/// The Prometheus bucket bounds (`le`, inclusive) of our buckets, with each
/// bucket's own count; the last bound is +Inf.
fn prometheus_buckets(buckets: &Buckets, counts: &[u64]) -> Vec<(f64, u64)> {
    let n = buckets.count();
    (0..n)
        .map(|b| {
            let high = if b + 1 == n {
                f64::INFINITY
            } else {
                buckets.range(b).1 as f64
            };
            (high, counts.get(b).copied().unwrap_or(0))
        })
        .collect()
}

impl prometheus_client::collector::Collector for Collected {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        for f in &s.families {
            let kind = if f.buckets.is_some() {
                MetricType::Histogram
            } else {
                MetricType::Counter
            };
            let mut metric = encoder.encode_descriptor(&f.name, &f.help, None, kind)?;
            for (values, stats) in &f.rows {
                let labels: Vec<(String, String)> = f
                    .labels
                    .iter()
                    .cloned()
                    .zip(values.iter().cloned())
                    .collect();
                let mut series = metric.encode_family(&labels)?;
                match &f.buckets {
                    None => series.encode_counter::<NoLabelSet, u64, u64>(&stats.count, None)?,
                    Some(b) => series.encode_histogram::<NoLabelSet>(
                        stats.sum as f64,
                        stats.count,
                        &prometheus_buckets(b, &stats.buckets),
                        None,
                    )?,
                }
            }
        }
        for (name, help, value) in [
            (
                "stap_sdt_lost_events",
                "Records lost: the ring buffer was full",
                s.lost,
            ),
            (
                "stap_sdt_lost_keys",
                "Hits not aggregated: the key map was full (--max-keys)",
                s.lost_keys,
            ),
        ] {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            let mut metric = metric;
            metric.encode_counter::<NoLabelSet, u64, u64>(&value, None)?;
        }
        let mut metric = encoder.encode_descriptor(
            "stap_sdt_series_dropped",
            "Label sets not served: past --serve-max-series",
            None,
            MetricType::Gauge,
        )?;
        metric.encode_gauge(&(s.dropped as i64))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_our_bounds() {
        let e = Exporter {
            snapshot: Mutex::new(Snapshot::default()),
            max_series: 1,
            last: Mutex::new(None),
            warned: AtomicBool::new(true),
        };
        let lin = Buckets::Linear {
            min: 0,
            max: 20,
            step: 10,
        };
        let stats = |count, buckets: Vec<u64>| Stats {
            count,
            sum: 25,
            min: 0,
            max: 0,
            buckets,
        };
        e.set(
            vec![Family {
                name: "stap_sdt_value".into(),
                help: "h".into(),
                buckets: Some(lin),
                labels: vec!["probe".into(), "arg".into()],
                rows: vec![
                    (
                        vec!["a:b".into(), "arg0".into()],
                        stats(3, vec![0, 1, 2, 0]),
                    ),
                    (
                        vec!["a:c".into(), "arg0".into()],
                        stats(1, vec![0, 1, 0, 0]),
                    ),
                ],
            }],
            4,
            0,
        );
        let text = e.render();
        assert!(text.contains("# TYPE stap_sdt_value histogram"), "{text}");
        assert!(
            text.contains(r#"stap_sdt_value_bucket{le="9.0",probe="a:b",arg="arg0"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"stap_sdt_value_bucket{le="19.0",probe="a:b",arg="arg0"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"stap_sdt_value_bucket{le="+Inf",probe="a:b",arg="arg0"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"stap_sdt_value_count{probe="a:b",arg="arg0"} 3"#),
            "{text}"
        );
        // One series allowed: the other is dropped and counted.
        assert!(!text.contains("a:c"), "{text}");
        assert!(text.contains("stap_sdt_series_dropped 1"), "{text}");
        assert!(text.contains("stap_sdt_lost_events_total 4"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn label_names_are_prometheus_names() {
        assert_eq!(label_name("str(arg1)"), "str_arg1");
        assert_eq!(label_name("pid"), "pid");
    }
}
