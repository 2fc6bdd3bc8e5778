//! The uprobe-engine API: attach to SDT probes of a program, receive typed
//! events in a closure, report what the kernel could not fetch, detach on drop.
//!
//! ```sh
//! cargo run --example trace_api -- /usr/bin/python3.11 'python:function__entry' 5
//! ```
//! (as root; arguments: object, PROVIDER:NAME glob, seconds to trace).

use std::time::{Duration, Instant};
use uprobe_engine::{Selector, Session, SessionOptions, Target, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [object, probe, seconds] = args.as_slice() else {
        eprintln!("usage: trace_api OBJECT PROVIDER:NAME SECONDS");
        std::process::exit(2);
    };
    let options = SessionOptions {
        // Show the first two arguments as strings (python's file and function).
        strings: vec![0, 1],
        ..SessionOptions::default()
    };
    let mut session = Session::new(Target::AllProcesses, options)?;
    for report in session.attach(&Selector::parse(&format!("{object}:{probe}"))?)? {
        for warning in report.warnings {
            eprintln!("{}: {warning}", report.label);
        }
    }
    session.start()?;
    let end = Instant::now() + Duration::from_secs(seconds.parse()?);
    let mut hits = 0u64;
    while Instant::now() < end {
        hits += session.poll(100, |event| {
            let args: Vec<String> = event
                .args
                .iter()
                .map(|v| match v {
                    Value::Str(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            println!(
                "{} {} {} {}",
                event.pid,
                event.comm,
                event.probe.label,
                args.join(" ")
            );
        }) as u64;
    }
    eprintln!("{hits} hits, {} lost", session.lost());
    Ok(())
    // `session` drops here: perf events closed, uprobe events removed.
}
