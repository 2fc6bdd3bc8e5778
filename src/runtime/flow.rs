//! `stap-sdt flow`: function entries and returns per thread, indented by
//! call depth, with timestamps, like bcc's uflow.

use super::{function_name, Scope};
use crate::status::Failure;
use clap::Args;
use std::collections::HashMap;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(after_help = "\
Columns: CPU, PID, TID, microseconds since the first event, then `->` for an entry and \
`<-` for a return, indented two spaces per open call on that thread.

Examples:
  stap-sdt flow -l python -c '/usr/bin/python3.11 script.py'
  stap-sdt flow -l java -p 1234 --filter Hello.")]
pub struct FlowArgs {
    #[command(flatten)]
    scope: Scope,

    /// Show only functions whose name contains TEXT (depth still counts all).
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
}

pub fn run(args: FlowArgs) -> Result<ExitCode, Failure> {
    let runtime = lang_bindings::Runtime::from_name(&args.scope.language)?;
    let (entry, exit) = runtime.call_events();
    let mut timeline = args.scope.open_timeline()?;
    let mut run = args.scope.open(&[entry, exit])?;
    let header = format!(
        "{:<3} {:<7} {:<7} {:>12} FUNCTION\n",
        "CPU", "PID", "TID", "TIME(us)"
    );
    run.print(header.as_bytes());
    let mut depth: HashMap<u32, usize> = HashMap::new();
    let mut first: Option<u128> = None;
    let code = run.each(|out, event| {
        let name = function_name(runtime, event);
        let start = *first.get_or_insert(event.time_ns);
        let d = depth.entry(event.tid).or_insert(0);
        let entering = *event.name == *entry;
        super::slice(&mut timeline, event, entering, &name);
        if !entering {
            *d = d.saturating_sub(1);
        }
        let mut result = Ok(());
        if args.filter.as_deref().is_none_or(|f| name.contains(f)) {
            result = writeln!(
                out,
                "{:<3} {:<7} {:<7} {:>12.3} {}{} {}",
                event.cpu,
                event.pid,
                event.tid,
                (event.time_ns - start) as f64 / 1000.0,
                "  ".repeat(*d),
                if entering { "->" } else { "<-" },
                name
            );
        }
        if entering {
            *d += 1;
        }
        result
    });
    let result = run.close(code);
    args.scope.close_timeline(timeline, result)
}
