//! `stap-sdt calls`: calls per function (and with -L their total and mean
//! latency), like bcc's ucalls.

use super::{function_name, Scope};
use crate::status::Failure;
use clap::Args;
use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(after_help = "\
A function's latency is the time from its entry to its return, on the same thread \
(inclusive of the functions it calls).

Examples:
  stap-sdt calls -l python -c '/usr/bin/python3.11 script.py'
  stap-sdt calls -l java -p 1234 -L -T 10 -d 5
  stap-sdt calls -l perl -c './prog' -L")]
pub struct CallsArgs {
    #[command(flatten)]
    scope: Scope,

    /// With -L: call stacks by self time, as folded stacks and/or an SVG flame graph.
    #[command(flatten)]
    flame: crate::pictures_out::FlameArgs,

    /// Also trace returns and show per function the total time, self time (not in
    /// the calls it made), mean, p50, p99 (log2 histogram) and max.
    #[arg(short = 'L', long)]
    latency: bool,

    /// Show only the N functions with the most calls (with -L: the most time).
    #[arg(short = 'T', long = "top", value_name = "N")]
    top: Option<usize>,

    /// Show function names in full; by default a name over 64 characters (a long
    /// Java signature) is cut to 63 and `…`, so it does not widen every row.
    #[arg(short = 'w', long)]
    wide: bool,
}

/// The widest FUNCTION column without --wide.
const NAME_WIDTH: usize = 64;

/// `name` in at most `width` characters: cut, with `…` as the last.
fn fit(name: &str, width: usize) -> std::borrow::Cow<'_, str> {
    if name.chars().count() <= width {
        return name.into();
    }
    let mut cut: String = name.chars().take(width - 1).collect();
    cut.push('…');
    cut.into()
}

#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub calls: u64,
    /// Entry-to-return time of the calls that returned while traced.
    pub total_ns: u64,
    /// The part of it not spent in the calls they made (that returned).
    pub self_ns: u64,
    pub returned: u64,
    pub max_ns: u64,
    /// Entry-to-return times in log2 buckets (as `--hist`: k + 2 holds
    /// [2^k, 2^(k+1)) ns).
    pub buckets: Vec<u64>,
}

impl Tally {
    fn add(&mut self, ns: u64, self_ns: u64) {
        self.total_ns += ns;
        self.self_ns += self_ns;
        self.returned += 1;
        self.max_ns = self.max_ns.max(ns);
        let bucket = match ns {
            0 => 1,
            v => 2 + (63 - v.leading_zeros() as usize),
        };
        if self.buckets.len() <= bucket {
            self.buckets.resize(bucket + 1, 0);
        }
        self.buckets[bucket] += 1;
    }

    /// The entry-to-return time at rank `p` (0..1), placed in its log2 bucket.
    pub fn percentile(&self, p: f64) -> u64 {
        let stats = uprobe_engine::Stats {
            count: self.returned,
            sum: i128::from(self.total_ns),
            min: 0,
            max: self.max_ns as i64,
            buckets: self.buckets.clone(),
        };
        crate::trace::summary::percentile(&stats, &uprobe_engine::Buckets::Log2, p).max(0) as u64
    }
}

/// A call on a thread's stack: its function, entry time and the time
/// spent in the calls it made.
struct Open {
    name: String,
    start: u128,
    children_ns: u64,
}

/// Calls and latency per function, from entry and return events.
#[derive(Default)]
pub struct Calls {
    pub per_function: HashMap<String, Tally>,
    /// Per thread: the functions entered and not yet returned.
    stacks: HashMap<(u32, u32), Vec<Open>>,
}

impl Calls {
    pub fn entry(&mut self, pid: u32, tid: u32, name: String, time_ns: u128) {
        self.per_function.entry(name.clone()).or_default().calls += 1;
        self.stacks.entry((pid, tid)).or_default().push(Open {
            name,
            start: time_ns,
            children_ns: 0,
        });
    }

