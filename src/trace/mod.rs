//! `stap-sdt trace`: attach to SDT probes and functions in live processes
//! and print each hit, counts or a histogram.

mod backend;
pub(crate) mod child;
pub(crate) mod command;
pub(crate) mod latency;
mod output;
mod printf;
pub(crate) mod scope;
pub(crate) mod signals;
mod stacks;
pub(crate) mod summary;

use crate::status::{Failure, OutputArgs, Status};
use backend::Backend;
use clap::Args;
use output::Style;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use uprobe_engine::{AggSpec, AggValue, Filter, Selector, Session, SessionOptions, SiteRole};

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
  stap-sdt trace 'uretprobe:libc.so.6:malloc' --hist 0 --duration 5
  stap-sdt trace ./app:app:tick --count --by pid,'str(arg1)' --filter 'arg0 % 2 == 0'
  stap-sdt trace ./app:app:request__start --hist arg2 --linear 0,500,100 --by comm
  stap-sdt trace ./app:app:request__done --stack --source --filter 'arg1 != 200'
  stap-sdt trace ./app:app:tick --count --by ustack --flamegraph ticks.svg
  stap-sdt trace -p 1234 'python:function__entry' --timeline t.pftrace

Aggregations (--count, --hist) are built in the kernel: only the results cross to user \
space. See also `stap-sdt latency` (time from one probe to another).")]
pub struct TraceArgs {
    /// Probes to attach to.
    #[arg(value_name = "PROBE", required = true)]
    probes: Vec<String>,

    #[command(flatten)]
    scope: scope::ProcessScope,

    /// One JSON object per line.
    #[arg(long, conflicts_with = "format")]
    json: bool,

    /// Count hits per probe (or per --by key) in the kernel, no records; print at the end.
    #[arg(long, conflicts_with_all = ["hist", "format"])]
    count: bool,

    /// With --count or --hist: print the results every SECONDS too, each round
    /// stamped with the time.
    #[arg(long, value_name = "SECONDS")]
    interval: Option<f64>,

    /// Histogram of argument N (0-based; `arg3` or `3`) per probe (or per --by
    /// key), built in the kernel: log2 buckets (or --linear), count, sum, min,
    /// max, mean, p50, p90, p99.
    #[arg(long, value_name = "ARGN", conflicts_with = "format")]
    hist: Option<String>,

    /// Keep only the hits for which EXPR is true, evaluated in the kernel. EXPR is
    /// C-like: arg0..arg11, str(argN), pid, tid, cpu, comm, probe; integer and
    /// "string" literals; ! - ~ * / % + - << >> < <= > >= == != & ^ | && || ( ).
    /// Strings compare with == and != against a literal; `probe == "app:req*"` globs.
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,

    #[command(flatten)]
    agg: summary::AggArgs,

    #[command(flatten)]
    timeline: crate::pictures_out::TimelineArgs,

    /// With --count --by ustack: the stacks as folded lines and/or an SVG flame graph.
    #[command(flatten)]
    flame: crate::pictures_out::FlameArgs,

    /// Stop after SECONDS.
    #[arg(short = 'd', long, value_name = "SECONDS")]
    duration: Option<f64>,

