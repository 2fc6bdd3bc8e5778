//! `stap-sdt`: list, trace and debug userspace static probes.

mod dtrace;
mod features;
mod flame;
mod gdb;
mod list;
mod metrics;
mod pictures;
mod pictures_out;
mod remote;
mod runtime;
mod status;
mod suggest;
mod timeline;
mod trace;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
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
Each command has --help; the README has a tour with real output.",
    after_long_help = status::TABLE
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(hide = true)]
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of stap-sdt, or of one of its commands.
    #[command(hide = true)]
    Man {
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
    /// Timeline and flame graph writers on synthetic events (bench, browser check).
    #[command(hide = true)]
    DebugPictures(pictures::PicturesArgs),
}

/// `--version`: the version, the commit, and what this kernel offers.
fn long_version() -> String {
    let features = features::kernel();
    let mut text = format!(
        "{} (commit {})\nkernel {}:",
        env!("CARGO_PKG_VERSION"),
        env!("STAP_SDT_COMMIT"),
        features.release
    );
    for (name, found) in &features.list {
        text.push_str(&format!(" {name} {}", if *found { "yes" } else { "no" }));
        if name != &features.list.last().unwrap().0 {
            text.push(',');
        }
    }
    // What `trace` will attach with ($STAP_SDT_ATTACH can choose).
    text.push_str(match uprobe_engine::bpf::sys::attach_mode() {
        uprobe_engine::bpf::sys::AttachMode::UprobeMulti => {
            "
attach: uprobe_multi links"
        }
        uprobe_engine::bpf::sys::AttachMode::PerfEvent => {
            "
attach: a uprobe perf event per site (no uprobe_multi, or STAP_SDT_ATTACH=perf)"
        }
    });
    text
}

/// The derived commands with the options that live outside their modules
/// (`--remote`, `--serve`).
fn full_command() -> clap::Command {
    metrics::augment(remote::args::augment(Cli::command()))
}

/// The command line's definition; with -V/--version, the long version.
fn definition() -> clap::Command {
    let command = full_command();
    let asks_version = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--version" || a == "-V");
    if asks_version {
        let text: &'static str = Box::leak(long_version().into_boxed_str());
        command.version(text).long_version(text)
    } else {
        command
    }
}

/// `stap-sdt man [COMMAND]`: roff from the same definitions as --help.
fn man(name: Option<&str>) -> Result<ExitCode, status::Failure> {
    let mut command = full_command();
    command.build();
    let page = match name {
        None => command,
        Some(n) => command
            .find_subcommand(n)
            .cloned()
            .map(|c| {
                let full: &'static str =
                    Box::leak(format!("stap-sdt-{}", c.get_name()).into_boxed_str());
                c.name(full)
            })
            .ok_or_else(|| format!("man: no command `{n}`"))?,
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| e.to_string())?;
    print_all(&out)
}

fn print_all(bytes: &[u8]) -> Result<ExitCode, status::Failure> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| {
            status::Failure::new(
                status::Status::Output,
                format!("writing to standard output: {e}"),
            )
        })?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let matches = definition().get_matches();
    if let Some((name, sub)) = matches.subcommand() {
        // Served and remote runs are set up from the options' matches: the
        // commands' own modules know nothing of them.
        if let Err(failure) = metrics::start(name, sub) {
            return finish(Err(failure));
        }
        if let Some(result) = remote::intercept(name, sub) {
            return finish(result);
        }
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result: Result<ExitCode, status::Failure> = match cli.command {
        Command::List(args) => list::run(args),
        Command::Trace(args) => trace::run(args),
        Command::Latency(args) => trace::latency::run(args),
        Command::Calls(args) => runtime::calls::run(args),
        Command::Flow(args) => runtime::flow::run(args),
        Command::Events(args) => runtime::events::run(args),
        Command::Tapsets(args) => runtime::tapsets::run(args).map_err(Into::into),
        Command::Gdb(args) => gdb::run(args).map_err(Into::into),
        Command::Dtrace(args) => dtrace::run(args).map_err(Into::into),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut full_command(), "stap-sdt", &mut out);
            print_all(&out)
        }
        Command::Man { command } => man(command.as_deref()),
        Command::DebugPictures(args) => pictures::run(args).map_err(Into::into),
    };
    finish(result)
}

fn finish(result: Result<ExitCode, status::Failure>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("stap-sdt: {}", failure.message);
            failure.code()
        }
    }
}
