//! The agent's signal handlers: SIGSEGV/SIGBUS in a safe copy (an argument
//! pointing nowhere) make the copy fail instead of the process; SIGTRAP on
//! the int3 of a site being patched is a hit. Every other signal goes to
//! the handler that was there before (or the default action).

use std::sync::atomic::{AtomicU32, Ordering};

static mut OLD_SEGV: Option<libc::sigaction> = None;
static mut OLD_BUS: Option<libc::sigaction> = None;
static mut OLD_TRAP: Option<libc::sigaction> = None;

/// Hits taken on an int3 (reported to the tracer).
pub static TRAPPED: AtomicU32 = AtomicU32::new(0);

/// Install the handlers (once, at load, before any thread of ours runs).
pub fn install() {
    // SAFETY: called once from the constructor, single-threaded, before any
    // handler can run; the statics are written only here.
    unsafe {
        OLD_SEGV = replace(libc::SIGSEGV);
        OLD_BUS = replace(libc::SIGBUS);
        OLD_TRAP = replace(libc::SIGTRAP);
    }
}

/// # Safety
/// Replaces the process's handler of `signal`.
unsafe fn replace(signal: i32) -> Option<libc::sigaction> {
    // SAFETY: zeroed sigactions are valid; the new one names our handler.
    unsafe {
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = handler as *const () as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        libc::sigemptyset(&mut new.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        (libc::sigaction(signal, &new, &mut old) == 0).then_some(old)
    }
}

extern "C" fn handler(signal: i32, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid ucontext for SA_SIGINFO handlers.
    let uc = unsafe { &mut *(context as *mut libc::ucontext_t) };
    let gregs = &mut uc.uc_mcontext.gregs;
    let rip = gregs[libc::REG_RIP as usize] as usize;
    match signal {
        libc::SIGSEGV | libc::SIGBUS => {
            if let Some(resume) = crate::asm::fault_continuation(rip) {
                gregs[libc::REG_RIP as usize] = resume as i64;
                return;
            }
        }
        libc::SIGTRAP => {
            // After an int3, %rip is one past it.
            if let Some(stub) = crate::patch::trap_target(rip.wrapping_sub(1)) {
                // As if the call were made: push the address after the
                // 5-byte nop (the site moved %rsp past the red zone) and
                // go to the stub.
                let rsp = gregs[libc::REG_RSP as usize] as usize - 8;
                // SAFETY: below the thread's %rsp, which the cheap site
                // lowered by 128 bytes first: stack the thread owns.
                unsafe { *(rsp as *mut u64) = (rip - 1 + 5) as u64 };
                gregs[libc::REG_RSP as usize] = rsp as i64;
                gregs[libc::REG_RIP as usize] = stub as i64;
                TRAPPED.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        _ => {}
    }
    // SAFETY: the statics were written before the handlers were installed.
    let old = unsafe {
        match signal {
            libc::SIGSEGV => OLD_SEGV,
            libc::SIGBUS => OLD_BUS,
            _ => OLD_TRAP,
        }
    };
    chain(signal, info, context, old);
}

/// Pass a signal that is not ours to the previous handler; with none, the
/// default action (the faulting instruction runs again and meets it).
fn chain(
    signal: i32,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
    old: Option<libc::sigaction>,
) {
    match old {
        Some(old) if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN => {
            if old.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler, called as the kernel would.
                let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(old.sa_sigaction) };
                f(signal, info, context);
            } else {
                // SAFETY: as above, a one-argument handler.
                let f: extern "C" fn(i32) = unsafe { std::mem::transmute(old.sa_sigaction) };
                f(signal);
            }
        }
        _ => {
            // SAFETY: restoring the default action; returning re-executes
            // the instruction, which now gets it.
            unsafe {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, std::ptr::null_mut());
                if signal == libc::SIGTRAP {
                    // An int3 does not trap again on return: raise it.
                    libc::raise(signal);
                }
            }
        }
    }
}
