//! `stap-sdt`: list, trace and debug userspace static probes.

mod dtrace;
mod flame;
mod gdb;
mod list;
mod pictures;
mod runtime;
mod timeline;
mod trace;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "stap-sdt",
    version,
    about = "List, trace and debug userspace static probes (SystemTap SDT / USDT)",
    long_about = "stap-sdt finds the static probes (.note.stapsdt) that programs and libraries \
carry, decodes their arguments, and attaches to them in live processes.\n\n\
Examples:\n  \
stap-sdt list -v /usr/lib/x86_64-linux-gnu/libstdc++.so.6\n  \
stap-sdt list -p 1234 'python:function__*'\n  \
stap-sdt trace -p 1234 --format '%s %s:%d' 'python:function__entry'\n  \
stap-sdt trace -c 'python3.11 app.py' --count 'python3.11:python:*'\n  \
stap-sdt calls -l python -L -p 1234\n  \
stap-sdt gdb -- --args ./server\n  \
stap-sdt dtrace -C -h -s probes.d -o probes.h\n\n\
Each command has --help; the README has a tour with real output."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the probes of ELF files, directories, archives or a live process.
    List(list::ListArgs),
    /// Attach to probes and functions in live processes; print hits, counts or histograms.
    Trace(trace::TraceArgs),
    /// Time from a START probe to an END probe per thread (or matched argument): histograms, percentiles.
    Latency(trace::latency::LatencyArgs),
    /// Calls per function of a Python, Java or Perl program (-L: latency), like bcc's ucalls.
    Calls(runtime::calls::CallsArgs),
    /// Function entries and returns per thread, indented, like bcc's uflow.
    Flow(runtime::flow::FlowArgs),
    /// Named, decoded events of a Python, Java or Perl runtime (tapsets).
    Events(runtime::events::EventsArgs),
    /// The Python, Java and Perl runtimes here and the named events their probes offer.
    Tapsets(runtime::tapsets::TapsetsArgs),
    /// Start GDB with the stap-sdt plugin (sdt-break, $_probe_argN, info sdt) loaded.
    Gdb(gdb::GdbArgs),
    /// Generate a probe header (-h) or semaphore object (-G) from a D provider file, like SystemTap's dtrace.
    Dtrace(dtrace::DtraceArgs),
    /// Timeline and flame graph writers on synthetic events (bench, browser check).
    #[command(hide = true)]
    DebugPictures(pictures::PicturesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List(args) => list::run(args),
        Command::Trace(args) => trace::run(args),
        Command::Latency(args) => trace::latency::run(args),
        Command::Calls(args) => runtime::calls::run(args),
        Command::Flow(args) => runtime::flow::run(args),
        Command::Events(args) => runtime::events::run(args),
        Command::Tapsets(args) => runtime::tapsets::run(args),
        Command::Gdb(args) => gdb::run(args),
        Command::Dtrace(args) => dtrace::run(args),
        Command::DebugPictures(args) => pictures::run(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("stap-sdt: {message}");
            ExitCode::from(2)
        }
    }
}
