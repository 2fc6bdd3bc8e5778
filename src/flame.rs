//! Flame graphs (issue 13): folded stacks (`a;b;c N`, one stack a line, the
//! input of flamegraph.pl, inferno, speedscope) and SVG flame graphs drawn by
//! the `inferno` crate, from `(frames outermost first, count)` rows: user
//! stacks counted by `trace --by ustack`, or stacks that [`CallStacks`] builds
//! from a runtime's function entry and return events (`calls -L`).
//!
//! Why inferno: it is the maintained Rust port of Brendan Gregg's FlameGraph
//! (the same SVG, with search and zoom in its embedded script), a library as
//! well as a command, and builds without its CLI features. Its licence is
//! CDDL-1.0 (FlameGraph's), a per-file copyleft that lets it be linked into
//! this MIT/Apache-2.0 program unchanged.
//!
//! Frame names are made safe for the folded format: `;` (the separator) is
//! written as `:`, and line breaks and tabs as spaces. Rows with the same
//! stack are added up; the output is sorted by stack.

// Nothing calls this module yet: `--folded`, `--flamegraph` and
// `calls -L --flamegraph` are wired in src/trace and src/runtime next.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// One folded line's stack: frame names joined with `;`, made safe.
fn fold(frames: &[String]) -> String {
    let mut line = String::new();
    for (i, frame) in frames.iter().enumerate() {
        if i > 0 {
            line.push(';');
        }
        let frame = frame.trim();
        if frame.is_empty() {
            line.push_str("[unknown]");
            continue;
        }
        line.extend(frame.chars().map(|c| match c {
            ';' => ':',
            '\n' | '\r' | '\t' => ' ',
            c => c,
        }));
    }
    line
}

/// Folded lines (`a;b;c N`), rows with the same stack added up, sorted, and
/// rows with no frame or a zero count left out.
pub fn folded_lines<I>(rows: I) -> Vec<String>
where
    I: IntoIterator<Item = (Vec<String>, u64)>,
{
    let mut merged: BTreeMap<String, u64> = BTreeMap::new();
    for (frames, count) in rows {
        if frames.is_empty() || count == 0 {
            continue;
        }
        *merged.entry(fold(&frames)).or_default() += count;
    }
    merged
        .into_iter()
        .map(|(stack, count)| format!("{stack} {count}"))
        .collect()
}

/// Writes the folded stacks to `path`; returns the number of lines.
pub fn write_folded<I>(path: impl AsRef<Path>, rows: I) -> Result<usize, String>
where
    I: IntoIterator<Item = (Vec<String>, u64)>,
{
    let path = path.as_ref();
    let lines = folded_lines(rows);
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut out = BufWriter::new(File::create(path).map_err(err)?);
    for line in &lines {
        out.write_all(line.as_bytes()).map_err(err)?;
        out.write_all(b"\n").map_err(err)?;
    }
    out.flush().map_err(err)?;
    Ok(lines.len())
}

/// How an SVG flame graph is drawn.
#[derive(Debug, Clone)]
pub struct SvgOptions {
    pub title: String,
    /// What the counts are: "samples", "calls", "ns".
    pub count_name: String,
    /// Icicle graph: roots at the top.
    pub inverted: bool,
}

impl SvgOptions {
    pub fn new(title: &str) -> SvgOptions {
        SvgOptions {
            title: title.to_string(),
            count_name: "samples".to_string(),
            inverted: false,
        }
    }
}

/// Writes an SVG flame graph of the rows to `path` (counts named "samples").
pub fn write_svg<I>(path: impl AsRef<Path>, rows: I, title: &str) -> Result<(), String>
where
    I: IntoIterator<Item = (Vec<String>, u64)>,
{
    write_svg_with(path, rows, &SvgOptions::new(title))
}

pub fn write_svg_with<I>(
    path: impl AsRef<Path>,
    rows: I,
    options: &SvgOptions,
) -> Result<(), String>
where
    I: IntoIterator<Item = (Vec<String>, u64)>,
{
    let path = path.as_ref();
    let lines = folded_lines(rows);
    if lines.is_empty() {
        // inferno refuses an empty profile; an empty graph says "no stacks".
        return Err(format!("{}: no stacks to draw", path.display()));
    }
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = options.title.clone();
    opts.count_name = options.count_name.clone();
    // Colours from the function names, so one run draws like the next.
    opts.hash = true;
    opts.deterministic = true;
    if options.inverted {
        opts.direction = inferno::flamegraph::Direction::Inverted;
    }
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut out = BufWriter::new(File::create(path).map_err(err)?);
    inferno::flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), &mut out)
        .map_err(err)?;
    out.flush().map_err(err)
}

/// What a stack's count is in [`CallStacks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    /// Calls: each entry adds 1 to its stack.
    Calls,
    /// Self time in ns: at each return, the call's time less the time of
    /// its callees goes to its stack, so a frame's width is its total time.
    SelfTime,
}

