//! `stap-sdt latency START END`: the time from a START hit to the END hit
//! of the same thread (or with the same argument), aggregated in the kernel.

use super::scope::ProcessScope;
use super::summary::AggArgs;
use super::{drive, key_string_bytes, parse_filter, Output, Run};
use crate::status::{Failure, OutputArgs};
use clap::Args;
use std::collections::HashMap;
use std::process::ExitCode;
use uprobe_engine::{
    AggRow, AggSpec, AggValue, Event, KeyPart, KeyValue, SessionOptions, SiteRole,
};

#[derive(Args, Debug)]
#[command(after_help = "\
START and END are probes as `trace` spells them (PATH:PROVIDER:NAME, PATH:fn:SYMBOL, \
PATH:fn:SYMBOL%return, …). Each START hit is remembered in the kernel under its process and \
thread (or, with --match argN, the value of argN); the next END hit of that thread (or with \
that value of its argN) adds the time since to a histogram. --by keys and --filter are taken \
at START: `--by 'str(arg0)'` on PostgreSQL's query__start gives one histogram per SQL text. \
An END without a START is ignored; a START whose END never comes is dropped at the end.

Examples:
  stap-sdt latency postgres:postgresql:query__start postgres:postgresql:query__done -p 1234
  stap-sdt latency 'postgres:postgresql:query__start' 'postgres:postgresql:query__done' \\
      --by 'str(arg0)' --top 10
  stap-sdt latency ./server:fn:handle ./server:fn:handle%return --linear 0,10000000,1000000
  stap-sdt latency -c ./app app:request__start app:request__done --match arg0 --json")]
pub struct LatencyArgs {
    /// The probe that starts the interval.
    #[arg(value_name = "START")]
    start: String,

    /// The probe that ends it.
    #[arg(value_name = "END")]
    end: String,

    #[command(flatten)]
    scope: ProcessScope,

    /// Pair START and END by this argument's value (in the same process)
    /// instead of by thread: `arg0`..`arg11`.
    #[arg(long = "match", value_name = "ARGN")]
    match_arg: Option<String>,

    /// Keep only the intervals whose START satisfies EXPR (see `trace --help`).
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,

    #[command(flatten)]
    agg: AggArgs,

    /// Bytes of a string kept in a --by key (with its NUL; default 128).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(8..=4096))]
    str_max: Option<u64>,

    /// One JSON object per key (see docs/trace.md for the schema).
    #[arg(long)]
    json: bool,

    /// Stop after SECONDS.
    #[arg(short = 'd', long, value_name = "SECONDS")]
    duration: Option<f64>,

    /// Print the histograms every SECONDS too, each round stamped with the time.
    #[arg(long, value_name = "SECONDS")]
    interval: Option<f64>,

    #[command(flatten)]
    out: OutputArgs,

    /// Measure in the process itself, without privileges, as `trace --in-process` (with
    /// -c): every START and END hit is a record, paired here.
    #[arg(long, requires = "command")]
    in_process: bool,

    /// Also write every START→END interval as a slice on its thread's track
    /// (see `trace --help`). The intervals are then paired in user space from
    /// records of every START and END, not in the kernel.
    #[command(flatten)]
    timeline: crate::pictures_out::TimelineArgs,
}

/// START→END pairing in user space (with `--timeline`): the open STARTs
/// under (pid, thread or argument), and the statistics per key.
pub struct Pairs {
    spec: AggSpec,
    by_arg: Option<usize>,
    open: HashMap<(u32, i128), (u128, Vec<KeyValue>, String)>,
    rows: uprobe_engine::user_agg::Rows,
}

impl Pairs {
    fn new(spec: AggSpec, by_arg: Option<usize>) -> Pairs {
        Pairs {
            spec,
            by_arg,
            open: HashMap::new(),
            rows: Default::default(),
        }
    }

    fn matched(&self, event: &Event) -> Option<(u32, i128)> {
        let second = match self.by_arg {
            Some(n) => event.args.get(n)?.as_i128()?,
            None => i128::from(event.tid),
        };
        Some((event.pid, second))
    }

    /// A START or END hit (`start`: which); an END that closes a START
    /// returns the interval: (start time, ns, the START's probe).
    pub fn take(&mut self, event: &Event, start: bool) -> Option<(u128, u64, String)> {
        let at = self.matched(event)?;
        if start {
            let key = self.key(event);
            self.open
                .insert(at, (event.time_ns, key, event.probe.label.clone()));
            return None;
        }
        let (began, key, label) = self.open.remove(&at)?;
        let ns = event.time_ns.saturating_sub(began).min(i64::MAX as u128) as u64;
        let ns_i64 = ns as i64;
        self.rows.add(key, ns_i64, &self.spec);
        Some((began, ns, label))
    }

    /// The `--by` key of a START hit.
    fn key(&self, event: &Event) -> Vec<KeyValue> {
        uprobe_engine::user_agg::key_of(&self.spec, event)
    }

    pub fn rows(&self) -> Vec<AggRow> {
        self.rows.rows()
    }
}

pub fn run(args: LatencyArgs) -> Result<ExitCode, Failure> {
    let by_arg = args
        .match_arg
        .as_deref()
        .map(|m| {
            uprobe_engine::expr::arg_number(m)
                .ok_or_else(|| format!("--match `{m}`: expected arg0..arg11"))
        })
        .transpose()?;
    let string_bytes = key_string_bytes(&args.str_max.map(|n| n as usize));
    let spec = args.agg.spec(AggValue::Latency, string_bytes)?;
    let in_user_space = args.timeline.timeline.is_some() || args.in_process;
    if in_user_space && spec.keys.contains(&KeyPart::Ustack) {
        return Err("--timeline and --by ustack do not go together in latency".into());
    }
    let options = SessionOptions {
        filter: parse_filter(args.filter.as_deref())?,
        // With a timeline, every START and END is a record.
        aggregate: (!in_user_space).then(|| spec.clone()),
        strings: spec
            .keys
            .iter()
            .filter_map(|k| match k {
                KeyPart::Str(n) => Some(*n),
                _ => None,
            })
            .collect(),
        max_keys: args.agg.max_keys,
        string_bytes,
        ..SessionOptions::default()
    };
    let pairs = in_user_space.then(|| Pairs::new(spec.clone(), by_arg));
    drive(Run {
        pairs,
        out: args.out,
        timeline: args.timeline,
        flame: Default::default(),
        wanted_args: Vec::new(),
        scope: args.scope,
        probes: vec![
            (args.start, SiteRole::Start { by_arg }),
            (args.end, SiteRole::End { by_arg }),
        ],
        options,
        output: Output::Aggregate {
            spec,
            top: args.agg.top,
            value_name: "latency".into(),
        },
        json: args.json,
        duration: args.duration,
        interval: args.interval,
        source_lines: false,
        in_process: args.in_process,
    })
}