    /// Print the user stack of each hit (walked in the kernel by frame pointers, up to
    /// FRAMES deep, default 32, at most 127), named from the process's symbols.
    #[arg(long, value_name = "FRAMES", num_args = 0..=1, default_missing_value = "32",
          value_parser = clap::value_parser!(u64).range(1..=127))]
    stack: Option<u64>,

    /// With --stack or --by ustack: also the source file and line of each frame (DWARF).
    #[arg(long)]
    source: bool,

    /// printf-like template per hit; `%s` arguments are fetched as strings.
    #[arg(long, value_name = "TEMPLATE")]
    format: Option<String>,

    /// Fetch argument N (0-based) as the C string it points to. Repeatable, or N,M.
    #[arg(long = "str", value_name = "N", value_delimiter = ',')]
    strings: Vec<usize>,

    /// Read at most BYTES of each string (with its NUL; up to 4096; default 512). Each
    /// record reserves this much ring room per string argument. With --count/--hist,
    /// the bytes of a string kept in a --by key (default 128).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(2..=4096))]
    str_max: Option<u64>,

    #[command(flatten)]
    out: OutputArgs,

    /// Trace without privileges, in the process itself: CMD (-c) starts with an agent
    /// preloaded that patches the cheap sites of the probes into calls (no BPF, no
    /// uprobes; measured: 6 ns per counted hit, 43 ns per record). Sites that are not
    /// cheap are named and left out. See docs/inprocess.md.
    #[arg(long, requires = "command")]
    in_process: bool,

    /// Pages of the ring buffer all CPUs share (a power of two; default 128 per CPU,
    /// perf record's 512 KiB, or 512 per CPU when records carry strings or stacks;
    /// with --in-process, of the shared ring: default 4096, 16 MiB). Raise it when
    /// events are reported lost.
    #[arg(
        long,
        value_name = "PAGES",
        default_value_t = 0,
        hide_default_value = true
    )]
    buffer_pages: usize,
}

/// `argN` or `N` (0..11) for `option`.
pub(crate) fn arg_option(option: &str, text: &str) -> Result<usize, String> {
    let named = if text.starts_with("arg") {
        text.to_string()
    } else {
        format!("arg{text}")
    };
    uprobe_engine::expr::arg_number(&named).ok_or_else(|| {
        format!("{option} `{text}`: expected an argument number 0..11 (or arg0..arg11)")
    })
}

pub fn run(args: TraceArgs) -> Result<ExitCode, Failure> {
    let template = args
        .format
        .as_deref()
        .map(printf::Template::parse)
        .transpose()?;
    let hist_arg = args
        .hist
        .as_deref()
        .map(|h| arg_option("--hist", h))
        .transpose()?;
    // Checked before anything is attached.
    args.timeline.counter_args()?;
    if let Some(bad) = args.strings.iter().find(|&&n| n >= 12) {
        return Err(format!("--str {bad}: arguments are numbered 0..11").into());
    }
    let aggregating = args.count || hist_arg.is_some();
    if !aggregating && (!args.agg.by.is_empty() || args.agg.top.is_some()) {
        return Err("--by and --top go with --count or --hist".into());
    }
    if args.agg.linear.is_some() && hist_arg.is_none() {
        return Err("--linear goes with --hist".into());
    }
    if args.interval.is_some() && !aggregating {
        return Err("--interval goes with --count or --hist".into());
    }
    let filter = parse_filter(args.filter.as_deref())?;
    let value = match hist_arg {
        Some(n) => AggValue::Arg(n),
        None => AggValue::Count,
    };
    let spec = aggregating
        .then(|| {
            args.agg
                .spec(value, key_string_bytes(&args.str_max.map(|n| n as usize)))
        })
        .transpose()?;
    let mut strings = args.strings.clone();
    strings.extend(
        template
            .as_ref()
            .map(|t| t.string_args())
            .unwrap_or_default(),
    );
    let options = SessionOptions {
        strings,
        filter,
        max_keys: args.agg.max_keys,
        aggregate: spec.clone(),
        ring_pages: args.buffer_pages,
        stack_frames: args.stack.unwrap_or(0) as usize,
        string_bytes: if aggregating {
            key_string_bytes(&args.str_max.map(|n| n as usize))
        } else {
            args.str_max.unwrap_or(512) as usize
        },
        ..SessionOptions::default()
    };
    let output = match spec {
        Some(spec) => Output::Aggregate {
            value_name: match value {
                AggValue::Arg(n) => format!("arg{n}"),
                _ => "count".into(),
            },
            spec,
            top: args.agg.top,
        },
        None => Output::Events(if args.json {
            Style::Json(Default::default())
        } else if let Some(t) = template {
            Style::Template(t)
        } else {
            Style::Human
        }),
    };
    let probes: Vec<(String, SiteRole)> = args
        .probes
        .iter()
        .map(|p| (p.clone(), SiteRole::Hit))
        .collect();
    if args.stack.is_some() && aggregating {
        return Err("--stack prints a stack per hit; to count stacks use --by ustack".into());
    }
    // Arguments each probe must have: --str, and the --format conversions.
    let mut wanted_args: Vec<(usize, String)> = args
        .strings
        .iter()
        .map(|&n| (n, format!("--str {n}")))
        .collect();
    if let Output::Events(Style::Template(t)) = &output {
        wanted_args.extend(t.args().into_iter().map(|n| (n, "--format".to_string())));
    }
    if args.flame.wanted() && !args.agg.keys()?.contains(&uprobe_engine::KeyPart::Ustack) {
        return Err(Failure::new(
            Status::Usage,
            "--folded and --flamegraph draw stacks: use them with --count --by ustack",
        ));
    }
    drive(Run {
        pairs: None,
        out: args.out,
        timeline: args.timeline,
        flame: args.flame,
        wanted_args,
        scope: args.scope,
        probes,
        options,
        output,
        json: args.json,
        duration: args.duration,
        interval: args.interval,
        source_lines: args.source,
        in_process: args.in_process,
    })
}

