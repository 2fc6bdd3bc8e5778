//! Runtime views on the tapsets of `lang-bindings`: `calls` (per-function
//! counts and latency, like bcc's ucalls), `flow` (indented call flow, like
//! bcc's uflow) and `tapsets` (what is available here).

pub mod calls;
pub mod events;
pub mod flow;
pub mod tapsets;

use crate::status::{Failure, Out, OutputArgs, Status};
use crate::trace::scope::ProcessScope;
use crate::trace::{child, command::CommandWatch, signals};
use clap::Args;
use lang_bindings::{discover, jdk, NamedEvent, Runtime, RuntimeObject, Tracer};
use stapsdt_reader::filter::Glob;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Which runtime, and whose processes.
#[derive(Args, Debug)]
pub struct Scope {
    /// Language runtime: python, java or perl.
    #[arg(short = 'l', long = "language", value_name = "LANG")]
    language: String,

    /// -p PID (found: its executable or the mapped libpython*.so /
    /// libjvm.so / libperl.so carrying the probes), -c CMD, or every process.
    #[command(flatten)]
    processes: ProcessScope,

    /// Stop after SECONDS.
    #[arg(short = 'd', long, value_name = "SECONDS")]
    duration: Option<f64>,

    /// Pages of the ring buffer all CPUs share (a power of two; default 512 per CPU
    /// when events carry strings, 128 otherwise); raise it when events are
    /// reported lost.
    #[arg(
        long,
        value_name = "PAGES",
        default_value_t = 0,
        hide_default_value = true
    )]
    buffer_pages: usize,

    #[command(flatten)]
    pub out: OutputArgs,

    #[command(flatten)]
    pub timeline: crate::pictures_out::TimelineArgs,

    /// Keep only the hits whose probe arguments satisfy EXPR, evaluated in the kernel
    /// (the language of `trace --filter`: arg0..arg11, str(argN), pid, tid, comm,
    /// probe == "GLOB", ...), e.g. --where 'pid == 1234 && probe == "*entry"'.
    #[arg(long = "where", value_name = "EXPR")]
    pub predicate: Option<String>,
}

impl Scope {
    /// The `--timeline` writer, opened before anything is attached.
    /// Whether `--timeline` was asked for.
    pub fn wants_timeline(&self) -> bool {
        self.timeline.timeline.is_some()
    }

    pub fn open_timeline(&self) -> Result<Option<crate::pictures_out::Timeline>, Failure> {
        self.timeline
            .open()
            .map_err(|e| Failure::new(Status::Usage, e))
    }

    /// Finish the timeline, if any (an error is the run's failure).
    pub fn close_timeline(
        &self,
        timeline: Option<crate::pictures_out::Timeline>,
        result: Result<ExitCode, Failure>,
    ) -> Result<ExitCode, Failure> {
        match timeline.map(|t| t.finish(self.out.quiet)) {
            Some(Err(e)) => Err(Failure::new(Status::Output, e)),
            _ => result,
        }
    }
}

/// A function entry or return as timeline slices.
pub fn slice(
    timeline: &mut Option<crate::pictures_out::Timeline>,
    event: &NamedEvent,
    entering: bool,
    name: &str,
) {
    if let Some(t) = timeline {
        if entering {
            t.begin(event.time_ns, event.pid, event.tid, &event.comm, name);
        } else {
            t.end(event.time_ns, event.pid, event.tid);
        }
    }
}

/// An attached tracer and the process it watches.
pub struct Run {
    tracer: Tracer,
    child: Option<child::HeldChild>,
    processes: ProcessScope,
    deadline: Option<Instant>,
    /// With `-c`: what the command runs, against the probed objects.
    watch: Option<CommandWatch>,
    /// Events delivered.
    hits: u64,
    /// The forwarded signal that ended the command.
    ended_by: Option<i32>,
    /// `-q`: no status lines.
    quiet: bool,
    /// Where the records go; the first write that failed.
    pub out: Out,
    write_error: Option<std::io::Error>,
}

impl Scope {
    /// The objects to attach to, as the scope designates them.
    fn objects(&self, runtime: Runtime) -> Result<Vec<RuntimeObject>, String> {
        match (self.processes.pid, &self.processes.command) {
            (Some(pid), _) => discover::in_process(runtime, pid),
            (None, Some(command)) => discover::for_command(runtime, command),
            (None, None) => {
                let found: Vec<RuntimeObject> = discover::installed(runtime)
                    .into_iter()
                    .filter_map(|i| i.object)
                    .collect();
                if found.is_empty() {
                    return Err(format!(
                        "no installed {runtime} runtime carries SDT probes (see `stap-sdt tapsets`)"
                    ));
                }
                Ok(found)
            }
        }
    }

    /// Attach the events matching `wanted` and start; a `-c` command is
    /// released once everything is attached.
    pub fn open(&self, wanted: &[&str]) -> Result<Run, Failure> {
        self.open_with(wanted, None)
    }

