//! User stacks as names, for `--stack` lines and `--by ustack` keys: each
//! address becomes `symbol+offset (object) [file:line]` where the process's
//! maps and the object's symbols say, else the bare address. Warns once
//! when stacks look cut short by missing frame pointers.

use uprobe_engine::stacks::{self, Frame, StackSymbolizer};

pub struct StackNames {
    symbolizer: StackSymbolizer,
    /// Frames asked of the kernel (a stack this deep may go deeper).
    depth: usize,
    warned: bool,
}

impl StackNames {
    pub fn new(source_lines: bool, depth: usize) -> StackNames {
        StackNames {
            symbolizer: StackSymbolizer::with_source_lines(source_lines),
            depth,
            warned: false,
        }
    }

    /// Snapshot what naming `pid`'s addresses needs (its maps) while the
    /// process still runs; later calls cost nothing.
    pub fn remember(&mut self, pid: u32) {
        let _ = self.symbolizer.remember(pid);
    }

    /// The frames of a stack, innermost first.
    pub fn symbolize(&mut self, pid: u32, ips: &[u64]) -> Vec<Frame> {
        self.remember(pid);
        let frames = self
            .symbolizer
            .symbolize(pid, ips)
            .unwrap_or_else(|_| ips.iter().map(|&ip| Frame::unknown(ip)).collect());
        if !self.warned {
            if let Some(cut) = stacks::truncation(&frames, self.depth) {
                if matches!(cut, stacks::Truncation::FramePointers { .. }) {
                    eprintln!("stap-sdt: {cut}");
                    self.warned = true;
                }
            }
        }
        frames
    }

    /// One line per frame, innermost first.
    pub fn frames(&mut self, pid: u32, ips: &[u64]) -> Vec<String> {
        self.symbolize(pid, ips)
            .iter()
            .map(|f| f.to_string().trim().to_string())
            .collect()
    }
}