/// Bytes of a string in an aggregation key (with its NUL): `--str-max`, or 128.
fn key_string_bytes(given: &Option<usize>) -> usize {
    given.unwrap_or(128).clamp(8, 4096).next_multiple_of(8)
}

pub(crate) fn parse_filter(text: Option<&str>) -> Result<Option<Filter>, String> {
    text.map(|t| Filter::parse(t).map_err(|e| format!("--filter: {e}")))
        .transpose()
}

/// What a run prints.
pub(crate) enum Output {
    /// A line per hit.
    Events(Style),
    /// Results aggregated in the kernel, printed at the end (and each --interval).
    Aggregate {
        spec: AggSpec,
        top: Option<usize>,
        value_name: String,
    },
}

/// One tracing run: probes with their roles, for a scope, until Ctrl-C, the
/// duration, or the end of the traced process.
pub(crate) struct Run {
    /// `latency --timeline`: START→END pairs made in user space.
    pub pairs: Option<latency::Pairs>,
    pub out: OutputArgs,
    /// `--timeline`: each hit an instant (or each START→END a slice).
    pub timeline: crate::pictures_out::TimelineArgs,
    /// `--folded`/`--flamegraph` of the `ustack` key.
    pub flame: crate::pictures_out::FlameArgs,
    /// Arguments every probe must have, with the option that asks for each.
    pub wanted_args: Vec<(usize, String)>,
    pub scope: scope::ProcessScope,
    pub probes: Vec<(String, SiteRole)>,
    pub options: SessionOptions,
    pub output: Output,
    pub json: bool,
    pub duration: Option<f64>,
    pub interval: Option<f64>,
    /// Stack frames named with their source file and line.
    pub source_lines: bool,
    /// Carried out by the in-process agent instead of the kernel.
    pub in_process: bool,
}

