//! What the commands draw: `--timeline FILE` (Perfetto or Chrome JSON, by
//! the extension), `--folded FILE` and `--flamegraph FILE.svg`. One value
//! per run collects the events and writes the files at the end (the
//! timeline streams as it goes).

use crate::flame::{self, CallStacks, Weight};
use crate::timeline::{ArgValue, Clock, TimelineWriter};
use clap::Args;
use std::path::PathBuf;

/// `--timeline`, for every command that sees events.
#[derive(Args, Debug, Clone, Default)]
pub struct TimelineArgs {
    /// Also write the events as a timeline: FILE.pftrace or FILE.perfetto-trace
    /// (Perfetto, open in ui.perfetto.dev) or FILE.json (Chrome trace-event JSON:
    /// chrome://tracing, speedscope, Perfetto). A track per process and thread;
    /// function calls and START→END pairs are slices, other hits instants with their
    /// arguments. Written as the events come, in bounded memory.
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<PathBuf>,

    /// With --timeline on `trace`: also draw argument N of each hit as a counter
    /// track of its process (`PROBE argN`: a queue length, bytes in flight).
    /// Repeatable.
    #[arg(long = "counter", value_name = "ARGN", requires = "timeline")]
    pub counters: Vec<String>,
}

impl TimelineArgs {
    /// The `--counter` arguments, as numbers.
    pub fn counter_args(&self) -> Result<Vec<usize>, String> {
        self.counters
            .iter()
            .map(|c| crate::trace::arg_option("--counter", c))
            .collect()
    }
}

/// `--folded` and `--flamegraph`.
#[derive(Args, Debug, Clone, Default)]
pub struct FlameArgs {
    /// Write the stacks in the folded form flamegraph.pl and inferno read
    /// (`main;f;g COUNT` per line).
    #[arg(long, value_name = "FILE")]
    pub folded: Option<PathBuf>,

    /// Write an SVG flame graph of the stacks.
    #[arg(long, value_name = "FILE.svg")]
    pub flamegraph: Option<PathBuf>,
}

impl FlameArgs {
    pub fn wanted(&self) -> bool {
        self.folded.is_some() || self.flamegraph.is_some()
    }

    /// Write the files asked for from `rows` (frames outermost first, count).
    pub fn write(&self, rows: &[(Vec<String>, u64)], title: &str) -> Result<(), String> {
        if let Some(path) = &self.folded {
            flame::write_folded(path, rows.iter().cloned())?;
        }
        if let Some(path) = &self.flamegraph {
            flame::write_svg(path, rows.iter().cloned(), title)?;
        }
        Ok(())
    }
}

impl TimelineArgs {
    /// The writer, on the wall clock the events carry.
    pub fn open(&self) -> Result<Option<Timeline>, String> {
        let Some(path) = &self.timeline else {
            return Ok(None);
        };
        let writer = TimelineWriter::create_with_clock(path, Clock::Realtime)?;
        Ok(Some(Timeline {
            writer,
            path: path.clone(),
        }))
    }
}

/// An open timeline.
pub struct Timeline {
    writer: TimelineWriter,
    path: PathBuf,
}

/// Nanoseconds since the epoch, as the writer takes them.
fn ns(time_ns: u128) -> u64 {
    time_ns.min(u128::from(u64::MAX)) as u64
}

impl Timeline {
    pub fn instant(
        &mut self,
        time_ns: u128,
        pid: u32,
        tid: u32,
        comm: &str,
        name: &str,
        args: &[(&str, ArgValue)],
    ) {
        self.writer.instant(ns(time_ns), pid, tid, comm, name, args);
    }

    pub fn begin(&mut self, time_ns: u128, pid: u32, tid: u32, comm: &str, name: &str) {
        self.writer.begin(ns(time_ns), pid, tid, comm, name, &[]);
    }

    /// A value of the process's counter track `name`.
    pub fn counter(&mut self, time_ns: u128, pid: u32, name: &str, value: f64) {
        self.writer.counter(ns(time_ns), pid, name, value);
    }

    /// A slice whose both ends are known (a START→END pair).
    pub fn complete(&mut self, time_ns: u128, dur_ns: u64, pid: u32, tid: u32, name: &str) {
        self.writer
            .complete(ns(time_ns), dur_ns, pid, tid, name, &[]);
    }

    pub fn end(&mut self, time_ns: u128, pid: u32, tid: u32) {
        self.writer.end(ns(time_ns), pid, tid);
    }

    /// Finish the file; a line for the user says what it holds.
    pub fn finish(self, quiet: bool) -> Result<(), String> {
        let stats = self
            .writer
            .finish()
            .map_err(|e| format!("--timeline {}: {e}", self.path.display()))?;
        if !quiet {
            eprintln!(
                "stap-sdt: wrote {} events of {} threads to {} ({} bytes)",
                stats.events,
                stats.threads,
                self.path.display(),
                stats.bytes
            );
        }
        Ok(())
    }
}

/// An engine value as a timeline argument.
pub fn arg_value(v: &uprobe_engine::Value) -> Option<ArgValue> {
    use uprobe_engine::Value;
    Some(match v {
        Value::Signed(n) => ArgValue::Int(*n),
        Value::Unsigned(n) => ArgValue::UInt(*n),
        Value::Float(f) => ArgValue::Float(*f),
        Value::Str(s) => ArgValue::Str(s.clone()),
        Value::Unavailable | Value::Fault => return None,
    })
}

/// Call stacks built from entries and returns, by self time.
pub fn call_stacks() -> CallStacks {
    CallStacks::new(Weight::SelfTime)
}
