//! tracefs: find or mount it, create and remove uprobe events, and clean up
//! the events of tracers that died without removing theirs (SIGKILL).
//!
//! Every group this crate creates is named `stapsdt_<pid of the tracer>`,
//! so a later tracer can tell the groups of dead tracers from live ones.

use crate::format::EventFormat;
use crate::Error;
use std::io::Write;
use std::path::{Path, PathBuf};

const GROUP_PREFIX: &str = "stapsdt_";

/// A tracefs mount.
#[derive(Debug, Clone)]
pub struct Tracefs {
    root: PathBuf,
}

impl Tracefs {
    /// The mounted tracefs, mounting it at `/sys/kernel/tracing` if needed.
    pub fn open() -> Result<Tracefs, Error> {
        for root in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
            if Path::new(root).join("uprobe_events").exists() {
                return Ok(Tracefs { root: root.into() });
            }
        }
        let target = c"/sys/kernel/tracing";
        // SAFETY: plain mount(2) with static NUL-terminated strings.
        let rc = unsafe {
            libc::mount(
                c"nodev".as_ptr(),
                target.as_ptr(),
                c"tracefs".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(Error::os(
                "mounting tracefs at /sys/kernel/tracing",
                std::io::Error::last_os_error(),
            ));
        }
        let root = PathBuf::from("/sys/kernel/tracing");
        if !root.join("uprobe_events").exists() {
            return Err(Error::Unsupported(
                "this kernel has no uprobe events (CONFIG_UPROBE_EVENTS)".into(),
            ));
        }
        Ok(Tracefs { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A group name for a new session's events: `stapsdt_<pid>`, then
    /// `stapsdt_<pid>_<n>` for further sessions of the same process (event
    /// names restart at 0 in each session).
    pub fn new_group() -> String {
        static SESSIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let pid = std::process::id();
        match SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
            0 => format!("{GROUP_PREFIX}{pid}"),
            n => format!("{GROUP_PREFIX}{pid}_{n}"),
        }
    }

    /// Append one command to `uprobe_events`. Opened for append: truncating
    /// the file would remove every uprobe event on the system.
    fn command(&self, line: &str) -> Result<(), std::io::Error> {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.root.join("uprobe_events"))?;
        file.write_all(format!("{line}\n").as_bytes())
    }

    /// The kernel's explanation of the last failed command, if it logged one.
    fn last_error(&self) -> Option<String> {
        let log = std::fs::read_to_string(self.root.join("error_log")).ok()?;
        let lines: Vec<&str> = log.lines().collect();
        // The log shows the command, then a caret line under the bad part.
        let at = lines.iter().rposition(|l| l.contains("Command:"))?;
        let reason = lines.get(at.checked_sub(1)?)?;
        let reason = reason.split_once("] ").map_or(*reason, |(_, r)| r).trim();
        Some(reason.to_string())
    }

    /// Create `p:GROUP/NAME PLACE ARGS` (or `r:` for a return probe).
    pub fn add_uprobe(&self, definition: &UprobeDefinition) -> Result<UprobeEvent, Error> {
        let line = definition.command();
        if let Err(e) = self.command(&line) {
            if e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EPERM) {
                return Err(Error::Privileges);
            }
            let why = self.last_error().unwrap_or_else(|| e.to_string());
            return Err(Error::Kernel(format!(
                "the kernel refused uprobe `{line}`: {why}"
            )));
        }
        let event = UprobeEvent {
            tracefs: self.clone(),
            group: definition.group.clone(),
            name: definition.name.clone(),
        };
        Ok(event)
    }

    /// Remove the uprobe events of groups `stapsdt_<pid>` whose process is gone.
    /// Returns the groups removed.
    pub fn remove_stale_groups(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.root.join("uprobe_events")).unwrap_or_default();
        let mut removed = Vec::new();
        for (group, event) in text.lines().filter_map(group_and_event) {
            let Some(pid) = group.strip_prefix(GROUP_PREFIX) else {
                continue;
            };
            let pid = pid.split('_').next().unwrap_or(pid);
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            if Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            if self.command(&format!("-:{group}/{event}")).is_ok() && !removed.contains(&group) {
                removed.push(group);
            }
        }
        removed
    }
}

/// `p:group/event ...` → (group, event).
fn group_and_event(line: &str) -> Option<(String, String)> {
    let head = line.split_whitespace().next()?;
    let (_, name) = head.split_once(':')?;
    let (group, event) = name.split_once('/')?;
    Some((group.to_string(), event.to_string()))
}

/// What to write to `uprobe_events`.
#[derive(Debug, Clone)]
pub struct UprobeDefinition {
    pub group: String,
    pub name: String,
    pub path: PathBuf,
    pub offset: u64,
    pub ref_ctr_offset: Option<u64>,
    pub retprobe: bool,
    /// `name=fetcharg:type` each.
    pub args: Vec<String>,
}

impl UprobeDefinition {
    fn command(&self) -> String {
        let mut line = format!(
            "{}:{}/{} {}:0x{:x}",
            if self.retprobe { 'r' } else { 'p' },
            self.group,
            self.name,
            self.path.display(),
            self.offset
        );
        if let Some(sem) = self.ref_ctr_offset {
            line.push_str(&format!("(0x{sem:x})"));
        }
        for arg in &self.args {
            line.push(' ');
            line.push_str(arg);
        }
        line
    }
}

/// A uprobe event in tracefs, removed on Drop. Perf events on it must be
/// closed first (the kernel refuses to remove a busy event), which the
/// session's field order guarantees.
#[derive(Debug)]
pub struct UprobeEvent {
    tracefs: Tracefs,
    group: String,
    name: String,
}

impl UprobeEvent {
    fn dir(&self) -> PathBuf {
        self.tracefs
            .root
            .join("events")
            .join(&self.group)
            .join(&self.name)
    }

    /// The tracepoint id, for perf_event_open.
    pub fn id(&self) -> Result<u64, Error> {
        let path = self.dir().join("id");
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| Error::Kernel(format!("cannot read {}", path.display())))
    }

    /// The record layout, from the event's `format` file.
    pub fn format(&self) -> Result<EventFormat, Error> {
        let path = self.dir().join("format");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::Kernel(format!("cannot read {}: {e}", path.display())))?;
        EventFormat::parse(&text).map_err(|e| Error::Kernel(format!("{}: {e}", path.display())))
    }
}

impl Drop for UprobeEvent {
    /// The kernel answers EBUSY while a reference from a just-closed perf
    /// event is still being dropped; that passes within milliseconds.
    fn drop(&mut self) {
        let command = format!("-:{}/{}", self.group, self.name);
        for _ in 0..200 {
            match self.tracefs.command(&command) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                _ => return,
            }
        }
    }
}