pub(crate) fn drive(run: Run) -> Result<ExitCode, Failure> {
    let mut watch = run.scope.command.as_deref().map(command::CommandWatch::new);
    // (selector, the spelling it came from, role): `-c` binds bare
    // selectors to the command's objects, one selector each.
    let mut selectors: Vec<(Selector, &String, SiteRole)> = Vec::new();
    for (text, role) in &run.probes {
        let selector = Selector::parse(text).map_err(|e| Failure::engine(None, &e))?;
        match &watch {
            Some(w) => selectors.extend(w.bind(selector)?.into_iter().map(|s| (s, text, *role))),
            None => selectors.push((selector, text, *role)),
        }
    }
    // Open the outputs before anything is attached or started.
    let out = run.out.open()?;
    let mut timeline = run
        .timeline
        .open()
        .map_err(|e| Failure::new(Status::Usage, e))?;

    signals::install();
    let in_process = if run.in_process {
        Some(backend::in_process_setup(run.scope.command.as_deref())?)
    } else {
        None
    };
    let (mut child, target) = match &in_process {
        Some((_, setup)) => run.scope.start_with(setup)?,
        None => run.scope.start()?,
    };
    // Frames a stack may have: what --stack asked, or the kernel's most.
    let stack_depth = match run.options.stack_frames {
        0 => 127,
        n => n,
    };
    // Without privileges, the kernel backend's failure also names the way
    // that needs none (for one's own programs with cheap sites).
    let engine = |e: uprobe_engine::Error| {
        let mut failure = Failure::engine(None, &e);
        if matches!(e, uprobe_engine::Error::Privileges) {
            failure.message.push_str(
                "; a program of your own with cheap sites can be traced without them: \
                 stap-sdt trace --in-process -c CMD (docs/inprocess.md)",
            );
        }
        failure
    };
    let mut session = match in_process {
        Some((shared, _)) => {
            let pid = child.as_ref().map_or(0, |c| c.pid());
            Backend::InProcess(Box::new(
                uprobe_engine::inproc::InProcess::new(shared, pid, run.options).map_err(engine)?,
            ))
        }
        None => {
            let mut kernel = Session::new(target, run.options).map_err(engine)?;
            kernel.stop_attaching_when(|| signals::received().is_some());
            Backend::Kernel(Box::new(kernel))
        }
    };
    let deferred = session.defer_bare_selectors(&run.probes);
    let mut traced = Vec::new();
    for (selector, text, role) in &selectors {
        let attached = session.attach_as(selector, *role);
        if let Err(e) = &attached {
            if deferred.contains(text) && Failure::engine(None, e).status == Status::NoMatch {
                // Nothing yet in the command's objects: maybe in later ones.
                continue;
            }
        }
        let reports = attached.map_err(|e| {
            let mut failure = Failure::engine(Some(text), &e);
            if failure.status == Status::NoMatch {
                if let Some(hint) = hint_for(selector, run.scope.pid) {
                    failure.message = format!("{}; {hint}", failure.message);
                }
            }
            failure
        })?;
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
        traced.extend(reports.iter().map(|r| r.path.clone()));
    }
    // Sites planned (the in-process backend leaves out, and names, the
    // sites it cannot patch).
    let locations = session.probes().len();
    // Arguments a probe does not have are a mistake, not `<unavailable>`.
    for site in session.probes() {
        for (n, option) in &run.wanted_args {
            if site.args.get(*n).is_none() {
                let why = uprobe_engine::lower::filter::check_arg(site, *n, false)
                    .err()
                    .unwrap_or_default();
                return Err(format!("{option}: {why}").into());
            }
        }
    }
    // CPython 3.11 fires function__entry only while its `line` probe's
    // semaphore is raised: raise it too (counted in the kernel, not shown).
    let line_gate = match session.kernel() {
        Some(kernel) => python_line_gate(kernel, target, &run.out)?,
        None => None,
    };
    if let Some(w) = &mut watch {
        w.check_start(&traced);
    }
    session.start().map_err(engine)?;
    run.out.note(format_args!(
        "Tracing {locations} location{} of {} probe spec{}{}. Ctrl-C to end.",
        if locations == 1 { "" } else { "s" },
        run.probes.len(),
        if run.probes.len() == 1 { "" } else { "s" },
        if deferred.is_empty() {
            ""
        } else {
            ", and in the objects the command loads later"
        }
    ));
    if let Some(c) = &mut child {
        c.release();
    }
    if let Backend::InProcess(s) = &mut session {
        if !s.wait_loaded(Duration::from_secs(2)) {
            eprintln!(
                "stap-sdt: the in-process agent did not load in `{}` within 2 s (a static or \
                 set-user-ID program ignores LD_PRELOAD): nothing is traced in it",
                run.scope.command.as_deref().unwrap_or("")
            );
        }
    }
    if let Some(why) = session.agent_error() {
        eprintln!("stap-sdt: {why}");
    }

    let deadline = run
        .duration
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let interval = run.interval.map(Duration::from_secs_f64);
    let mut next_interval = interval.map(|i| Instant::now() + i);
    let mut stack_names = stacks::StackNames::new(run.source_lines, stack_depth);
    let counts_stacks = matches!(&run.output, Output::Aggregate { spec, .. } if spec.keys.contains(&uprobe_engine::KeyPart::Ustack));
    let (style, aggregate) = match run.output {
        // Pairs made in user space are printed as aggregates, no lines.
        Output::Aggregate {
            spec,
            top,
            value_name,
        } if run.pairs.is_some() => (None, Some((spec, top, value_name))),
        Output::Events(style) => (Some(style), None),
        Output::Aggregate {
            spec,
            top,
            value_name,
        } => (None, Some((spec, top, value_name))),
    };
    let output_name = out.name;
    let mut sink = Sink {
        out: out.writer,
        style,
        write_error: None,
        hits: 0,
        timeline: timeline.take(),
        pairs: run.pairs,
        counters: run
            .timeline
            .counter_args()
            .map_err(|e| Failure::new(Status::Usage, e))?,
        roles: session.roles().to_vec(),
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
        } else if let Some(pid) = run.scope.pid {
            stop |= !scope::process_alive(pid);
        }
        if stop {
            // Nothing recorded from here on: the last poll takes what is left.
            session.stop();
        }
        let wait_ms = if stop {
            0
        } else {
            signals::poll_wait_ms(deadline)
        };
        session.poll(wait_ms, |event| sink.take(event, &mut stack_names));
        for warning in session.take_warnings() {
            eprintln!("stap-sdt: {warning}");
        }
        sink.flush();
        if let (Some((spec, _, name)), Some(kernel)) = (&aggregate, session.kernel()) {
            crate::metrics::publish_session(kernel, spec, name);
        }
        if counts_stacks && !stop {
            // Stacks are named at the end: snapshot the maps of their
            // processes while they run.
            for row in session.aggregates() {
                for key in &row.key {
                    if let uprobe_engine::KeyValue::Stack { pid, .. } = key {
                        stack_names.remember(*pid);
                    }
                }
            }
        }
        if let (Some(i), Some(at), Some((spec, top, name))) = (interval, next_interval, &aggregate)
        {
            if Instant::now() >= at && !stop && sink.write_error.is_none() {
                let rows = sink.rows(&session);
                let round = Round {
                    spec,
                    top: *top,
                    name,
                    json: run.json,
                    stamped: true,
                };
                sink.print_round(rows, &round, &mut stack_names);
                next_interval = Some(at + i);
            }
        }
        if stop || sink.write_error.is_some() {
            break;
        }
    }
    let hits = sink.hits;
    let mut aggregated = false;
    if let Some((spec, top, name)) = &aggregate {
        let rows = sink.rows(&session);
        aggregated = rows.iter().any(|r| r.stats.count > 0);
        if sink.write_error.is_none() {
            let round = Round {
                spec,
                top: *top,
                name,
                json: run.json,
                stamped: false,
            };
            sink.print_round(rows, &round, &mut stack_names);
        }
    }
    if let (Some((spec, ..)), true) = (&aggregate, run.flame.wanted()) {
        let rows = flame_rows(&session, spec, &mut stack_names);
        if rows.is_empty() {
            eprintln!("stap-sdt: --folded/--flamegraph: no stacks (they need --by ustack)");
        }
        run.flame
            .write(&rows, "stap-sdt stacks")
            .map_err(|e| Failure::new(Status::Output, e))?;
    }
    let write_error = sink.write_error.take();
    let timeline = sink.timeline.take();
    // A BufWriter flushes what it holds when dropped; after a failed write
    // that could only fail again.
    let _ = sink.out.into_parts();
    if let Some(t) = timeline {
        t.finish(run.out.quiet)
            .map_err(|e| Failure::new(Status::Output, e))?;
    }
    if let Some(w) = &watch {
        if hits == 0 && !aggregated {
            w.report_no_hits();
        }
    }
    let lost = session.lost();
    let lost_keys = session.lost_keys();
    drop(session);
    drop(line_gate);
    if lost > 0 {
        eprintln!("stap-sdt: {lost} events lost (ring buffer full; raise --buffer-pages)");
    }
    if lost_keys > 0 {
        eprintln!("stap-sdt: {lost_keys} hits lost: the key map was full (raise --max-keys)");
    }
    // The probes are detached: now the outcome.
    if let Some(error) = write_error {
        return Err(Failure::new(
            Status::Output,
            format!("writing to {output_name}: {error}; detached"),
        ));
    }
    if let (Some(signal), Some(command)) = (ended_by, &run.scope.command) {
        run.out.note(format_args!(
            "stap-sdt: ended `{command}` with signal {signal} (status {})",
            exit_code.map_or("unknown".to_string(), |c| c.to_string())
        ));
        return Ok(ExitCode::SUCCESS);
    }
    if let (Some(code), Some(command)) = (exit_code, &run.scope.command) {
        run.out.note(format_args!(
            "stap-sdt: `{command}` exited with status {code}"
        ));
        return Ok(ExitCode::from(code.clamp(0, 255) as u8));
    }
    Ok(ExitCode::SUCCESS)
}

