//! Following a process tree: the traced processes are a BPF set of process
//! ids, and a program on the `sched_process_fork` tracepoint adds each
//! child of a traced process to it before the child runs, and sends a fork
//! record through the ring so that the session attaches to the child too.
//! Exec keeps the pid, so a traced process stays traced.

use crate::bpf::sys::{Map, Program, ProgramKind};
use crate::perf::{self, PerfEvent};
use crate::{lower, tracefs, Error};

/// At most this many processes in a traced tree.
const MAX_PROCESSES: u32 = 65536;

pub struct ForkTracker {
    /// Dropped first: closing it detaches the program.
    _event: PerfEvent,
    _program: Program,
    set: Map,
}

impl ForkTracker {
    /// The set of traced processes.
    pub fn set_fd(&self) -> i32 {
        self.set.fd()
    }

    /// Trace `pid`, its descendants that run now, and the processes they
    /// create from now on.
    pub fn new(pid: u32, ring: i32) -> Result<ForkTracker, Error> {
        let set = Map::pid_set(MAX_PROCESSES)?;
        for p in descendants(pid) {
            set.insert_u32(p, 1)?;
        }
        let (id, format) = tracefs::tracepoint("sched", "sched_process_fork")?;
        let child = format
            .field("child_pid")
            .filter(|f| f.size == 4)
            .ok_or_else(|| {
                Error::Kernel("sched_process_fork has no 4-byte child_pid field".into())
            })?;
        let program = Program::load(
            &lower::fork_program(set.fd(), ring, child.offset as i16),
            ProgramKind::Tracepoint,
            "stapsdt_fork",
        )?;
        // One event is enough: the kernel runs a tracepoint's programs on
        // every CPU once any perf event has registered the tracepoint (and
        // refuses the same program twice on one tracepoint).
        let cpu = perf::online_cpus()[0];
        let event = PerfEvent::tracepoint(id, cpu)?;
        program.attach_to_perf_event(event.raw_fd())?;
        event.enable()?;
        Ok(ForkTracker {
            _event: event,
            _program: program,
            set,
        })
    }
}

/// `pid` and the processes below it now (from each thread's `children`
/// list in /proc; a process that ends meanwhile is skipped).
fn descendants(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut at = 0;
    while at < all.len() && all.len() < MAX_PROCESSES as usize {
        let p = all[at];
        at += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let path = task.path().join("children");
            let text = std::fs::read_to_string(path).unwrap_or_default();
            all.extend(
                text.split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    all
}

#[cfg(test)]
mod tests {
    #[test]
    fn descendants_include_running_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let found = super::descendants(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found[0], std::process::id());
        assert!(found.contains(&child.id()), "{found:?}");
    }
}
