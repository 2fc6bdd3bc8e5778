//! Timelines of probe hits for trace viewers (issue 13): the Chrome trace-event
//! JSON (`.json`: chrome://tracing, Perfetto UI, speedscope) and Perfetto's
//! protobuf trace (`.pftrace`, `.perfetto-trace`: Perfetto UI, trace_processor).
//!
//! [`TimelineWriter`] streams: each call writes its event through a `BufWriter`
//! at once, and the writer keeps only per-process and per-thread state (names,
//! the stack of open slices, interned event names), so memory stays bounded
//! however many events a run delivers.
//!
//! Tracks: one per process and one per thread, described once (again only when
//! a name becomes known or changes); counters get a track per process and name.
//!
//! Timestamps are written as given, in the clock the caller says they are on
//! ([`Clock`], CLOCK_MONOTONIC by default, as BPF's `bpf_ktime_get_ns` and the
//! engine's records): in the JSON as µs with three decimals (ns kept); in the
//! Perfetto trace as ns with the packet's `timestamp_clock_id`, after a
//! `ClockSnapshot` of BOOTTIME, MONOTONIC and REALTIME taken when the file is
//! created, so Perfetto lines the file up with other traces of the machine.
//!
//! Slices that do not pair up are handled, never an error:
//! - an `end` on a thread with no open slice (the probe attached after the
//!   function was entered) is dropped and counted in [`Stats::unmatched_ends`];
//! - slices still open at [`TimelineWriter::finish`] (the run stopped inside a
//!   function, or its return was missed) are ended at the last timestamp of the
//!   whole timeline, innermost first, and counted in [`Stats::unclosed_begins`];
//!   so every `B` has its `E` and viewers draw them as running to the end.
//!
//! Write errors do not interrupt the caller: the first one is kept, later calls
//! write nothing, and `finish` returns it. Dropping the writer without `finish`
//! finishes it, ignoring errors.

// Nothing calls this module yet: the wiring into trace, flow, events, calls -L
// and latency (`--timeline FILE`) comes next, in src/trace and src/runtime.
#![allow(dead_code)]

mod json;
mod perfetto;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// A decoded probe argument, written as an event argument (JSON `args`) or a
/// Perfetto debug annotation.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
}

/// The clock the caller's timestamps are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// CLOCK_MONOTONIC ns (BPF `bpf_ktime_get_ns`).
    #[default]
    Monotonic,
    /// CLOCK_BOOTTIME ns (BPF `bpf_ktime_get_boot_ns`), Perfetto's own clock.
    Boottime,
    /// CLOCK_REALTIME ns since the Unix epoch (wall clock).
    Realtime,
}

/// The file format, from the file name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.json`: Chrome trace-event JSON.
    ChromeJson,
    /// `.pftrace` or `.perfetto-trace`: Perfetto's protobuf `Trace`.
    Perfetto,
}

impl Format {
    pub fn from_path(path: &Path) -> Result<Format, String> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".json") {
            Ok(Format::ChromeJson)
        } else if lower.ends_with(".pftrace") || lower.ends_with(".perfetto-trace") {
            Ok(Format::Perfetto)
        } else {
            Err(format!(
                "{}: a timeline file name ends in .json (Chrome trace-event JSON) or \
                 .pftrace / .perfetto-trace (Perfetto)",
                path.display()
            ))
        }
    }
}

/// What a finished timeline holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events written: instants, slice begins and ends (the ends added at
    /// `finish` included), complete slices and counter values; not the
    /// process and thread descriptions.
    pub events: u64,
    /// Size of the file.
    pub bytes: u64,
    pub processes: usize,
    pub threads: usize,
    /// `end` calls with no open slice on their thread, dropped.
    pub unmatched_ends: u64,
    /// Slices still open at `finish`, ended at the timeline's last timestamp.
    pub unclosed_begins: u64,
}

/// What a format writes; [`TimelineWriter`] keeps the state common to both
/// and calls these with descriptions already emitted and slices paired.
trait Sink {
    /// Describes a process track; `ts_ns` is the event that brought it up.
    fn process(&mut self, ts_ns: u64, pid: u32, name: Option<&str>) -> io::Result<()>;
    fn thread(&mut self, ts_ns: u64, pid: u32, tid: u32, name: &str) -> io::Result<()>;
    fn instant(&mut self, ev: &Event) -> io::Result<()>;
    fn begin(&mut self, ev: &Event) -> io::Result<()>;
    /// `name` is the name of the slice being ended.
    fn end(&mut self, ts_ns: u64, pid: u32, tid: u32, name: &str) -> io::Result<()>;
    fn complete(&mut self, ev: &Event, dur_ns: u64) -> io::Result<()>;
    fn counter(&mut self, ts_ns: u64, pid: u32, name: &str, value: f64) -> io::Result<()>;
    /// Writes the trailer, flushes, and says how many bytes the file has.
    fn finish(&mut self) -> io::Result<u64>;
}

