//! The process's events the agent follows: `fork` (the child is restored),
//! `dlopen` and `dlclose` (libraries loaded later are patched too).

use crate::shared::Agent;
use crate::sites::{attach, detach, forget_unloaded, lock, unlock, with_state, LOCKED};
use crate::{agent, hit, objects, ACTIVE, AGENT, SHARED};
use std::sync::atomic::Ordering;

pub(crate) extern "C" fn before_fork() {
    lock();
}

pub(crate) extern "C" fn after_fork() {
    unlock();
}

/// A fork child: the original bytes back, semaphores lowered (in the
/// child's copy), nothing traced. Its only thread is the forking one.
pub(crate) extern "C" fn in_child() {
    hit::forget_thread();
    ACTIVE.store(false, Ordering::Release);
    AGENT.store(std::ptr::null_mut(), Ordering::Release);
    if let Some(agent) = agent_for_child() {
        // SAFETY: the lock is held since before_fork, by this thread.
        let state = unsafe { &mut *LOCKED.state.get() };
        detach(agent, state, false);
    }
    unlock();
}

/// The agent as it was before the fork (the child no longer publishes it
/// to the hit path).
fn agent_for_child() -> Option<&'static Agent> {
    let p = SHARED.load(Ordering::Acquire);
    // SAFETY: a leaked Box, as AGENT.
    (!p.is_null()).then(|| unsafe { &*p })
}

type DlopenFn = unsafe extern "C" fn(*const libc::c_char, libc::c_int) -> *mut libc::c_void;
type DlcloseFn = unsafe extern "C" fn(*mut libc::c_void) -> libc::c_int;

fn next<T>(name: &std::ffi::CStr) -> Option<T> {
    // SAFETY: dlsym of a symbol of the next object; `T` is its function type.
    unsafe {
        let p = libc::dlsym(libc::RTLD_NEXT, name.as_ptr());
        (!p.is_null()).then(|| std::mem::transmute_copy(&p))
    }
}

/// `dlopen`, and the library's sites patched when attached.
///
/// # Safety
/// As `dlopen`.
#[no_mangle]
pub unsafe extern "C" fn dlopen(
    name: *const libc::c_char,
    flags: libc::c_int,
) -> *mut libc::c_void {
    let Some(real) = next::<DlopenFn>(c"dlopen") else {
        return std::ptr::null_mut();
    };
    // SAFETY: the caller's arguments, passed on.
    let handle = unsafe { real(name, flags) };
    if let (false, Some(agent)) = (handle.is_null(), agent()) {
        with_state(|s| {
            if s.attached {
                attach(agent, s);
            }
        });
    }
    handle
}

/// `dlclose`; what the library had patched is forgotten once it is gone.
///
/// # Safety
/// As `dlclose`.
#[no_mangle]
pub unsafe extern "C" fn dlclose(handle: *mut libc::c_void) -> libc::c_int {
    let Some(real) = next::<DlcloseFn>(c"dlclose") else {
        return -1;
    };
    // SAFETY: the caller's handle, passed on.
    let result = unsafe { real(handle) };
    if agent().is_some() {
        let loaded = objects::loaded();
        with_state(|s| forget_unloaded(s, &loaded));
    }
    result
}
