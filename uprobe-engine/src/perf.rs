//! perf events: one file descriptor per (event, CPU[, thread]), an optional
//! memory-mapped ring buffer, and the records read from it.
//!
//! The events are tracepoints: tracefs uprobe events, sampled (records
//! carry the fetched arguments as raw data) or only counted.

use crate::Error;
use perf_event_open_sys as sys;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};

/// Which process(es) an event follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every process, on one CPU.
    Cpu(i32),
    /// One thread (and the threads and processes it creates later), on one CPU.
    Thread { tid: i32, cpu: i32 },
}

impl Scope {
    fn pid_cpu(self) -> (i32, i32) {
        match self {
            Scope::Cpu(cpu) => (-1, cpu),
            Scope::Thread { tid, cpu } => (tid, cpu),
        }
    }
}

/// An open perf event. Closing the descriptor (Drop) disables it and, for a
/// uprobe, unregisters it and drops its semaphore reference.
#[derive(Debug)]
pub struct PerfEvent {
    fd: OwnedFd,
}

fn base_attr() -> sys::bindings::perf_event_attr {
    // SAFETY: perf_event_attr is plain data; all-zero is its documented default.
    let mut attr: sys::bindings::perf_event_attr = unsafe { std::mem::zeroed() };
    attr.size = std::mem::size_of::<sys::bindings::perf_event_attr>() as u32;
    attr.set_disabled(1);
    attr
}

/// Every hit sampled with its raw record, thread, time and CPU (the layout
/// [`Ring`] parses), the reader woken per `wakeup_bytes`.
fn sampled(attr: &mut sys::bindings::perf_event_attr, wakeup_bytes: u32) {
    attr.__bindgen_anon_1.sample_period = 1;
    attr.sample_type = (sys::bindings::PERF_SAMPLE_RAW
        | sys::bindings::PERF_SAMPLE_TID
        | sys::bindings::PERF_SAMPLE_TIME
        | sys::bindings::PERF_SAMPLE_CPU) as u64;
    attr.set_watermark(1);
    attr.__bindgen_anon_2.wakeup_watermark = wakeup_bytes;
    // Timestamps on CLOCK_MONOTONIC so they can be turned into wall-clock time.
    attr.set_use_clockid(1);
    attr.clockid = libc::CLOCK_MONOTONIC;
}

fn open(attr: &mut sys::bindings::perf_event_attr, scope: Scope) -> Result<PerfEvent, Error> {
    let (pid, cpu) = scope.pid_cpu();
    if matches!(scope, Scope::Thread { .. }) {
        // New threads and children of the traced process are followed.
        attr.set_inherit(1);
    }
    open_at(attr, pid, cpu)
}

