//! Whose processes a tracer sees (`-p PID`, `-c CMD`, or every process):
//! one definition for `trace` and the runtime views.

use super::child::HeldChild;
use clap::Args;
use uprobe_engine::Target;

#[derive(Args, Debug, Clone)]
pub struct ProcessScope {
    /// Trace only this process: its threads, and the processes it starts later, each
    /// once its own breakpoints are in (measured: 4-14 ms after its fork for two
    /// PostgreSQL probes; a short-lived child is missed: use --tree).
    #[arg(
        short = 'p',
        long = "pid",
        value_name = "PID",
        conflicts_with = "command"
    )]
    pub pid: Option<u32>,

    /// With -p: also every process PID has started and starts, each from its first
    /// instruction (nothing missed, unlike plain -p, whose children get their own
    /// breakpoints a few ms after their fork). The breakpoints are then in every
    /// process that maps the probed files, and the kernel drops the others' hits.
    #[arg(long, requires = "pid")]
    pub tree: bool,

    /// Run this command (through /bin/sh) with the probes attached before its first
    /// instruction; stop when it exits and report its exit status.
    #[arg(short = 'c', long = "command", value_name = "CMD")]
    pub command: Option<String>,
}

impl ProcessScope {
    /// Start the `-c` command, held before its first instruction until the
    /// caller releases it, and name the engine's target.
    pub fn start(&self) -> Result<(Option<HeldChild>, Target), String> {
        self.start_with(&Default::default())
    }

    /// [`start`](Self::start), the command started with `setup`.
    pub fn start_with(
        &self,
        setup: &super::child::ChildSetup,
    ) -> Result<(Option<HeldChild>, Target), String> {
        let child = self
            .command
            .as_deref()
            .map(|c| HeldChild::spawn_with(c, setup))
            .transpose()?;
        let target = match (self.pid, &child) {
            (Some(pid), _) if self.tree => Target::ProcessTree(pid),
            (Some(pid), _) => Target::Process(pid),
            // A simple command is exec'd in the held child: its pid is the
            // command's, and the kernel's pid filter keeps the breakpoints
            // in it alone. A shell running a pipeline or a list forks the
            // processes that hit the probes: the whole tree is traced from
            // its first instruction.
            (None, Some(c)) if super::child::is_simple(self.command.as_deref().unwrap_or("")) => {
                Target::Process(c.pid())
            }
            (None, Some(c)) => Target::ProcessTree(c.pid()),
            (None, None) => Target::AllProcesses,
        };
        Ok((child, target))
    }
}

/// Whether `pid` is a live process (a zombie is not: it has exited).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}
