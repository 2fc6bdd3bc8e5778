//! `stap-sdt debug-pictures` (hidden): drives the timeline and flame graph
//! writers without attaching to anything, for the bench
//! (benches/timeline_bench.sh: a million events, peak RSS) and the browser
//! check (benches/pictures_browser.sh: the files rendered by headless
//! Chromium). Not for users; the real commands take `--timeline FILE`,
//! `--folded FILE` and `--flamegraph FILE.svg`.

use crate::flame::{self, CallStacks, Weight};
use crate::timeline::{ArgValue, TimelineWriter};
use clap::{Args, Subcommand};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args)]
pub struct PicturesArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Writes N synthetic events (nested calls on 8 threads, instants with
    /// arguments, counters) to a timeline; prints time, size and peak RSS.
    Bench {
        /// Events to write.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// The timeline file (.json, .pftrace, .perfetto-trace).
        file: String,
    },
    /// Writes the call tree of a small Python program (the one in the
    /// README's pictures) as entry/return events: to timelines (.json,
    /// .pftrace), folded stacks (.folded) or an SVG flame graph (.svg).
    Demo {
        /// Output files; the kind follows the extension.
        #[arg(required = true)]
        files: Vec<String>,
    },
}

pub fn run(args: PicturesArgs) -> Result<ExitCode, String> {
    match args.what {
        What::Bench { events, file } => bench(events, &file),
        What::Demo { files } => {
            for file in files {
                demo(&file)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Peak resident set of this process, in KiB.
fn peak_rss_kib() -> u64 {
    // SAFETY: rusage is plain integers, for which all-zero bytes are valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only into the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as u64
}

fn bench(events: u64, file: &str) -> Result<ExitCode, String> {
    let start = Instant::now();
    let rss_before = peak_rss_kib();
    let mut w = TimelineWriter::create(file)?;
    let pid = 1000;
    let mut written = 0u64;
    let mut ts = 1_000_000_000u64;
    let names: Vec<String> = (0..64).map(|i| format!("module.function_{i}")).collect();
    let mut depth = [0usize; 8];
    let mut i = 0u64;
    while written < events {
        let t = (i % 8) as usize;
        let tid = pid + t as u32;
        ts += 137;
        match i % 7 {
            // Down two levels, up one: stacks grow and shrink, bounded.
            0 | 1 | 3 if depth[t] < 40 => {
                let name = &names[(i as usize / 8 + depth[t]) % names.len()];
                let args = [
                    ("file", ArgValue::Str("app.py".into())),
                    ("line", ArgValue::Int((i % 1000) as i64)),
                ];
                w.begin(ts, pid, tid, "worker", name, &args);
                depth[t] += 1;
            }
            5 => {
                w.instant(
                    ts,
                    pid,
                    tid,
                    "worker",
                    "gc__start",
                    &[("gen", ArgValue::UInt(i % 3))],
                );
            }
            6 => w.counter(ts, pid, "queue_length", (i % 100) as f64),
            _ if depth[t] > 0 => {
                w.end(ts, pid, tid);
                depth[t] -= 1;
            }
            _ => w.instant(ts, pid, tid, "worker", "tick", &[]),
        }
        written += 1;
        i += 1;
    }
    let stats = w.finish()?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "timeline {file}: {} events ({} ended at finish), {} bytes, {:.2} s, {:.0} events/s",
        stats.events,
        stats.unclosed_begins,
        stats.bytes,
        secs,
        stats.events as f64 / secs
    );
    println!(
        "peak RSS: {:.1} MiB (before writing: {:.1} MiB)",
        peak_rss_kib() as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
    Ok(ExitCode::SUCCESS)
}

/// A Python program's flow: (depth change, function, ns since start).
/// `<module>` runs main, which loads a config, then serves three requests
/// (each: parse, handle (query the db twice), render), then shuts down.
fn demo_events() -> Vec<(bool, &'static str, u64)> {
    let mut ev = Vec::new();
    let mut ts = 0u64;
    let mut call = |ev: &mut Vec<_>, entry: bool, name: &'static str, dt: u64| {
        ts += dt;
        ev.push((entry, name, ts));
    };
    call(&mut ev, true, "<module>", 0);
    call(&mut ev, true, "main", 2_000);
    call(&mut ev, true, "load_config", 1_000);
    call(&mut ev, true, "read_file", 500);
    call(&mut ev, false, "read_file", 40_000);
    call(&mut ev, true, "parse_toml", 1_000);
    call(&mut ev, false, "parse_toml", 25_000);
    call(&mut ev, false, "load_config", 1_000);
    for r in 0..3u64 {
        call(&mut ev, true, "serve_request", 3_000);
        call(&mut ev, true, "parse_request", 500);
        call(&mut ev, false, "parse_request", 8_000 + r * 1_000);
        call(&mut ev, true, "handle", 500);
        for q in 0..2u64 {
            call(&mut ev, true, "query_db", 1_000);
            call(&mut ev, false, "query_db", 30_000 + (r + q) * 7_000);
        }
        call(&mut ev, false, "handle", 2_000);
        call(&mut ev, true, "render", 500);
        call(&mut ev, false, "render", 12_000);
        call(&mut ev, false, "serve_request", 1_000);
    }
    call(&mut ev, true, "shutdown", 2_000);
    call(&mut ev, false, "shutdown", 6_000);
    call(&mut ev, false, "main", 1_000);
    call(&mut ev, false, "<module>", 1_000);
    ev
}

fn demo(file: &str) -> Result<(), String> {
    let (pid, base) = (31337, 5_000_000_000u64);
    let events = demo_events();
    if file.ends_with(".svg") || file.ends_with(".folded") {
        let mut cs = CallStacks::new(Weight::SelfTime);
        for (entry, name, ts) in &events {
            if *entry {
                cs.entry(base + ts, pid, pid, name);
            } else {
                cs.ret(base + ts, pid, pid, Some(name));
            }
        }
        if file.ends_with(".svg") {
            let mut opts = flame::SvgOptions::new("python3 app.py: self time per call stack");
            opts.count_name = "ns".into();
            flame::write_svg_with(file, cs.rows(), &opts)?;
        } else {
            flame::write_folded(file, cs.rows())?;
        }
        println!("{file}: {} stacks", cs.rows().len());
        return Ok(());
    }
    let mut w = TimelineWriter::create(file)?;
    w.process_name(pid, "python3 app.py");
    for (entry, name, ts) in &events {
        if *entry {
            w.begin(base + ts, pid, pid, "python3", name, &[]);
        } else {
            w.end(base + ts, pid, pid);
        }
    }
    let stats = w.finish()?;
    println!("{file}: {} events, {} bytes", stats.events, stats.bytes);
    Ok(())
}