fn open_at(attr: &sys::bindings::perf_event_attr, pid: i32, cpu: i32) -> Result<PerfEvent, Error> {
    let mut attr = *attr;
    // SAFETY: attr is initialised and outlives the call.
    let fd = unsafe {
        sys::perf_event_open(
            &mut attr,
            pid,
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
    Ok(PerfEvent {
        fd: unsafe { OwnedFd::from_raw_fd(fd) },
    })
}

impl PerfEvent {
    /// A tracepoint (tracefs event `id`) sampled on every hit with its raw
    /// record, thread, time and CPU.
    ///
    /// The reader is woken when `wakeup_bytes` are waiting, not on every
    /// record: a wakeup per hit costs the traced program a context switch
    /// per hit (measured: 3-4x the per-hit cost). Readers poll with a
    /// timeout, so a quiet probe's records still arrive within it.
    pub fn tracepoint(id: u64, scope: Scope, wakeup_bytes: u32) -> Result<PerfEvent, Error> {
        let mut attr = base_attr();
        attr.type_ = sys::bindings::PERF_TYPE_TRACEPOINT;
        attr.config = id;
        sampled(&mut attr, wakeup_bytes);
        open(&mut attr, scope)
    }

    /// A CPU's bpf-output event: the records BPF programs send with
    /// `bpf_perf_event_output`, sampled like [`tracepoint`](Self::tracepoint)'s.
    pub fn bpf_output(cpu: i32, wakeup_bytes: u32) -> Result<PerfEvent, Error> {
        let mut attr = base_attr();
        attr.type_ = sys::bindings::PERF_TYPE_SOFTWARE;
        attr.config = u64::from(sys::bindings::PERF_COUNT_SW_BPF_OUTPUT);
        sampled(&mut attr, wakeup_bytes);
        open(&mut attr, Scope::Cpu(cpu))
    }

    /// A tracepoint event that only carries a BPF program: never enabled,
    /// never inherited, on `pid` (any CPU) or system-wide on CPU 0. Opening
    /// it is enough for the uprobe to consider that scope.
    pub fn program_host(id: u64, pid: Option<u32>) -> Result<PerfEvent, Error> {
        let mut attr = base_attr();
        attr.type_ = sys::bindings::PERF_TYPE_TRACEPOINT;
        attr.config = id;
        let (pid, cpu) = pid.map_or((-1, 0), |p| (p as i32, -1));
        open_at(&attr, pid, cpu)
    }

    /// A tracepoint that only counts its hits.
    pub fn tracepoint_counter(id: u64, scope: Scope) -> Result<PerfEvent, Error> {
        let mut attr = base_attr();
        attr.type_ = sys::bindings::PERF_TYPE_TRACEPOINT;
        attr.config = id;
        open(&mut attr, scope)
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

    pub fn disable(&self) {
        // SAFETY: ioctl on a perf fd we own; failure leaves it counting, harmless.
        unsafe { sys::ioctls::DISABLE(self.fd.as_raw_fd(), 0) };
    }

    /// Send this event's records to `target`'s ring buffer (same CPU).
    pub fn redirect_to(&self, target: &PerfEvent) -> Result<(), Error> {
        // SAFETY: ioctl on perf fds we own.
        if unsafe { sys::ioctls::SET_OUTPUT(self.fd.as_raw_fd(), target.fd.as_raw_fd()) } < 0 {
            return Err(Error::os(
                "perf SET_OUTPUT",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// The counter's value (this event plus the threads that inherited it).
    pub fn count(&self) -> u64 {
        let mut value = 0u64;
        // SAFETY: reading 8 bytes into a u64 we own.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
        if n == 8 {
            value
        } else {
            0
        }
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

/// A perf ring buffer mapped from an event: one metadata page and 2^n data pages.
pub struct Ring {
    base: *mut u8,
    len: usize,
    data_size: u64,
    page: usize,
    /// The event owning the buffer; kept open as long as the mapping.
    event: PerfEvent,
    /// The CPU whose records it holds.
    pub cpu: i32,
}

// The mapping is only touched through &mut self.
unsafe impl Send for Ring {}

/// One record read from a ring, borrowed from it (or from a copy when it
/// wraps around the end of the buffer).
#[derive(Debug)]
pub enum Record<'a> {
    Sample(Sample<'a>),
    /// The kernel dropped this many records: the buffer was full.
    Lost(u64),
}

#[derive(Debug)]
pub struct Sample<'a> {
    pub pid: u32,
    pub tid: u32,
    /// CLOCK_MONOTONIC nanoseconds.
    pub time: u64,
    pub cpu: u32,
    /// The trace event's record, laid out as its `format` file says.
    pub raw: &'a [u8],
}

impl Ring {
    /// Map `pages` (a power of two) data pages for `event`.
    pub fn new(event: PerfEvent, pages: usize, cpu: i32) -> Result<Ring, Error> {
        let page = page_size();
        let len = page * (pages + 1);
        // SAFETY: mapping a perf fd as the man page describes; checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                event.raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Error::os(
                "mapping a perf ring buffer",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Ring {
            base: base.cast(),
            len,
            data_size: (page * pages) as u64,
            page,
            event,
            cpu,
        })
    }

    pub fn event(&self) -> &PerfEvent {
        &self.event
    }

    fn meta(&self) -> *mut sys::bindings::perf_event_mmap_page {
        self.base.cast()
    }

    /// Read every record available now, in order.
    pub fn drain(&mut self, mut each: impl FnMut(Record)) {
        let meta = self.meta();
        // SAFETY: the first page is the kernel's metadata page; data_head is
        // read with acquire semantics as the man page requires.
        let head = unsafe { std::ptr::read_volatile(&(*meta).data_head) };
        fence(Ordering::Acquire);
        let mut tail = unsafe { std::ptr::read_volatile(&(*meta).data_tail) };
        let mut wrapped = Vec::new();
        while tail < head {
            // Header: u32 type, u16 misc, u16 size.
            let header = self.bytes(tail, 8, &mut wrapped);
            let kind = u32::from_ne_bytes(header[0..4].try_into().unwrap());
            let size = u16::from_ne_bytes(header[6..8].try_into().unwrap()) as usize;
            if size < 8 {
                break;
            }
            let record = self.bytes(tail, size, &mut wrapped);
            if let Some(r) = parse_record(kind, &record[8..]) {
                each(r);
            }
            tail += size as u64;
        }
        fence(Ordering::Release);
        // SAFETY: hand the space back to the kernel.
        unsafe { std::ptr::write_volatile(&mut (*meta).data_tail, tail) };
    }

    /// `len` bytes at ring position `at`: a slice of the mapping, or a copy
    /// in `scratch` when they wrap around its end.
    fn bytes<'a>(&'a self, at: u64, len: usize, scratch: &'a mut Vec<u8>) -> &'a [u8] {
        let start = (at % self.data_size) as usize;
        let first = len.min(self.data_size as usize - start);
        // SAFETY: both parts lie inside the data area (start + first <= size,
        // the wrapped rest starts at 0), which the kernel does not write
        // between data_tail and data_head.
        unsafe {
            let data = self.base.add(self.page);
            if first == len {
                return std::slice::from_raw_parts(data.add(start), len);
            }
            scratch.clear();
            scratch.extend_from_slice(std::slice::from_raw_parts(data.add(start), first));
            scratch.extend_from_slice(std::slice::from_raw_parts(data, len - first));
        }
        scratch
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what new() mapped.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn parse_record(kind: u32, body: &[u8]) -> Option<Record<'_>> {
    match kind {
        sys::bindings::PERF_RECORD_SAMPLE => {
            // Order fixed by the sample_type bits: TID, TIME, CPU, RAW.
            let raw_size = u32_at(body, 24)? as usize;
            Some(Record::Sample(Sample {
                pid: u32_at(body, 0)?,
                tid: u32_at(body, 4)?,
                time: u64_at(body, 8)?,
                cpu: u32_at(body, 16)?,
                raw: body.get(28..28 + raw_size)?,
            }))
        }
        sys::bindings::PERF_RECORD_LOST => Some(Record::Lost(u64_at(body, 8)?)),
        _ => None,
    }
}

pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
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

/// Wait until one of `rings` has data, a signal arrives, or `timeout_ms` passes.
pub fn wait(rings: &[Ring], timeout_ms: i32) {
    let mut fds: Vec<libc::pollfd> = rings
        .iter()
        .map(|r| libc::pollfd {
            fd: r.event.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: fds is a valid array for the call's duration.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, timeout_ms) };
}