/// "did you mean …?" for a USDT selector that matched nothing: the nearest
/// `PROVIDER:NAME`s of the objects it names.
fn hint_for(selector: &Selector, pid: Option<u32>) -> Option<String> {
    let Selector::Usdt {
        path,
        provider,
        name,
    } = selector
    else {
        return None;
    };
    let objects = match path {
        Some(p) => {
            let file = stapsdt_reader::resolve::object_path(p, pid).ok()?;
            stapsdt_reader::read_path(&file).ok()?
        }
        None => {
            stapsdt_reader::process::read_process(pid?, &Default::default())
                .ok()?
                .0
        }
    };
    let names = crate::suggest::probe_names(&objects);
    if names.is_empty() {
        return Some(match path {
            Some(p) => format!("{p} has no SDT probes"),
            None => "the process maps no object with SDT probes".into(),
        });
    }
    crate::suggest::hint(&format!("{}:{}", provider.as_str(), name.as_str()), &names)
}

/// With `python:function__entry` traced in an object that also has
/// `python:line`, a counting session on `line`: CPython 3.11 (Debian's)
/// fires `function__entry` for ordinary functions only while the `line`
/// semaphore is raised. Kept until the probes are detached.
fn python_line_gate(
    session: &Session,
    target: uprobe_engine::Target,
    out: &OutputArgs,
) -> Result<Option<Session>, Failure> {
    let mut paths: Vec<std::path::PathBuf> = session
        .probes()
        .filter(|p| p.label == "python:function__entry")
        .map(|p| p.path.clone())
        .collect();
    paths.sort();
    paths.dedup();
    if paths.is_empty() {
        return Ok(None);
    }
    let options = SessionOptions {
        count_only: true,
        ..SessionOptions::default()
    };
    let mut gate = Session::new(target, options).map_err(|e| Failure::engine(None, &e))?;
    gate.stop_attaching_when(|| signals::received().is_some());
    let mut gated = Vec::new();
    for path in paths {
        let selector = Selector::Usdt {
            path: Some(path.display().to_string()),
            provider: stapsdt_reader::filter::Glob::new("python"),
            name: stapsdt_reader::filter::Glob::new("line"),
        };
        if gate.attach(&selector).is_ok() {
            gated.push(path.display().to_string());
        }
    }
    if gated.is_empty() {
        return Ok(None);
    }
    gate.start().map_err(|e| Failure::engine(None, &e))?;
    out.note(format_args!(
        "stap-sdt: also raising python:line's semaphore in {} (CPython 3.11 fires \
         function__entry only while it is raised; its hits are not shown)",
        gated.join(", ")
    ));
    Ok(Some(gate))
}