/// One event's common fields, as the sinks take them.
struct Event<'a> {
    ts_ns: u64,
    pid: u32,
    tid: u32,
    name: &'a str,
    args: &'a [(&'a str, ArgValue)],
}

#[derive(Default)]
struct ThreadState {
    name: String,
    /// Names of the open slices, outermost first.
    open: Vec<String>,
}

/// A streaming timeline writer; see the module documentation.
pub struct TimelineWriter {
    sink: Box<dyn Sink>,
    format: Format,
    /// Process names as described (None: described without a name).
    processes: HashMap<u32, Option<String>>,
    /// Names given with `process_name`, described when the process shows up.
    process_names: HashMap<u32, String>,
    threads: HashMap<(u32, u32), ThreadState>,
    stats: Stats,
    last_ts: u64,
    error: Option<String>,
    finished: bool,
}

/// A `Write` that counts what passes through it.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl TimelineWriter {
    /// Creates (truncates) `path`; the format follows its extension. The
    /// timestamps are taken as CLOCK_MONOTONIC ns ([`Self::create_with_clock`]
    /// for another clock).
    pub fn create(path: impl AsRef<Path>) -> Result<TimelineWriter, String> {
        Self::create_with_clock(path, Clock::Monotonic)
    }

    pub fn create_with_clock(
        path: impl AsRef<Path>,
        clock: Clock,
    ) -> Result<TimelineWriter, String> {
        let path = path.as_ref();
        let format = Format::from_path(path)?;
        let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let out = Counting {
            inner: BufWriter::with_capacity(256 * 1024, file),
            bytes: 0,
        };
        let sink: Result<Box<dyn Sink>, io::Error> = match format {
            Format::ChromeJson => json::JsonSink::new(out, clock).map(|s| Box::new(s) as _),
            Format::Perfetto => perfetto::PerfettoSink::new(out, clock).map(|s| Box::new(s) as _),
        };
        let sink = sink.map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TimelineWriter {
            sink,
            format,
            processes: HashMap::new(),
            process_names: HashMap::new(),
            threads: HashMap::new(),
            stats: Stats::default(),
            last_ts: 0,
            error: None,
            finished: false,
        })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The first write error so far, if any (later calls write nothing).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Names a process (its track's name); described again if it was already
    /// described under another name. Without it, a process is named after its
    /// main thread (tid == pid) when that thread's name is given.
    pub fn process_name(&mut self, pid: u32, name: &str) {
        self.process_names.insert(pid, name.to_string());
        if self.processes.contains_key(&pid) && !self.failed() {
            self.describe_process(self.last_ts, pid, Some(name));
        }
    }

    /// A point event on the thread's track (a plain probe hit).
    pub fn instant(
        &mut self,
        ts_ns: u64,
        pid: u32,
        tid: u32,
        thread_name: &str,
        name: &str,
        args: &[(&str, ArgValue)],
    ) {
        if !self.ready(ts_ns, pid, tid, Some(thread_name)) {
            return;
        }
        let ev = Event {
            ts_ns,
            pid,
            tid,
            name,
            args,
        };
        let r = self.sink.instant(&ev);
        self.wrote(r, 1);
    }

    /// Opens a slice on the thread (function entry, a START probe); the next
    /// `end` on the same thread closes the innermost open slice.
    pub fn begin(
        &mut self,
        ts_ns: u64,
        pid: u32,
        tid: u32,
        thread_name: &str,
        name: &str,
        args: &[(&str, ArgValue)],
    ) {
        if !self.ready(ts_ns, pid, tid, Some(thread_name)) {
            return;
        }
        let ev = Event {
            ts_ns,
            pid,
            tid,
            name,
            args,
        };
        let r = self.sink.begin(&ev);
        if r.is_ok() {
            if let Some(t) = self.threads.get_mut(&(pid, tid)) {
                t.open.push(name.to_string());
            }
        }
        self.wrote(r, 1);
    }

    /// Closes the thread's innermost open slice; with none open, the call is
    /// dropped and counted in [`Stats::unmatched_ends`].
    pub fn end(&mut self, ts_ns: u64, pid: u32, tid: u32) {
        let open = self.threads.get_mut(&(pid, tid)).and_then(|t| t.open.pop());
        let Some(name) = open else {
            self.stats.unmatched_ends += 1;
            return;
        };
        if !self.ready(ts_ns, pid, tid, None) {
            return;
        }
        let r = self.sink.end(ts_ns, pid, tid, &name);
        self.wrote(r, 1);
    }

    /// A slice whose duration is already known (a latency START→END pair
    /// matched by the engine); it does not change the open-slice stack. It is
    /// drawn on the thread's track with the `begin`/`end` slices, so it must
    /// nest with them (inside the open slice, or around slices that ended
    /// within it); a complete slice that overlaps a `begin`/`end` slice
    /// partly is written as given, and viewers then cut or flag one of them.
    pub fn complete(
        &mut self,
        ts_ns: u64,
        dur_ns: u64,
        pid: u32,
        tid: u32,
        name: &str,
        args: &[(&str, ArgValue)],
    ) {
        if !self.ready(ts_ns, pid, tid, None) {
            return;
        }
        self.last_ts = self.last_ts.max(ts_ns.saturating_add(dur_ns));
        let ev = Event {
            ts_ns,
            pid,
            tid,
            name,
            args,
        };
        let r = self.sink.complete(&ev, dur_ns);
        self.wrote(r, 1);
    }

    /// A value of the process's counter `name` (a probe that carries a value:
    /// queue length, bytes).
    pub fn counter(&mut self, ts_ns: u64, pid: u32, name: &str, value: f64) {
        if self.failed() {
            return;
        }
        self.last_ts = self.last_ts.max(ts_ns);
        self.see_process(ts_ns, pid);
        let r = self.sink.counter(ts_ns, pid, name, value);
        self.wrote(r, 1);
    }

    /// Ends the slices still open, writes the trailer and flushes.
    pub fn finish(mut self) -> Result<Stats, String> {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<Stats, String> {
        if self.finished {
            return Err("timeline already finished".into());
        }
        self.finished = true;
        // Deterministic order: by pid, tid.
        let mut open: Vec<(u32, u32)> = self
            .threads
            .iter()
            .filter(|(_, t)| !t.open.is_empty())
            .map(|(k, _)| *k)
            .collect();
        open.sort_unstable();
        let ts = self.last_ts;
        for (pid, tid) in open {
            let names = std::mem::take(&mut self.threads.get_mut(&(pid, tid)).unwrap().open);
            for name in names.iter().rev() {
                self.stats.unclosed_begins += 1;
                if self.error.is_none() {
                    let r = self.sink.end(ts, pid, tid, name);
                    self.wrote(r, 1);
                }
            }
        }
        if self.error.is_none() {
            match self.sink.finish() {
                Ok(bytes) => self.stats.bytes = bytes,
                Err(e) => self.error = Some(e.to_string()),
            }
        }
        if let Some(e) = &self.error {
            return Err(format!("writing the timeline: {e}"));
        }
        self.stats.processes = self.processes.len();
        self.stats.threads = self.threads.len();
        Ok(self.stats.clone())
    }

    fn failed(&self) -> bool {
        self.error.is_some() || self.finished
    }

    fn wrote(&mut self, r: io::Result<()>, events: u64) {
        match r {
            Ok(()) => self.stats.events += events,
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e.to_string());
                }
            }
        }
    }

    /// Describes the process and thread when new (or newly named) and keeps
    /// the last timestamp; false once writing has failed.
    fn ready(&mut self, ts_ns: u64, pid: u32, tid: u32, thread_name: Option<&str>) -> bool {
        if self.failed() {
            return false;
        }
        self.last_ts = self.last_ts.max(ts_ns);
        self.see_process(ts_ns, pid);
        let name = thread_name.unwrap_or("");
        let (new, renamed) = match self.threads.get(&(pid, tid)) {
            None => (true, false),
            Some(t) => (false, !name.is_empty() && t.name != name),
        };
        if new || renamed {
            let t = self.threads.entry((pid, tid)).or_default();
            if !name.is_empty() {
                t.name = name.to_string();
            }
            let r = self.sink.thread(ts_ns, pid, tid, name);
            self.wrote(r, 0);
            // The main thread names an unnamed process.
            if tid == pid && !name.is_empty() && !self.process_names.contains_key(&pid) {
                if let Some(None) = self.processes.get(&pid) {
                    self.describe_process(ts_ns, pid, Some(name));
                }
            }
        }
        !self.failed()
    }

    fn see_process(&mut self, ts_ns: u64, pid: u32) {
        if self.processes.contains_key(&pid) {
            return;
        }
        let name = self.process_names.get(&pid).cloned();
        self.describe_process(ts_ns, pid, name.as_deref());
    }

    fn describe_process(&mut self, ts_ns: u64, pid: u32, name: Option<&str>) {
        if let Some(Some(old)) = self.processes.get(&pid) {
            if Some(old.as_str()) == name {
                return;
            }
        }
        self.processes.insert(pid, name.map(str::to_string));
        let r = self.sink.process(ts_ns, pid, name);
        self.wrote(r, 0);
    }
}

impl Drop for TimelineWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.finish_inner();
        }
    }
}

/// Reads a clock (for the Perfetto clock snapshot).
fn clock_now_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests;
