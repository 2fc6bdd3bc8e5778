//! stap-sdt's in-process agent, preloaded (`LD_PRELOAD`) into a program
//! that `stap-sdt trace --in-process` starts.
//!
//! At load it maps the tracer's shared memory (descriptor in
//! `STAP_SDT_INPROC_FD`), and, when asked to attach, patches the 5-byte
//! nop of every cheap site of the tracer's plan in every loaded object
//! into a call to a stub near the object (`push $site; jmp trampoline`),
//! and raises the sites' semaphores. Each hit fetches the arguments as the
//! plan says and writes a record to the shared ring (or counts). A thread
//! of the agent applies the tracer's attach/detach requests (a futex in
//! the shared memory) and detaches when the tracer is gone; `dlopen` and
//! `dlclose` are wrapped so that libraries loaded later are patched too.
//! A `fork` child gets the original bytes back and its semaphores lowered
//! at once: only the process the tracer started is traced.
//!
//! x86-64 only (the cheap site, the trampoline and the patching are
//! x86-64's); on other targets the library is empty.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

mod asm;
mod control;
mod hit;
mod hooks;
mod mailbox;
mod objects;
mod patch;
mod shared;
mod signals;
mod sites;

use shared::Agent;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

static AGENT: AtomicPtr<Agent> = AtomicPtr::new(std::ptr::null_mut());
/// The same, kept in a fork child (which clears `AGENT`).
static SHARED: AtomicPtr<Agent> = AtomicPtr::new(std::ptr::null_mut());
/// False in a fork child: its sites are restored, it traces nothing.
static ACTIVE: AtomicBool = AtomicBool::new(false);

pub(crate) fn agent() -> Option<&'static Agent> {
    let p = AGENT.load(Ordering::Acquire);
    // SAFETY: set once to a leaked Box, never freed.
    (!p.is_null()).then(|| unsafe { &*p })
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;

extern "C" fn init() {
    let Some(agent) = shared::map_shared() else {
        return;
    };
    let agent: &'static Agent = Box::leak(Box::new(agent));
    signals::install();
    if !patch::register_sync_core() {
        agent
            .header
            .error
            .store(inproc_shm::ERROR_MEMBARRIER, Ordering::Relaxed);
    }
    SHARED.store(agent as *const Agent as *mut Agent, Ordering::Release);
    AGENT.store(agent as *const Agent as *mut Agent, Ordering::Release);
    ACTIVE.store(true, Ordering::Release);
    // SAFETY: handlers are plain functions of this library.
    unsafe {
        libc::pthread_atfork(
            Some(hooks::before_fork),
            Some(hooks::after_fork),
            Some(hooks::in_child),
        )
    };
    // Apply a request made before the program started (attach from the
    // first instruction), then follow the tracer from a thread.
    control::apply(agent, agent.header.control.load(Ordering::Acquire));
    let _ = std::thread::Builder::new()
        .name("stap-sdt-agent".into())
        .spawn(move || control::control(agent));
}
