//! Which backend carries out a run's plan: the kernel's (BPF on uprobes,
//! the default) or the in-process agent (`--in-process`): the same calls,
//! the same events and aggregates, for `drive`.

use crate::status::{Failure, Status};
use std::path::PathBuf;
use uprobe_engine::inproc::{InProcess, SharedMemory};
use uprobe_engine::{AggRow, AttachReport, Event, ProbeInfo, Selector, Session, SiteRole};

pub(crate) enum Backend {
    Kernel(Box<Session>),
    InProcess(Box<InProcess>),
}

impl Backend {
    pub fn attach_as(
        &mut self,
        selector: &Selector,
        role: SiteRole,
    ) -> Result<Vec<AttachReport>, uprobe_engine::Error> {
        match self {
            Backend::Kernel(s) => s.attach_as(selector, role),
            Backend::InProcess(s) => s.attach_as(selector, role),
        }
    }

    pub fn probes(&self) -> Vec<&ProbeInfo> {
        match self {
            Backend::Kernel(s) => s.probes().collect(),
            Backend::InProcess(s) => s.probes().collect(),
        }
    }

    pub fn roles(&self) -> &[SiteRole] {
        match self {
            Backend::Kernel(s) => s.roles(),
            Backend::InProcess(s) => s.roles(),
        }
    }

    pub fn start(&mut self) -> Result<(), uprobe_engine::Error> {
        match self {
            Backend::Kernel(s) => s.start(),
            Backend::InProcess(s) => s.start(),
        }
    }

    pub fn poll(&mut self, timeout_ms: i32, handler: impl FnMut(&Event)) -> usize {
        match self {
            Backend::Kernel(s) => s.poll(timeout_ms, handler),
            Backend::InProcess(s) => s.poll(timeout_ms, handler),
        }
    }

    pub fn stop(&mut self) {
        match self {
            Backend::Kernel(s) => s.stop(),
            Backend::InProcess(s) => s.stop(),
        }
    }

    pub fn lost(&self) -> u64 {
        match self {
            Backend::Kernel(s) => s.lost(),
            Backend::InProcess(s) => s.lost(),
        }
    }

    pub fn lost_keys(&self) -> u64 {
        match self {
            Backend::Kernel(s) => s.lost_keys(),
            Backend::InProcess(s) => s.lost_keys(),
        }
    }

    pub fn aggregates(&self) -> Vec<AggRow> {
        match self {
            Backend::Kernel(s) => s.aggregates(),
            Backend::InProcess(s) => s.aggregates(),
        }
    }

    /// The kernel session (what only it has: stacks, metrics, gates).
    pub fn kernel(&self) -> Option<&Session> {
        match self {
            Backend::Kernel(s) => Some(s),
            Backend::InProcess(_) => None,
        }
    }

    /// In process, `PROVIDER:NAME` (no path) is also planned in the
    /// objects the program loads later (`dlopen`, probes defined at run
    /// time). Returns those selectors' spellings.
    pub fn defer_bare_selectors<'a>(
        &mut self,
        probes: &'a [(String, SiteRole)],
    ) -> Vec<&'a String> {
        let Backend::InProcess(s) = self else {
            return Vec::new();
        };
        let mut deferred = Vec::new();
        for (text, _) in probes {
            if let Ok(Selector::Usdt {
                path: None,
                provider,
                name,
            }) = Selector::parse(text)
            {
                s.attach_deferred(provider, name);
                deferred.push(text);
            }
        }
        deferred
    }

    /// Warnings that came up while tracing: what the in-process agent could
    /// not plan or patch in objects loaded later (none from the kernel).
    pub fn take_warnings(&mut self) -> Vec<String> {
        match self {
            Backend::Kernel(_) => Vec::new(),
            Backend::InProcess(s) => s.take_warnings(),
        }
    }

    pub fn agent_error(&self) -> Option<String> {
        match self {
            Backend::InProcess(s) => s.agent_error(),
            Backend::Kernel(_) => None,
        }
    }
}

/// The agent library: `$STAP_SDT_AGENT`, or next to this binary (as cargo
/// builds it into the same directory).
pub(crate) fn agent_path() -> Result<PathBuf, String> {
    const NAME: &str = "libstap_sdt_agent.so";
    if let Some(given) = std::env::var_os("STAP_SDT_AGENT") {
        let path = PathBuf::from(given);
        return if path.is_file() {
            Ok(std::fs::canonicalize(&path).unwrap_or(path))
        } else {
            Err(format!(
                "--in-process: $STAP_SDT_AGENT names {}, which is not a file",
                path.display()
            ))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("--in-process: {e}"))?;
    let beside = exe.with_file_name(NAME);
    if beside.is_file() {
        return Ok(beside);
    }
    Err(format!(
        "--in-process: the agent {NAME} is not next to {} and $STAP_SDT_AGENT is not set \
         (build it with `cargo build -p inproc-agent`)",
        exe.display()
    ))
}

/// The shared memory and the command's setup for an in-process run of
/// `command` (`-c`).
pub(crate) fn in_process_setup(
    command: Option<&str>,
) -> Result<(SharedMemory, super::child::ChildSetup), Failure> {
    let Some(command) = command else {
        return Err(Failure::new(
            Status::Usage,
            "--in-process starts the program it traces: use it with -c CMD",
        ));
    };
    // The agent traces the process the shell execs, not processes it
    // forks (a pipeline's): say so rather than trace nothing.
    if !super::child::is_simple(command) {
        return Err(Failure::new(
            Status::Usage,
            format!(
                "--in-process traces the command's own process: `{command}` is not a \
                 simple command (no pipes, lists or redirections)"
            ),
        ));
    }
    let agent = agent_path()?;
    let shared = SharedMemory::new().map_err(|e| e.to_string())?;
    let setup = super::child::ChildSetup {
        env: shared.child_env(&agent),
        keep_fd: Some(shared.raw_fd()),
    };
    Ok((shared, setup))
}
