//! `--remote`: the same command on many hosts through the system's ssh
//! client, results brought home (records tagged and in time order,
//! aggregates merged), a failed host named once while the others go on.
//!
//! Each host runs this very binary, copied there once per version; its
//! results come back as the text it prints (JSON rows for aggregates),
//! so home needs nothing but ssh's pipes.

pub mod args;
mod merge;
mod ssh;

use crate::status::{Failure, OutputArgs, Status};
use crate::trace::signals;
use args::{Host, Mode, RemoteArgs};
use clap::ArgMatches;
use std::io::Write;
use std::process::ExitCode;
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::time::{Duration, Instant};
use uprobe_engine::{AggValue, Buckets};

/// How long hosts are given to print their last results and end after a
/// Ctrl-C, before their connections are cut.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// `Some` when the command names hosts: run it there instead of here.
pub fn intercept(command: &str, matches: &ArgMatches) -> Option<Result<ExitCode, Failure>> {
    if !args::COMMANDS.contains(&command) {
        return None;
    }
    let remote = RemoteArgs::from_matches(matches);
    let hosts = match remote.hosts() {
        Ok(h) if h.is_empty() => return None,
        Ok(h) => h,
        Err(e) => return Some(Err(e.into())),
    };
    Some(run(command, matches, &remote, hosts))
}

fn flag(matches: &ArgMatches, id: &str) -> bool {
    matches!(matches.try_get_one::<bool>(id), Ok(Some(true)))
}

fn text(matches: &ArgMatches, id: &str) -> Option<String> {
    matches.try_get_one::<String>(id).ok().flatten().cloned()
}

/// What each host's results go through at home.
enum Sink {
    Blocks(merge::Blocks),
    Records(merge::Records),
    Aggregate(Box<merge::Aggregates>),
}

/// A host's run, from its start to its outcome.
struct HostRun {
    host: Host,
    running: Option<ssh::Running>,
    eof: bool,
    stderr_done: bool,
    last_error: String,
    outcome: Option<Result<(), String>>,
}

