//! What this kernel offers the tracer, found at run time from the symbols
//! in /proc/kallsyms (names are listed even when addresses are hidden).

use std::io::{BufRead, BufReader};

pub struct Kernel {
    /// `uname -r`.
    pub release: String,
    /// (feature, found), in the order `--version` shows them.
    pub list: Vec<(&'static str, bool)>,
}

/// Each feature and the kernel symbols that must all be present for it.
const FEATURES: &[(&str, &[&str])] = &[
    // One BPF link for many uprobes (Linux 6.6).
    ("uprobe_multi", &["bpf_uprobe_multi_link_attach"]),
    // Sleepable uprobe programs (strings faulted in): uprobe_multi's runner
    // takes sleepable programs, and bpf_copy_from_user reads user memory.
    (
        "sleepable uprobes",
        &["uprobe_prog_run", "bpf_copy_from_user"],
    ),
    ("ring buffer", &["bpf_ringbuf_output"]),
    ("user stacks", &["bpf_get_stack"]),
];

pub fn kernel() -> Kernel {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let wanted: Vec<&str> = FEATURES.iter().flat_map(|f| f.1.iter().copied()).collect();
    let mut present = vec![false; wanted.len()];
    if let Ok(file) = std::fs::File::open("/proc/kallsyms") {
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            // "ADDRESS TYPE NAME [MODULE]"
            let Some(name) = line.split_whitespace().nth(2) else {
                continue;
            };
            if let Some(i) = wanted.iter().position(|w| *w == name) {
                present[i] = true;
            }
        }
    }
    let has = |symbol: &str| {
        wanted
            .iter()
            .position(|w| *w == symbol)
            .is_some_and(|i| present[i])
    };
    Kernel {
        release,
        list: FEATURES
            .iter()
            .map(|(name, symbols)| (*name, symbols.iter().all(|s| has(s))))
            .collect(),
    }
}
