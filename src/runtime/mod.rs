//! Runtime views on the tapsets of `lang-bindings`: `calls` (per-function
//! counts and latency, like bcc's ucalls), `flow` (indented call flow, like
//! bcc's uflow) and `tapsets` (what is available here).

pub mod calls;
pub mod events;
pub mod flow;
pub mod tapsets;

use crate::trace::scope::ProcessScope;
use crate::trace::{child, command::CommandWatch, signals};
use clap::Args;
use lang_bindings::{discover, jdk, NamedEvent, Runtime, RuntimeObject, Tracer};
use stapsdt_reader::filter::Glob;
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

    /// Ring buffer pages per string layout (a power of two); raise it
    /// when events are reported lost.
    #[arg(long, value_name = "PAGES", default_value_t = 4096)]
    buffer_pages: usize,
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
    pub fn open(&self, wanted: &[&str]) -> Result<Run, String> {
        let runtime = Runtime::from_name(&self.language)?;
        let objects = self.objects(runtime)?;
        signals::install();
        let (child, target) = self.processes.start()?;
        let globs: Vec<Glob> = wanted.iter().map(|w| Glob::new(w)).collect();
        let (mut tracer, warnings) =
            Tracer::attach(target, &objects, &globs, self.buffer_pages, || {
                signals::received().is_some()
            })?;
        for warning in warnings {
            eprintln!("stap-sdt: {warning}");
        }
        tracer.start()?;
        let mut watch = self.processes.command.as_deref().map(CommandWatch::new);
        if let Some(w) = &mut watch {
            let paths: Vec<std::path::PathBuf> = objects.iter().map(|o| o.path.clone()).collect();
            w.check_start(&paths);
        }
        let mut run = Run {
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
        eprintln!(
            "Tracing {runtime} in {scope} ({}). Ctrl-C to end.",
            paths.join(", ")
        );
        if !run.tracer.hidden_events().is_empty() {
            eprintln!(
                "stap-sdt: also attached {} (hidden) so that its semaphore is raised: \
                 CPython 3.11 reaches function__entry only then",
                run.tracer.hidden_events().join(", ")
            );
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
    pub fn each(&mut self, mut handler: impl FnMut(&NamedEvent)) -> Option<i32> {
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
            let hits = &mut self.hits;
            let mut counted = |event: &NamedEvent| {
                *hits += 1;
                handler(event)
            };
            if stop {
                self.tracer.finish(&mut counted);
                return exit_code;
            }
            self.tracer.poll(100, &mut counted);
        }
    }

    /// Detach and say what the user should know: lost records, dormant
    /// probes and the flag that wakes them, the command's exit status.
    pub fn close(self, exit_code: Option<i32>) -> ExitCode {
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
        if let (Some(signal), Some(command)) = (self.ended_by, &self.processes.command) {
            eprintln!(
                "stap-sdt: ended `{command}` with signal {signal} (status {})",
                exit_code.map_or("unknown".to_string(), |c| c.to_string())
            );
            return ExitCode::SUCCESS;
        }
        match (exit_code, &self.processes.command) {
            (Some(code), Some(command)) => {
                eprintln!("stap-sdt: `{command}` exited with status {code}");
                ExitCode::from(code.clamp(0, 255) as u8)
            }
            _ => ExitCode::SUCCESS,
        }
    }
}

/// Alive and not a zombie.
/// The name a call view shows for a function entry or return.
pub fn function_name(runtime: Runtime, event: &NamedEvent) -> String {
    match runtime {
        Runtime::Python => format!("{}:{}", event.text("file"), event.text("function")),
        Runtime::Java => format!(
            "{}.{}{}",
            event.text("class").replace('/', "."),
            event.text("method"),
            event.text("signature")
        ),
        Runtime::Perl => format!("{}::{}", event.text("package"), event.text("sub")),
    }
}