/// One printing of an aggregate: at an interval (stamped) or at the end.
struct Round<'a> {
    spec: &'a AggSpec,
    top: Option<usize>,
    name: &'a str,
    json: bool,
    stamped: bool,
}

const ARG_NAMES: [&str; 12] = [
    "arg0", "arg1", "arg2", "arg3", "arg4", "arg5", "arg6", "arg7", "arg8", "arg9", "arg10",
    "arg11",
];

/// The `ustack` rows of an aggregate as flame graph stacks (outermost frame
/// first, the other keys' values on top), by hits.
fn flame_rows(
    session: &Backend,
    spec: &AggSpec,
    stacks: &mut stacks::StackNames,
) -> Vec<(Vec<String>, u64)> {
    if !spec.keys.contains(&uprobe_engine::KeyPart::Ustack) {
        return Vec::new();
    }
    session
        .aggregates()
        .into_iter()
        .map(|row| {
            let mut frames = Vec::new();
            let mut others = Vec::new();
            for key in &row.key {
                match key {
                    uprobe_engine::KeyValue::Stack { pid, ips } => {
                        let named = stacks.symbolize(*pid, ips);
                        frames.extend(
                            uprobe_engine::stacks::folded(&named)
                                .split(';')
                                .map(String::from),
                        );
                    }
                    uprobe_engine::KeyValue::Probe(s) | uprobe_engine::KeyValue::Str(s) => {
                        others.push(s.clone())
                    }
                    uprobe_engine::KeyValue::Int(n) => others.push(n.to_string()),
                }
            }
            frames.extend(others);
            (frames, row.stats.count)
        })
        .collect()
}