fn run(
    command: &str,
    matches: &ArgMatches,
    remote: &RemoteArgs,
    names: Vec<String>,
) -> Result<ExitCode, Failure> {
    let words: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let plan = args::plan(command, matches, &words)?;
    let hosts: Vec<Host> = names
        .iter()
        .map(|n| Host::parse(n))
        .collect::<Result<_, _>>()?;
    let out_args = OutputArgs {
        output: matches
            .try_get_one::<std::path::PathBuf>("output")
            .ok()
            .flatten()
            .cloned(),
        quiet: flag(matches, "quiet"),
    };
    let mut sink = match &plan.mode {
        Mode::Blocks => Sink::Blocks(merge::Blocks::new(names.clone())),
        Mode::Records { json } => Sink::Records(merge::Records::new(names.clone(), *json)),
        Mode::Aggregate => {
            let (value, value_name) =
                match (command, text(matches, "hist")) {
                    ("latency", _) => (AggValue::Latency, "latency".to_string()),
                    (_, Some(h)) => {
                        let n = h.strip_prefix("arg").unwrap_or(&h).parse::<usize>().map_err(|_| {
                        format!("--hist `{h}`: expected an argument number 0..11 (or arg0..arg11)")
                    })?;
                        (AggValue::Arg(n), format!("arg{n}"))
                    }
                    _ => (AggValue::Count, "count".to_string()),
                };
            let agg = crate::trace::summary::AggArgs {
                linear: text(matches, "linear"),
                ..Default::default()
            };
            let buckets: Buckets = agg.buckets()?;
            Sink::Aggregate(Box::new(merge::Aggregates::new(
                names.clone(),
                &plan.by,
                value,
                buckets,
                value_name,
            )?))
        }
    };
    let json = flag(matches, "json");
    let top = matches.try_get_one::<usize>("top").ok().flatten().copied();
    let interval = matches
        .try_get_one::<f64>("interval")
        .ok()
        .flatten()
        .map(|s| Duration::from_secs_f64(*s));
    let local = ssh::Local::new()?;
    let ssh_command = remote.ssh();
    let out = out_args.open()?;
    let output_name = out.name.clone();
    let mut writer = out.writer;
    signals::install();

    // Every host is checked (and given the binary) at once.
    let prepared: Vec<Result<bool, String>> = std::thread::scope(|s| {
        let jobs: Vec<_> = hosts
            .iter()
            .map(|h| s.spawn(|| ssh::prepare(&ssh_command, h, &local)))
            .collect();
        jobs.into_iter()
            .map(|j| {
                j.join()
                    .unwrap_or_else(|_| Err("checking the host failed".into()))
            })
            .collect()
    });
    let mut failed = 0;
    let (tx, rx) = channel();
    let mut runs: Vec<HostRun> = Vec::new();
    for (i, (host, ready)) in hosts.iter().zip(prepared).enumerate() {
        let mut run = HostRun {
            host: host.clone(),
            running: None,
            eof: true,
            stderr_done: true,
            last_error: String::new(),
            outcome: None,
        };
        match ready {
            Err(why) => {
                eprintln!("stap-sdt: host {}: {why}", host.name);
                failed += 1;
                run.outcome = Some(Err(why));
            }
            Ok(copied) if signals::received().is_none() => {
                if copied {
                    out_args.note(format_args!(
                        "stap-sdt: {}: copied stap-sdt ({}) to ~/.cache/stap-sdt/bin/{}",
                        host.name,
                        local.machine,
                        &local.sum[..16]
                    ));
                }
                match ssh::start(
                    &ssh_command,
                    host,
                    &local,
                    &plan.argv,
                    i,
                    out_args.quiet,
                    tx.clone(),
                ) {
                    Ok(r) => {
                        run.running = Some(r);
                        run.eof = false;
                        run.stderr_done = false;
                    }
                    Err(why) => {
                        eprintln!("stap-sdt: host {}: {why}", host.name);
                        failed += 1;
                        run.outcome = Some(Err(why));
                    }
                }
            }
            Ok(_) => run.outcome = Some(Ok(())),
        }
        runs.push(run);
    }
    drop(tx);
    // A host that sends nothing must not hold the others' records back.
    for (i, r) in runs.iter().enumerate() {
        if r.running.is_none() {
            end_host(&mut sink, i, &mut writer).ok();
        }
    }

    let mut write_error: Option<std::io::Error> = None;
    let mut stop_by: Option<Instant> = None;
    let mut next_print = interval.map(|i| Instant::now() + i);
    let mut next_publish = Instant::now();
    loop {
        if stop_by.is_none() && (signals::received().is_some() || write_error.is_some()) {
            stop_by = Some(Instant::now() + STOP_LIMIT);
            for r in runs.iter_mut() {
                if let Some(running) = &mut r.running {
                    ssh::stop(running);
                }
            }
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(ssh::Message::Line(i, line)) => {
                let result = match &mut sink {
                    Sink::Blocks(b) => {
                        b.line(i, line);
                        Ok(())
                    }
                    Sink::Records(r) => r.line(i, &line, &mut writer),
                    Sink::Aggregate(a) => {
                        if let Err(e) = a.line(i, &line) {
                            eprintln!("stap-sdt: {}: {e}", runs[i].host.name);
                        }
                        Ok(())
                    }
                };
                note(&mut write_error, result);
            }
            Ok(ssh::Message::Eof(i)) => {
                runs[i].eof = true;
                note(&mut write_error, end_host(&mut sink, i, &mut writer));
            }
            Ok(ssh::Message::LastError(i, last)) => {
                runs[i].stderr_done = true;
                runs[i].last_error = last;
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
        }
        for (i, r) in runs.iter_mut().enumerate() {
            let (Some(running), None) = (&mut r.running, &r.outcome) else {
                continue;
            };
            if let Ok(Some(status)) = running.child.try_wait() {
                if r.eof && r.stderr_done {
                    r.outcome = Some(ssh::outcome(status).map_err(|why| {
                        if r.last_error.is_empty() {
                            why
                        } else {
                            format!("{why}: {}", r.last_error)
                        }
                    }));
                    if let Some(Err(why)) = &r.outcome {
                        eprintln!("stap-sdt: host {}: {why}", r.host.name);
                        failed += 1;
                    }
                }
            } else if stop_by.is_some_and(|t| Instant::now() >= t) {
                let _ = running.child.kill();
                let _ = running.child.wait();
                let why = format!(
                    "did not stop within {} s; connection cut",
                    STOP_LIMIT.as_secs()
                );
                eprintln!("stap-sdt: host {}: {why}", r.host.name);
                failed += 1;
                r.outcome = Some(Err(why));
                r.eof = true;
                note(&mut write_error, end_host(&mut sink, i, &mut writer));
            }
        }
        let done = runs.iter().all(|r| r.outcome.is_some());
        match &mut sink {
            Sink::Records(r) => {
                let result = r.release(&mut writer, done).and_then(|_| writer.flush());
                note(&mut write_error, result);
            }
            Sink::Aggregate(a) => {
                if crate::metrics::serving()
                    && (a.changed || done)
                    && Instant::now() >= next_publish
                {
                    let (names, rows) = a.per_host();
                    crate::metrics::publish_rows(&a.spec, &a.value_name, &names, rows, 0, 0);
                    a.changed = false;
                    next_publish = Instant::now() + Duration::from_millis(200);
                }
                if let (Some(i), Some(at)) = (interval, next_print) {
                    if Instant::now() >= at && !done && write_error.is_none() {
                        let result = crate::trace::summary::interval_stamp(&mut writer, json)
                            .and_then(|_| print_merged(a, &mut writer, json, top))
                            .and_then(|_| writer.flush());
                        note(&mut write_error, result);
                        next_print = Some(at + i);
                    }
                }
            }
            Sink::Blocks(_) => {}
        }
        if done {
            break;
        }
    }
    if let (Sink::Aggregate(a), None) = (&sink, &write_error) {
        let result = print_merged(a, &mut writer, json, top).and_then(|_| writer.flush());
        note(&mut write_error, result);
    }
    if write_error.is_none() {
        note(&mut write_error, writer.flush());
    }
    let _ = writer.into_parts();
    if remote.remote_clean {
        let cleaned: Vec<Result<(), String>> = std::thread::scope(|s| {
            let jobs: Vec<_> = hosts
                .iter()
                .map(|h| s.spawn(|| ssh::clean(&ssh_command, h)))
                .collect();
            jobs.into_iter()
                .map(|j| j.join().unwrap_or_else(|_| Err("cleaning failed".into())))
                .collect()
        });
        for (host, result) in hosts.iter().zip(cleaned) {
            match result {
                Ok(()) => out_args.note(format_args!(
                    "stap-sdt: {}: removed ~/.cache/stap-sdt/bin",
                    host.name
                )),
                // A host that failed already was named; say this only once too.
                Err(why)
                    if runs
                        .iter()
                        .any(|r| r.host == *host && matches!(r.outcome, Some(Ok(())))) =>
                {
                    eprintln!("stap-sdt: host {}: {why}", host.name);
                }
                Err(_) => {}
            }
        }
    }
    if let Some(e) = write_error {
        return Err(Failure::new(
            Status::Output,
            format!("writing to {output_name}: {e}; every host was stopped"),
        ));
    }
    if failed > 0 {
        out_args.note(format_args!(
            "stap-sdt: {failed} of {} host{} failed",
            hosts.len(),
            if hosts.len() == 1 { "" } else { "s" }
        ));
        return Ok(ExitCode::from((100 + failed).min(255) as u8));
    }
    Ok(ExitCode::SUCCESS)
}

/// A host's output ended: its block is printed, its records no longer
/// hold others back, its last rows are its final round.
fn end_host(sink: &mut Sink, i: usize, out: &mut impl Write) -> std::io::Result<()> {
    match sink {
        Sink::Blocks(b) => b.end(i, out),
        Sink::Records(r) => {
            r.end(i);
            Ok(())
        }
        Sink::Aggregate(a) => {
            a.round_done(i);
            Ok(())
        }
    }
}

fn note(slot: &mut Option<std::io::Error>, result: std::io::Result<()>) {
    if let Err(e) = result {
        slot.get_or_insert(e);
    }
}

fn print_merged(
    a: &merge::Aggregates,
    out: &mut impl Write,
    json: bool,
    top: Option<usize>,
) -> std::io::Result<()> {
    crate::trace::summary::print_merged(
        out,
        &a.spec,
        json,
        top,
        &a.value_name,
        &a.names(),
        a.merged(),
    )
}