    /// A return matches the innermost open entry of the same function on
    /// the thread; entries above it (whose returns were not seen) are dropped.
    pub fn exit(&mut self, pid: u32, tid: u32, name: &str, time_ns: u128) {
        let Some(stack) = self.stacks.get_mut(&(pid, tid)) else {
            return;
        };
        let Some(at) = stack.iter().rposition(|o| o.name == name) else {
            return;
        };
        let ns = time_ns.saturating_sub(stack[at].start) as u64;
        let self_ns = ns.saturating_sub(stack[at].children_ns);
        stack.truncate(at);
        if let Some(parent) = stack.last_mut() {
            parent.children_ns += ns;
        }
        if let Some(tally) = self.per_function.get_mut(name) {
            tally.add(ns, self_ns);
        }
    }

    /// Rows sorted by calls (or total time), most first, ties by name.
    pub fn rows(&self, by_time: bool, top: Option<usize>) -> Vec<(&str, &Tally)> {
        let mut rows: Vec<(&str, &Tally)> = self
            .per_function
            .iter()
            .map(|(n, t)| (n.as_str(), t))
            .collect();
        rows.sort_by(|a, b| {
            let key = |t: &&Tally| if by_time { t.total_ns } else { t.calls };
            key(&b.1).cmp(&key(&a.1)).then(a.0.cmp(b.0))
        });
        rows.truncate(top.unwrap_or(usize::MAX));
        rows
    }
}

fn print_table(
    out: &mut impl Write,
    calls: &Calls,
    latency: bool,
    top: Option<usize>,
    wide: bool,
) -> std::io::Result<()> {
    let rows = calls.rows(latency, top);
    let limit = if wide { usize::MAX } else { NAME_WIDTH };
    let rows: Vec<(std::borrow::Cow<str>, &Tally)> =
        rows.into_iter().map(|(n, t)| (fit(n, limit), t)).collect();
    let width = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(0)
        .max(8);
    if !latency {
        writeln!(out, "{:<width$} {:>10}", "FUNCTION", "CALLS")?;
        for (name, t) in &rows {
            writeln!(out, "{name:<width$} {:>10}", t.calls)?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<width$} {:>10} {:>14} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "FUNCTION", "CALLS", "TOTAL(us)", "SELF(us)", "MEAN(us)", "P50(us)", "P99(us)", "MAX(us)"
    )?;
    let us = |ns: u64| format!("{:.3}", ns as f64 / 1000.0);
    for (name, t) in &rows {
        let (mean, p50, p99, max) = if t.returned > 0 {
            (
                format!("{:.3}", t.total_ns as f64 / t.returned as f64 / 1000.0),
                us(t.percentile(0.5)),
                us(t.percentile(0.99)),
                us(t.max_ns),
            )
        } else {
            ("-".into(), "-".into(), "-".into(), "-".into())
        };
        writeln!(
            out,
            "{name:<width$} {:>10} {:>14} {:>12} {mean:>12} {p50:>12} {p99:>12} {max:>12}",
            t.calls,
            us(t.total_ns),
            us(t.self_ns),
        )?;
    }
    Ok(())
}

