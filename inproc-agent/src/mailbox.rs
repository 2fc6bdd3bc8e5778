//! Objects loaded after start, reported to the tracer to be planned (with
//! `DEFERRED`): the tracer reads the object, adds its sites to the shared
//! memory (maybe none) and answers; the agent waits for the answer before
//! it patches, so that the first hits after `dlopen` are seen.

use crate::objects::Loaded;
use crate::shared::Agent;
use inproc_shm::OBJECT_PATH_BYTES;
use std::ffi::CStr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long the agent waits for the tracer to plan one object.
const PLAN_LIMIT: Duration = Duration::from_secs(2);

/// A path to `object` that the tracer can open: `/proc/self/…` names
/// this process by its pid, other `/proc` paths (a memfd's
/// `/proc/PID/fd/N`) stay, files are made absolute.
fn path_for_tracer(object: &Loaded, pid: u32) -> Vec<u8> {
    let name = object.name.as_bytes();
    if let Some(rest) = name.strip_prefix(b"/proc/self/") {
        let mut path = format!("/proc/{pid}/").into_bytes();
        path.extend_from_slice(rest);
        return path;
    }
    if name.starts_with(b"/proc/") {
        return name.to_vec();
    }
    // SAFETY: a NUL-terminated name; realpath allocates the result, which
    // we copy and free.
    unsafe {
        let real = libc::realpath(object.name.as_ptr(), std::ptr::null_mut());
        if real.is_null() {
            return name.to_vec();
        }
        let path = CStr::from_ptr(real).to_bytes().to_vec();
        libc::free(real.cast());
        path
    }
}

/// Report `object` and wait (at most [`PLAN_LIMIT`], less if the tracer is
/// gone) until the tracer has planned it.
pub fn report(agent: &Agent, object: &Loaded) {
    let header = agent.header;
    header.object_dev.store(object.dev, Ordering::Relaxed);
    header.object_ino.store(object.ino, Ordering::Relaxed);
    let path = path_for_tracer(object, agent.pid);
    for (i, slot) in header.object_path.iter().enumerate() {
        let byte = if i + 1 < OBJECT_PATH_BYTES {
            path.get(i).copied().unwrap_or(0)
        } else {
            0
        };
        slot.store(byte, Ordering::Relaxed);
    }
    let request = header
        .object_request
        .load(Ordering::Relaxed)
        .wrapping_add(1);
    header.object_request.store(request, Ordering::Release);
    let deadline = Instant::now() + PLAN_LIMIT;
    loop {
        let answer = header.object_answer.load(Ordering::Acquire);
        if answer == request || Instant::now() >= deadline || crate::control::tracer_gone(agent) {
            return;
        }
        inproc_shm::futex::wait(&header.object_answer, answer, Duration::from_millis(10));
    }
}
