//! perf events, only where BPF needs one: a tracepoint event per CPU to
//! carry the fork-tracking program. Closing the descriptor (Drop) detaches
//! the program.

use crate::Error;
use perf_event_open_sys as sys;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// An open perf event.
#[derive(Debug)]
pub struct PerfEvent {
    fd: OwnedFd,
}

impl PerfEvent {
    /// The tracepoint with id `id`, system-wide on `cpu`, counting only.
    pub fn tracepoint(id: u64, cpu: i32) -> Result<PerfEvent, Error> {
        // SAFETY: perf_event_attr is plain data; all-zero is its documented default.
        let mut attr: sys::bindings::perf_event_attr = unsafe { std::mem::zeroed() };
        attr.size = std::mem::size_of::<sys::bindings::perf_event_attr>() as u32;
        attr.type_ = sys::bindings::PERF_TYPE_TRACEPOINT;
        attr.config = id;
        attr.set_disabled(1);
        // SAFETY: attr is initialised and outlives the call.
        let fd = unsafe {
            sys::perf_event_open(
                &mut attr,
                -1,
                cpu,
                -1,
                sys::bindings::PERF_FLAG_FD_CLOEXEC as _,
            )
        };
        if fd < 0 {
            return Err(Error::os(
                "perf_event_open",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: fd was just returned by the kernel and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(PerfEvent { fd })
    }

    pub fn enable(&self) -> Result<(), Error> {
        // SAFETY: ioctl on a perf fd we own.
        if unsafe { sys::ioctls::ENABLE(self.fd.as_raw_fd(), 0) } < 0 {
            return Err(Error::os(
                "enabling a perf event",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

/// The CPUs that can run tasks, from `/sys/devices/system/cpu/online`.
pub fn online_cpus() -> Vec<i32> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
            cpus.extend(a..=b);
        }
    }
    if cpus.is_empty() {
        cpus.push(0);
    }
    cpus
}
