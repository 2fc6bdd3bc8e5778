//! The agent's thread: applies the tracer's attach/detach requests (a
//! futex on the shared control word) and detaches when the tracer is gone.

use crate::shared::Agent;
use crate::sites::{attach, detach, with_state};
use crate::{signals, ACTIVE};
use inproc_shm::ATTACHED;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Follow the tracer's requests until it is gone; then detach.
pub fn control(agent: &'static Agent) {
    let header = agent.header;
    let mut applied = header.state.load(Ordering::Acquire);
    loop {
        if !ACTIVE.load(Ordering::Acquire) {
            return;
        }
        let wanted = header.control.load(Ordering::Acquire);
        if wanted != applied {
            apply(agent, wanted);
            applied = wanted;
        }
        inproc_shm::futex::wait(&header.control, wanted, Duration::from_millis(200));
        if tracer_gone(agent) {
            with_state(|s| {
                s.attached = false;
                detach(agent, s, true);
            });
            return;
        }
    }
}

pub fn tracer_gone(agent: &Agent) -> bool {
    if agent.tracer < 0 {
        return false;
    }
    let mut fd = libc::pollfd {
        fd: agent.tracer,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting; a pidfd is readable once its
    // process has exited (a descriptor the program closed is POLLNVAL:
    // then the tracer cannot be watched, which is not its end).
    unsafe { libc::poll(&mut fd, 1, 0) == 1 && fd.revents & libc::POLLIN != 0 }
}

/// Attach or detach as `request` says, then acknowledge it.
pub fn apply(agent: &'static Agent, request: u32) {
    with_state(|s| {
        s.attached = request & ATTACHED != 0;
        if s.attached {
            attach(agent, s);
        } else {
            detach(agent, s, true);
        }
    });
    agent
        .header
        .trapped
        .store(signals::TRAPPED.load(Ordering::Relaxed), Ordering::Relaxed);
    agent.header.state.store(request, Ordering::Release);
    inproc_shm::futex::wake(&agent.header.state);
}
