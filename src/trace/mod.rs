//! `stap-sdt trace`: attach to SDT probes and functions in live processes
//! and print each hit, counts or a histogram.

pub(crate) mod child;
pub(crate) mod command;
mod output;
mod printf;
pub(crate) mod scope;
pub(crate) mod signals;
mod summary;

use clap::Args;
use output::Style;
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use uprobe_engine::{Selector, Session, SessionOptions};

#[derive(Args, Debug)]
#[command(after_help = "\
PROBE spellings: PATH:PROVIDER:NAME (globs in PROVIDER and NAME), usdt:PATH:PROVIDER:NAME, \
PATH:fn:SYMBOL, PATH:fn:SYMBOL%return, uprobe:PATH:SYMBOL, uretprobe:PATH:SYMBOL, and with \
-p also PROVIDER:NAME (every object the process maps). PATH is a file or a library/program \
name (libpython3.11.so, libc.so.6) found in the process's maps, the loader cache or PATH.

With -c CMD, PROVIDER:NAME means the objects of the command's program (CMD's first word, \
found through PATH as the shell finds it; CMD must be a simple command running an ELF \
program): the program and the libraries it needs (DT_NEEDED) that have a matching probe. \
Before it starts, one warning when CMD's program is a script (#!, e.g. a pyenv shim) or \
another program than the one probed; after a run without hits, one line when the command \
never mapped the probed files, naming what it ran. SIGTERM and SIGHUP of the tracer are \
passed on to the command (SIGKILL after 5 s); the tracer then detaches and exits 0.

Each line: time (UTC), pid, tid, command, probe, arguments (arg0..arg11) fetched in the \
kernel at the hit by a BPF program built for the probe's argument layout (every x86 operand \
form, including base+index*scale and sym(%rip)); strings are copied at the hit too, faulting \
in pages the process never touched. Lines come in time order across CPUs. An argument whose \
operand cannot be fetched is named at attach time and shown as <unavailable>; memory that \
cannot be read at the hit is <fault>. Function probes show the six \
argument registers (entry) or the return value.

Examples:
  stap-sdt trace -p 1234 'python:function__entry' --str 0 --str 1
  stap-sdt trace -c 'python3.11 -c \"print(1)\"' 'libpython3.11.so:python:*' --count
  stap-sdt trace /usr/lib/postgresql/15/bin/postgres:postgresql:query__start --format '%s' 
  stap-sdt trace 'uretprobe:libc.so.6:malloc' --hist 0 --duration 5")]
pub struct TraceArgs {
    /// Probes to attach to.
    #[arg(value_name = "PROBE", required = true)]
    probes: Vec<String>,

    #[command(flatten)]
    scope: scope::ProcessScope,

    /// One JSON object per line.
    #[arg(long, conflicts_with = "format")]
    json: bool,

    /// Count hits per probe (in the kernel, no records); print at the end.
    #[arg(long, conflicts_with_all = ["hist", "format"])]
    count: bool,

    /// With --count: print the counts every SECONDS too.
    #[arg(long, value_name = "SECONDS", requires = "count")]
    interval: Option<f64>,

    /// log2 histogram of argument N (0-based; `arg3` or `3`) per probe.
    #[arg(long, value_name = "ARGN", conflicts_with = "format")]
    hist: Option<String>,

    /// Stop after SECONDS.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,

    /// printf-like template per hit; `%s` arguments are fetched as strings.
    #[arg(long, value_name = "TEMPLATE")]
    format: Option<String>,

    /// Fetch argument N (0-based) as the C string it points to. Repeatable, or N,M.
    #[arg(long = "str", value_name = "N", value_delimiter = ',')]
    strings: Vec<usize>,

    /// Read at most BYTES of each string (with its NUL; up to 4096). Each record
    /// reserves this much ring room per string argument.
    #[arg(long, value_name = "BYTES", default_value_t = 512, value_parser = clap::value_parser!(u64).range(2..=4096))]
    str_max: u64,

    /// Pages of the ring buffer all CPUs share (a power of two; default 1024 per CPU).
    #[arg(
        long,
        value_name = "PAGES",
        default_value_t = 0,
        hide_default_value = true
    )]
    buffer_pages: usize,
}

fn arg_number(text: &str) -> Result<usize, String> {
    let n = text.strip_prefix("arg").unwrap_or(text);
    match n.parse::<usize>() {
        Ok(n) if n < 12 => Ok(n),
        _ => Err(format!(
            "--hist `{text}`: expected an argument number 0..11 (or arg0..arg11)"
        )),
    }
}

