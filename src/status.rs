//! Exit statuses, one table for every command, and where records go
//! (`-o FILE` or standard output) with the one-line report of a failed write.

use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// The exit statuses of every command (`--help`, README "Exit status").
pub const TABLE: &str = "\
Exit status (every command):
  0  done
  1  nothing found: no input could be read, or no probe, function or event
     matches a selector
  2  usage: a bad option, probe spelling, filter or template, or an argument
     a probe does not have
  3  tracing failed: no privileges, the kernel refused a program or a
     uprobe
  4  writing the output failed (disk full, closed pipe, -o FILE); the probes
     are detached first
With -c CMD and none of 1-4: the command's own exit status.
With --remote: 100 + the number of hosts that failed.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    NoMatch = 1,
    Usage = 2,
    Trace = 3,
    Output = 4,
}

/// A command that did not do its job: the one line to print and the status.
#[derive(Debug)]
pub struct Failure {
    pub status: Status,
    pub message: String,
}

impl Failure {
    pub fn new(status: Status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub fn code(&self) -> ExitCode {
        ExitCode::from(self.status as u8)
    }

    /// An error of the tracing engine: bad input is a usage error (or
    /// nothing matching), the rest a tracing failure.
    pub fn engine(context: Option<&str>, error: &uprobe_engine::Error) -> Failure {
        let text = match context {
            Some(c) => format!("{c}: {error}"),
            None => error.to_string(),
        };
        let status = match error {
            uprobe_engine::Error::Input(m) if is_no_match(m) => Status::NoMatch,
            uprobe_engine::Error::Input(_) => Status::Usage,
            _ => Status::Trace,
        };
        Failure::new(status, text)
    }
}

/// Whether an engine message says that a selector matched nothing.
pub fn is_no_match(message: &str) -> bool {
    message.contains("no SDT probe matches") || message.contains("no function symbol matches")
}

/// Plain messages are usage errors.
impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::new(Status::Usage, message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Failure {
        Failure::new(Status::Usage, message)
    }
}

/// `-o FILE` and `-q`, for the commands that print records.
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Write the records (lines, JSON, tables) to FILE instead of standard output
    /// (created or truncated). Messages still go to standard error.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Quiet: no "Tracing N locations" or exit-status lines on standard error;
    /// warnings and errors are still shown.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Where records go, with the name a failed write reports.
pub struct Out {
    pub name: String,
    pub writer: std::io::BufWriter<Box<dyn Write>>,
}

impl OutputArgs {
    /// Open the output (before anything is attached, so a bad path costs nothing).
    pub fn open(&self) -> Result<Out, Failure> {
        let (name, inner): (String, Box<dyn Write>) = match &self.output {
            Some(path) => {
                let file = std::fs::File::create(path).map_err(|e| {
                    Failure::new(Status::Output, format!("-o {}: {e}", path.display()))
                })?;
                (path.display().to_string(), Box::new(file))
            }
            None => ("standard output".into(), Box::new(std::io::stdout())),
        };
        Ok(Out {
            name,
            writer: std::io::BufWriter::with_capacity(1 << 16, inner),
        })
    }

    /// A status line for standard error, unless `-q`.
    pub fn note(&self, line: std::fmt::Arguments) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }
}