#[derive(Clone, Copy)]
struct Frame {
    name: u32,
    entry_ns: u64,
    /// Time spent in the callees that have returned.
    callees_ns: u64,
}

/// Builds call stacks from function entry and return events, per thread:
/// an entry pushes the function, a return pops it. Memory grows with the
/// distinct function names and stacks, not with the number of events.
///
/// Unmatched events are tolerated: a return on an empty stack (tracing began
/// inside the function) is dropped and counted; a named return that does not
/// match the top pops down to the matching frame, ending the frames above it
/// at the same time (their returns were missed); with no such frame it is
/// dropped. Frames still open are ended by [`CallStacks::finish`].
pub struct CallStacks {
    weight: Weight,
    names: Vec<String>,
    ids: HashMap<String, u32>,
    threads: HashMap<(u32, u32), Vec<Frame>>,
    counts: HashMap<Vec<u32>, u64>,
    unmatched_returns: u64,
}

impl CallStacks {
    pub fn new(weight: Weight) -> CallStacks {
        CallStacks {
            weight,
            names: Vec::new(),
            ids: HashMap::new(),
            threads: HashMap::new(),
            counts: HashMap::new(),
            unmatched_returns: 0,
        }
    }

    fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    /// A function entry on the thread.
    pub fn entry(&mut self, ts_ns: u64, pid: u32, tid: u32, function: &str) {
        let name = self.id(function);
        let stack = self.threads.entry((pid, tid)).or_default();
        stack.push(Frame {
            name,
            entry_ns: ts_ns,
            callees_ns: 0,
        });
        if self.weight == Weight::Calls {
            let key: Vec<u32> = stack.iter().map(|f| f.name).collect();
            *self.counts.entry(key).or_default() += 1;
        }
    }

    /// A function return on the thread; `function`, when the event names it,
    /// is checked against the open frames.
    pub fn ret(&mut self, ts_ns: u64, pid: u32, tid: u32, function: Option<&str>) {
        let depth = {
            let Some(stack) = self.threads.get(&(pid, tid)) else {
                self.unmatched_returns += 1;
                return;
            };
            let found = match function {
                None => stack.len().checked_sub(1),
                Some(f) => match self.ids.get(f) {
                    Some(id) => stack.iter().rposition(|fr| fr.name == *id),
                    None => None,
                },
            };
            match found {
                Some(depth) => depth,
                None => {
                    self.unmatched_returns += 1;
                    return;
                }
            }
        };
        self.pop_to(pid, tid, depth, ts_ns);
    }

    /// Ends the frames at `depth` and above at `ts_ns`, innermost first.
    fn pop_to(&mut self, pid: u32, tid: u32, depth: usize, ts_ns: u64) {
        let Some(stack) = self.threads.get_mut(&(pid, tid)) else {
            return;
        };
        while stack.len() > depth {
            let frame = stack.pop().expect("len > depth");
            let total = ts_ns.saturating_sub(frame.entry_ns);
            if let Some(parent) = stack.last_mut() {
                parent.callees_ns = parent.callees_ns.saturating_add(total);
            }
            if self.weight == Weight::SelfTime {
                let own = total.saturating_sub(frame.callees_ns);
                let mut key: Vec<u32> = stack.iter().map(|f| f.name).collect();
                key.push(frame.name);
                *self.counts.entry(key).or_default() += own;
            }
        }
        if stack.is_empty() {
            self.threads.remove(&(pid, tid));
        }
    }

    /// Ends every open frame: at `end_ns` (counted for self time), or, with
    /// None, dropped without adding time.
    pub fn finish(&mut self, end_ns: Option<u64>) {
        let open: Vec<(u32, u32)> = self.threads.keys().copied().collect();
        for (pid, tid) in open {
            match end_ns {
                Some(ts) => self.pop_to(pid, tid, 0, ts),
                None => {
                    self.threads.remove(&(pid, tid));
                }
            }
        }
    }

    /// Returns whose function was not open on their thread, dropped.
    pub fn unmatched_returns(&self) -> u64 {
        self.unmatched_returns
    }

    /// Frames still open (not yet returned), over all threads.
    pub fn open_frames(&self) -> usize {
        self.threads.values().map(Vec::len).sum()
    }

    /// The stacks and their counts (zero counts left out), sorted by stack:
    /// the rows for [`write_folded`] and [`write_svg`].
    pub fn rows(&self) -> Vec<(Vec<String>, u64)> {
        let mut rows: Vec<(Vec<String>, u64)> = self
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(stack, n)| {
                let frames = stack
                    .iter()
                    .map(|id| self.names[*id as usize].clone())
                    .collect();
                (frames, *n)
            })
            .collect();
        rows.sort();
        rows
    }
}

#[cfg(test)]
mod tests;