pub fn run(args: TraceArgs) -> Result<ExitCode, String> {
    let template = args
        .format
        .as_deref()
        .map(printf::Template::parse)
        .transpose()?;
    let hist_arg = args.hist.as_deref().map(arg_number).transpose()?;
    if let Some(bad) = args.strings.iter().find(|&&n| n >= 12) {
        return Err(format!("--str {bad}: arguments are numbered 0..11"));
    }
    let mut watch = args
        .scope
        .command
        .as_deref()
        .map(command::CommandWatch::new);
    // (selector, the spelling it came from): `-c` binds bare selectors to
    // the command's objects, one selector each.
    let mut selectors: Vec<(Selector, &String)> = Vec::new();
    for text in &args.probes {
        let selector = Selector::parse(text).map_err(|e| e.to_string())?;
        match &watch {
            Some(w) => selectors.extend(w.bind(selector)?.into_iter().map(|s| (s, text))),
            None => selectors.push((selector, text)),
        }
    }
    let mut strings = args.strings.clone();
    strings.extend(
        template
            .as_ref()
            .map(|t| t.string_args())
            .unwrap_or_default(),
    );
    let options = SessionOptions {
        strings,
        only_args: hist_arg.map(|n| vec![n]),
        count_only: args.count,
        ring_pages: args.buffer_pages,
        string_bytes: args.str_max as usize,
    };

    signals::install();
    let (mut child, target) = args.scope.start()?;
    let mut session = Session::new(target, options).map_err(|e| e.to_string())?;
    session.stop_attaching_when(|| signals::received().is_some());
    let mut locations = 0;
    let mut traced = Vec::new();
    for (selector, text) in &selectors {
        let reports = session
            .attach(selector)
            .map_err(|e| format!("{text}: {e}"))?;
        for report in &reports {
            for warning in &report.warnings {
                eprintln!(
                    "stap-sdt: {} at {}+0x{:x}: {warning}",
                    report.label,
                    report.path.display(),
                    report.offset
                );
            }
        }
        locations += reports.len();
        traced.extend(reports.iter().map(|r| r.path.clone()));
    }
    if let Some(w) = &mut watch {
        w.check_start(&traced);
    }
    session.start().map_err(|e| e.to_string())?;
    eprintln!(
        "Tracing {locations} location{} of {} probe spec{}. Ctrl-C to end.",
        if locations == 1 { "" } else { "s" },
        args.probes.len(),
        if args.probes.len() == 1 { "" } else { "s" }
    );
    if let Some(c) = &mut child {
        c.release();
    }

    let style = if args.json {
        Style::Json(Default::default())
    } else if let Some(t) = template {
        Style::Template(t)
    } else {
        Style::Human
    };
    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let interval = args.interval.map(Duration::from_secs_f64);
    let mut next_interval = interval.map(|i| Instant::now() + i);
    let stdout = std::io::stdout();
    let mut sink = Sink {
        out: BufWriter::with_capacity(1 << 16, stdout.lock()),
        style,
        hist_arg,
        hists: BTreeMap::new(),
        write_failed: false,
        hits: 0,
    };
    let mut exit_code = None;
    let mut ended_by = None;
    loop {
        let mut stop =
            signals::received().is_some() || deadline.is_some_and(|d| Instant::now() >= d);
        if let Some(c) = &mut child {
            if let (Some(w), None) = (&mut watch, c.exit_code()) {
                w.observe(c.pid());
            }
            exit_code = c.exit_code();
            stop |= exit_code.is_some();
            if let Some(signal) = signals::received().filter(|&s| signals::forwarded(s)) {
                if exit_code.is_none() {
                    exit_code = c.end_with(signal, signals::CHILD_EXIT_LIMIT);
                    ended_by = Some(signal);
                }
            }
        } else if let Some(pid) = args.scope.pid {
            stop |= !scope::process_alive(pid);
        }
        if stop {
            // Nothing recorded from here on: the last poll takes what is left.
            session.stop();
        }
        session.poll(if stop { 0 } else { 100 }, |event| sink.take(event));
        sink.flush();
        if let (Some(i), Some(at)) = (interval, next_interval) {
            if Instant::now() >= at {
                summary::print_counts(&totals(&session), args.json);
                next_interval = Some(at + i);
            }
        }
        if stop || sink.write_failed {
            break;
        }
    }
    let hists = std::mem::take(&mut sink.hists);
    let hits = sink.hits;
    drop(sink);
    let counted: u64 = totals(&session).values().sum();
    if args.count {
        summary::print_counts(&totals(&session), args.json);
    }
    if let Some(w) = &watch {
        if hits == 0 && counted == 0 && hists.is_empty() {
            w.report_no_hits();
        }
    }
    for (label, hist) in &hists {
        hist.print(&format!("{label} arg{}", hist_arg.unwrap_or(0)));
    }
    let lost = session.lost();
    drop(session);
    if lost > 0 {
        eprintln!("stap-sdt: {lost} events lost (ring buffer full; raise --buffer-pages)");
    }
    if let (Some(signal), Some(command)) = (ended_by, &args.scope.command) {
        eprintln!(
            "stap-sdt: ended `{command}` with signal {signal} (status {})",
            exit_code.map_or("unknown".to_string(), |c| c.to_string())
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let (Some(code), Some(command)) = (exit_code, &args.scope.command) {
        eprintln!("stap-sdt: `{command}` exited with status {code}");
        return Ok(ExitCode::from(code.clamp(0, 255) as u8));
    }
    Ok(ExitCode::SUCCESS)
}

/// Where hits go: printed lines, or a histogram.
struct Sink<W: Write> {
    out: W,
    style: Style,
    hist_arg: Option<usize>,
    hists: BTreeMap<String, summary::Log2Hist>,
    /// Output closed (e.g. a pipe to `head`): stop tracing.
    write_failed: bool,
    /// Events delivered.
    hits: u64,
}

impl<W: Write> Sink<W> {
    fn take(&mut self, event: &uprobe_engine::Event) {
        self.hits += 1;
        if let Some(n) = self.hist_arg {
            if let Some(v) = event.args.get(n).and_then(|v| v.as_i128()) {
                self.hists
                    .entry(event.probe.label.clone())
                    .or_default()
                    .add(v);
            }
        } else if !self.write_failed
            && output::write_event(&mut self.out, &mut self.style, event).is_err()
        {
            self.write_failed = true;
        }
    }

    fn flush(&mut self) {
        if self.out.flush().is_err() {
            self.write_failed = true;
        }
    }
}

fn totals(session: &Session) -> BTreeMap<String, u64> {
    let mut totals = BTreeMap::new();
    for (probe, n) in session.counts() {
        *totals.entry(probe.label.clone()).or_insert(0) += n;
    }
    totals
}