pub fn run(args: CallsArgs) -> Result<ExitCode, Failure> {
    let runtime = lang_bindings::Runtime::from_name(&args.scope.language)?;
    let (entry, exit) = runtime.call_events();
    let wanted: Vec<&str> = if args.latency {
        vec![entry, exit]
    } else {
        vec![entry]
    };
    if args.flame.wanted() && !args.latency {
        return Err(Failure::new(
            crate::status::Status::Usage,
            "--folded and --flamegraph need -L (stacks are built from entries and returns)",
        ));
    }
    // Counting calls needs no record per call: the kernel counts per name.
    // (`--serve` publishes as the calls come: it takes the record path.)
    if !args.latency && !args.scope.wants_timeline() && !crate::metrics::serving() {
        return count_in_kernel(&args, runtime, entry);
    }
    let mut timeline = args.scope.open_timeline()?;
    let mut stacks = args.flame.wanted().then(crate::pictures_out::call_stacks);
    let mut run = args.scope.open(&wanted)?;
    let mut calls = Calls::default();
    let code = run.each(|_, event| {
        let name = function_name(runtime, event);
        let entering = *event.name == *entry;
        if args.latency {
            super::slice(&mut timeline, event, entering, &name);
        } else if let Some(t) = &mut timeline {
            t.instant(event.time_ns, event.pid, event.tid, &event.comm, &name, &[]);
        }
        if let Some(s) = &mut stacks {
            let ts = event.time_ns.min(u128::from(u64::MAX)) as u64;
            if entering {
                s.entry(ts, event.pid, event.tid, &name);
            } else {
                s.ret(ts, event.pid, event.tid, Some(&name));
            }
        }
        if entering {
            calls.entry(event.pid, event.tid, name, event.time_ns);
        } else {
            calls.exit(event.pid, event.tid, &name, event.time_ns);
        }
        crate::metrics::publish_calls(&calls.per_function, args.latency);
        Ok(())
    });
    // The table comes after the command's own output, in one piece.
    let code = run.end_command(code);
    let mut table = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = print_table(&mut table, &calls, args.latency, args.top, args.wide);
    run.print(&table);
    let result = run.close(code);
    if let Some(mut s) = stacks {
        s.finish(None);
        let title = format!("{} calls by self time (ns)", args.scope.language);
        args.flame
            .write(&s.rows(), &title)
            .map_err(|e| Failure::new(crate::status::Status::Output, e))?;
    }
    args.scope.close_timeline(timeline, result)
}

/// `calls` without `-L`: calls per function counted in the kernel, keyed
/// by the entry event's name fields.
fn count_in_kernel(
    args: &CallsArgs,
    runtime: lang_bindings::Runtime,
    entry: &str,
) -> Result<ExitCode, Failure> {
    let mut run = args
        .scope
        .open_counting(&[entry], super::name_fields(runtime))?;
    let code = run.each(|_, _| Ok(()));
    let code = run.end_command(code);
    let mut calls = Calls::default();
    for (values, n) in run.counts().unwrap_or_default() {
        let name = super::function_name_of(runtime, &values);
        calls.per_function.entry(name).or_default().calls += n;
    }
    let mut table = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = print_table(&mut table, &calls, false, args.top, args.wide);
    run.print(&table);
    run.close(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_pairs_returns_with_entries_per_thread() {
        let mut c = Calls::default();
        c.entry(1, 1, "f".into(), 100);
        c.entry(1, 2, "f".into(), 110);
        c.entry(1, 1, "g".into(), 120);
        c.entry(1, 1, "h".into(), 125); // its return is lost
        c.exit(1, 1, "g", 150);
        c.exit(1, 1, "f", 200);
        c.exit(1, 2, "f", 111);
        c.exit(1, 1, "nothing", 300);
        let f = &c.per_function["f"];
        assert_eq!((f.calls, f.returned, f.total_ns), (2, 2, 101));
        // f on thread 1 ran 100 ns, 30 of them in g: 70 of its own, plus 1 on thread 2.
        assert_eq!(f.self_ns, 71);
        assert_eq!(f.max_ns, 100);
        assert_eq!(c.per_function["g"].total_ns, 30);
        assert_eq!(c.per_function["g"].self_ns, 30);
        assert_eq!(c.per_function["h"].returned, 0);
        let rows = c.rows(false, Some(2));
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), ["f", "g"]);
        assert_eq!(c.rows(true, None)[0].0, "f");
    }

    #[test]
    fn long_names_do_not_widen_every_row() {
        let mut c = Calls::default();
        let long = format!("Big.method({})V", "Ljava/lang/String;".repeat(20));
        c.entry(1, 1, long.clone(), 1);
        c.entry(1, 1, "Small.f()V".into(), 2);
        let mut out = Vec::new();
        print_table(&mut out, &c, false, None, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        for line in text.lines() {
            assert!(line.chars().count() <= NAME_WIDTH + 11, "{line}");
        }
        assert!(text.contains('…'), "{text}");
        let mut out = Vec::new();
        print_table(&mut out, &c, false, None, true).unwrap();
        assert!(String::from_utf8(out).unwrap().contains(&long));
    }
}