/// Where hits go: printed lines.
struct Sink<W: Write> {
    out: W,
    style: Option<Style>,
    pairs: Option<latency::Pairs>,
    /// `--counter`: arguments drawn as counter tracks.
    counters: Vec<usize>,
    /// Each site's role (for pairs).
    roles: Vec<SiteRole>,
    timeline: Option<crate::pictures_out::Timeline>,
    /// The first failed write (e.g. a full disk, a pipe to `head` closed):
    /// stop tracing.
    write_error: Option<std::io::Error>,
    /// Events delivered.
    hits: u64,
}

impl<W: Write> Sink<W> {
    /// Print `rows` as one round (after the time stamp of an interval).
    fn print_round(
        &mut self,
        rows: Vec<uprobe_engine::AggRow>,
        round: &Round,
        stacks: &mut stacks::StackNames,
    ) {
        let stamp = if round.stamped {
            summary::interval_stamp(&mut self.out, round.json)
        } else {
            Ok(())
        };
        let result = stamp.and_then(|_| {
            summary::Printer {
                spec: round.spec,
                json: round.json,
                top: round.top,
                value_name: round.name.to_string(),
                stacks,
            }
            .print(&mut self.out, rows)
        });
        let result = result.and_then(|_| self.out.flush());
        self.note(result);
    }

    /// The aggregate so far: from the kernel, or from pairs made here.
    fn rows(&self, session: &Backend) -> Vec<uprobe_engine::AggRow> {
        match &self.pairs {
            Some(p) => p.rows(),
            None => session.aggregates(),
        }
    }

    fn take(&mut self, event: &uprobe_engine::Event, stacks: &mut stacks::StackNames) {
        self.hits += 1;
        if let Some(pairs) = &mut self.pairs {
            let start = matches!(
                self.roles.get(event.probe.index),
                Some(SiteRole::Start { .. })
            );
            if let Some((began, ns, label)) = pairs.take(event, start) {
                if let Some(t) = &mut self.timeline {
                    t.complete(began, ns, event.pid, event.tid, &label);
                }
            }
            return;
        }
        if let Some(t) = &mut self.timeline {
            for &n in &self.counters {
                if let Some(v) = event.args.get(n).and_then(|v| v.as_i128()) {
                    t.counter(
                        event.time_ns,
                        event.pid,
                        &format!("{} arg{n}", event.probe.label),
                        v as f64,
                    );
                }
            }
            let args: Vec<(&str, crate::timeline::ArgValue)> = event
                .args
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    Some((ARG_NAMES[i.min(11)], crate::pictures_out::arg_value(v)?))
                })
                .collect();
            t.instant(
                event.time_ns,
                event.pid,
                event.tid,
                event.comm,
                &event.probe.label,
                &args,
            );
        }
        let Some(style) = &mut self.style else {
            return;
        };
        if self.write_error.is_some() {
            return;
        }
        let frames = (!event.ustack.is_empty()).then(|| stacks.frames(event.pid, &event.ustack));
        let result = output::write_event(&mut self.out, style, event, frames.as_deref());
        self.note(result);
    }

    fn note(&mut self, result: std::io::Result<()>) {
        if let Err(e) = result {
            self.write_error.get_or_insert(e);
        }
    }

    fn flush(&mut self) {
        let result = self.out.flush();
        self.note(result);
    }
}
