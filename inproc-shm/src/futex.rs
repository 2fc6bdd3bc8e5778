//! Waiting on and waking the shared words (`Header::control`, `state`,
//! `object_answer`) across the two processes: shared futexes, not
//! private ones, since the waker is the other process.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleep while `word` holds `expected`, at most `timeout` (or until a
/// wake). Spurious returns are fine: every caller loops and looks again.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: FUTEX_WAIT reads the u32 behind a live `&AtomicU32` and the
    // timespec on our stack; neither outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &timeout,
        )
    };
}

/// Wake every waiter on `word` (after storing its new value).
pub fn wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address of a live `&AtomicU32`.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX) };
}
