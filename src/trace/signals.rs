//! SIGINT, SIGTERM and SIGHUP end tracing cleanly: the handler only sets a flag,
//! and the main loop (whose poll is interrupted) detaches and prints the summary.

use std::sync::atomic::{AtomicI32, Ordering};

static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
}

pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installing a handler that only stores to an atomic; no
        // SA_RESTART, so a blocking poll returns early.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Signals that the tracer passes on to its `-c` command before it ends
/// (as bpftrace does): a SIGINT from a terminal reaches the command already.
pub fn forwarded(signal: i32) -> bool {
    signal == libc::SIGTERM || signal == libc::SIGHUP
}

/// How long a `-c` command is given to end after a forwarded signal.
pub const CHILD_EXIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The signal that asked us to stop, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// How long a tracing loop may wait for records before it looks at the
/// signal flag and the deadline again: 100 ms, or until the deadline
/// (`-d 0.01` ends after 10 ms, not 100).
pub fn poll_wait_ms(deadline: Option<std::time::Instant>) -> i32 {
    deadline.map_or(100, |d| {
        d.saturating_duration_since(std::time::Instant::now())
            .as_millis()
            .clamp(1, 100) as i32
    })
}