    /// [`open`](Self::open) counting the events per value of `fields` in
    /// the kernel instead of delivering them (read with `Tracer::counts`).
    pub fn open_counting(&self, wanted: &[&str], fields: &[&'static str]) -> Result<Run, Failure> {
        self.open_with(wanted, Some(fields))
    }

    fn open_with(
        &self,
        wanted: &[&str],
        counting: Option<&[&'static str]>,
    ) -> Result<Run, Failure> {
        let runtime = Runtime::from_name(&self.language)?;
        let objects = self.objects(runtime)?;
        // Checked before anything starts.
        let filter = crate::trace::parse_filter(self.predicate.as_deref())
            .map_err(|e| Failure::new(Status::Usage, e.replace("--filter", "--where")))?;
        let out = self.out.open()?;
        signals::install();
        let (child, target) = self.processes.start()?;
        let globs: Vec<Glob> = wanted.iter().map(|w| Glob::new(w)).collect();
        let stop = || signals::received().is_some();
        let filter = filter.as_ref();
        let attached = match counting {
            Some(fields) => Tracer::attach_counting(target, &objects, &globs, fields, filter, stop),
            None => Tracer::attach(target, &objects, &globs, self.buffer_pages, filter, stop),
        };
        let (mut tracer, warnings) = attached.map_err(|e| Failure::new(attach_status(&e), e))?;
        for warning in warnings {
            eprintln!("stap-sdt: {warning}");
        }
        tracer.start().map_err(|e| Failure::new(Status::Trace, e))?;
        let mut watch = self.processes.command.as_deref().map(CommandWatch::new);
        if let Some(w) = &mut watch {
            let paths: Vec<std::path::PathBuf> = objects.iter().map(|o| o.path.clone()).collect();
            w.check_start(&paths);
        }
        let mut run = Run {
            quiet: self.out.quiet,
            out,
            write_error: None,
            watch,
            hits: 0,
            ended_by: None,
            tracer,
            child,
            processes: self.processes.clone(),
            deadline: self
                .duration
                .map(|s| Instant::now() + Duration::from_secs_f64(s)),
        };
        run.warn_gated_flags();
        let scope = match (self.processes.pid, &self.processes.command) {
            (Some(pid), _) => format!("process {pid}"),
            (None, Some(c)) => format!("`{c}`"),
            (None, None) => "every process".into(),
        };
        let paths: Vec<String> = objects
            .iter()
            .map(|o| o.path.display().to_string())
            .collect();
        self.out.note(format_args!(
            "Tracing {runtime} in {scope} ({}). Ctrl-C to end.",
            paths.join(", ")
        ));
        if !run.tracer.hidden_events().is_empty() {
            self.out.note(format_args!(
                "stap-sdt: also attached {} (hidden) so that its semaphore is raised: \
                 CPython 3.11 reaches function__entry only then",
                run.tracer.hidden_events().join(", ")
            ));
        }
        if let Some(c) = &mut run.child {
            c.release();
        }
        Ok(run)
    }
}

impl Run {
    /// Before tracing Java: say which flag is missing from the command line.
    fn warn_gated_flags(&self) {
        let Some(jdk) = self.tracer.jdk() else {
            return;
        };
        let options = match (self.processes.pid, &self.processes.command) {
            (Some(pid), _) => jdk::process_options(pid),
            (None, Some(c)) => c.clone(),
            (None, None) => return,
        };
        for (gate, events) in self.tracer.gates() {
            if !jdk.enabled_by(&options, gate) {
                eprintln!(
                    "stap-sdt: warning: HotSpot fires {} only when the JVM runs with {} ({})",
                    events.join(", "),
                    jdk.flag(gate),
                    jdk.describe()
                );
            }
        }
    }

    /// Deliver events until Ctrl-C, the duration, or the traced process ends.
    /// Returns the command's exit code when it ran under `-c`.
    pub fn each(
        &mut self,
        mut handler: impl FnMut(&mut dyn Write, &NamedEvent) -> std::io::Result<()>,
    ) -> Option<i32> {
        let mut exit_code = None;
        loop {
            let mut stop =
                signals::received().is_some() || self.deadline.is_some_and(|d| Instant::now() >= d);
            if let Some(c) = &mut self.child {
                if let (Some(w), None) = (&mut self.watch, c.exit_code()) {
                    w.observe(c.pid());
                }
                exit_code = c.exit_code();
                stop |= exit_code.is_some();
                if let Some(signal) = signals::received().filter(|&s| signals::forwarded(s)) {
                    if exit_code.is_none() {
                        exit_code = c.end_with(signal, signals::CHILD_EXIT_LIMIT);
                        self.ended_by = Some(signal);
                    }
                }
            } else if let Some(pid) = self.processes.pid {
                stop |= !crate::trace::scope::process_alive(pid);
            }
            if self.write_error.is_some() {
                // The output is gone: detach (a -c command runs on untraced).
                return exit_code;
            }
            let hits = &mut self.hits;
            let out = &mut self.out.writer;
            let write_error = &mut self.write_error;
            let mut counted = |event: &NamedEvent| {
                *hits += 1;
                if write_error.is_none() {
                    if let Err(e) = handler(out, event) {
                        *write_error = Some(e);
                    }
                }
            };
            if stop {
                self.tracer.finish(&mut counted);
                return exit_code;
            }
            let timeout = signals::poll_wait_ms(self.deadline);
            self.tracer.poll(timeout, &mut counted);
            if let Err(e) = self.out.writer.flush() {
                self.write_error.get_or_insert(e);
            }
        }
    }

    /// With `-c`: a command still running when tracing stops (the duration
    /// ended) is ended as Ctrl-C would, so that its output comes before
    /// what is printed at the end, not inside it.
    pub fn end_command(&mut self, exit_code: Option<i32>) -> Option<i32> {
        match (&mut self.child, exit_code) {
            (Some(c), None) => {
                let code = c.end_with(libc::SIGTERM, signals::CHILD_EXIT_LIMIT);
                self.ended_by = Some(libc::SIGTERM);
                code
            }
            _ => exit_code,
        }
    }

    /// Counting mode: (field values, hits) per key.
    pub fn counts(&self) -> Option<Vec<lang_bindings::tracer::CountRow>> {
        self.tracer.counts()
    }

    /// Write `text` (a table printed at the end) in one piece.
    pub fn print(&mut self, text: &[u8]) {
        if self.write_error.is_none() {
            if let Err(e) = self.out.writer.write_all(text) {
                self.write_error = Some(e);
            }
        }
    }

    /// Detach and say what the user should know: lost records, dormant
    /// probes and the flag that wakes them, the command's exit status.
    pub fn close(mut self, exit_code: Option<i32>) -> Result<ExitCode, Failure> {
        if let Err(e) = self.out.writer.flush() {
            self.write_error.get_or_insert(e);
        }
        let lost = self.tracer.lost();
        let advice = self.tracer.dormant_advice();
        drop(self.tracer);
        if lost > 0 {
            eprintln!("stap-sdt: {lost} events lost (ring buffer full)");
        }
        for line in advice {
            eprintln!("stap-sdt: {line}");
        }
        if let (Some(w), 0) = (&self.watch, self.hits) {
            w.report_no_hits();
        }
        if let Some(error) = self.write_error.take() {
            return Err(Failure::new(
                Status::Output,
                format!("writing to {}: {error}; detached", self.out.name),
            ));
        }
        if let (Some(signal), Some(command)) = (self.ended_by, &self.processes.command) {
            if !self.quiet {
                eprintln!(
                    "stap-sdt: ended `{command}` with signal {signal} (status {})",
                    exit_code.map_or("unknown".to_string(), |c| c.to_string())
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        Ok(match (exit_code, &self.processes.command) {
            (Some(code), Some(command)) => {
                if !self.quiet {
                    eprintln!("stap-sdt: `{command}` exited with status {code}");
                }
                ExitCode::from(code.clamp(0, 255) as u8)
            }
            _ => ExitCode::SUCCESS,
        })
    }
}

/// Alive and not a zombie.
/// The name a call view shows for a function entry or return.
pub fn function_name(runtime: Runtime, event: &NamedEvent) -> String {
    match runtime {
        Runtime::Python => format!("{}:{}", event.text("file"), event.text("function")),
        Runtime::Java => format!(
            "{}.{}{}",
            event.text("class"),
            event.text("method"),
            event.text("signature")
        ),
        Runtime::Perl => format!("{}::{}", event.text("package"), event.text("sub")),
    }
}

/// The fields that name a function, in the order [`function_name`] joins them.
pub fn name_fields(runtime: Runtime) -> &'static [&'static str] {
    match runtime {
        Runtime::Python => &["file", "function"],
        Runtime::Java => &["class", "method", "signature"],
        Runtime::Perl => &["package", "sub"],
    }
}

/// [`function_name`] from the fields' values (counted in the kernel).
pub fn function_name_of(runtime: Runtime, values: &[(&str, String)]) -> String {
    let get = |name: &str| {
        values
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    };
    match runtime {
        Runtime::Python => format!("{}:{}", get("file"), get("function")),
        // The kernel keeps HotSpot's spelling (java/lang/Object); the views
        // spell it as Java does.
        Runtime::Java => format!(
            "{}.{}{}",
            get("class").replace('/', "."),
            get("method"),
            get("signature")
        ),
        Runtime::Perl => format!("{}::{}", get("package"), get("sub")),
    }
}

/// Attaching failed: nothing matching is status 1, bad input 2, the rest 3.
fn attach_status(message: &str) -> Status {
    if crate::status::is_no_match(message) || message.contains("event matches") {
        Status::NoMatch
    } else if message.contains("privileges")
        || message.contains("needs root")
        || message.contains("kernel")
    {
        Status::Trace
    } else {
        Status::Usage
    }
}
