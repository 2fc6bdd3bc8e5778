//! perf events, only where BPF needs one: a tracepoint event per CPU to
//! carry the fork-tracking program, and uprobe events of the kernel's
//! uprobe PMU where it has no `uprobe_multi` links (before 6.6). Closing
//! the descriptor (Drop) detaches the program.

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
        open(&mut attr, -1, cpu, "perf_event_open")
    }

    /// A uprobe (or uretprobe) at `offset` of `path` through the kernel's
    /// uprobe PMU, the semaphore at `ref_ctr_offset` (0: none) raised while
    /// it exists: in process `pid` (all its threads: the kernel filters by
    /// address space), or system-wide.
    pub fn uprobe(
        pmu: &UprobePmu,
        path: &std::ffi::CStr,
        offset: u64,
        ref_ctr_offset: u64,
        retprobe: bool,
        pid: Option<u32>,
    ) -> std::io::Result<PerfEvent> {
        // SAFETY: perf_event_attr is plain data; all-zero is its documented default.
        let mut attr: sys::bindings::perf_event_attr = unsafe { std::mem::zeroed() };
        attr.size = std::mem::size_of::<sys::bindings::perf_event_attr>() as u32;
        attr.type_ = pmu.kind;
        // The PMU's format: `retprobe` is config:0, `ref_ctr_offset` config:32-63.
        attr.config = u64::from(retprobe) | (ref_ctr_offset << 32);
        attr.__bindgen_anon_3.uprobe_path = path.as_ptr() as u64;
        attr.__bindgen_anon_4.probe_offset = offset;
        // A uprobe event is not tied to a CPU: system-wide is pid -1 on
        // CPU 0, and its program runs on every CPU's hits.
        let (pid, cpu) = pid.map_or((-1, 0), |p| (p as i32, -1));
        // SAFETY: attr is initialised, `path` outlives the call.
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
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by the kernel and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(PerfEvent { fd })
    }

    /// The software event `bpf_perf_event_output` writes into, on `cpu`,
    /// with a buffer that wakes its reader only once `watermark` bytes wait
    /// (raw samples only: what the program passes).
    pub fn bpf_output(cpu: i32, watermark: u32) -> Result<PerfEvent, Error> {
        // SAFETY: perf_event_attr is plain data; all-zero is its documented default.
        let mut attr: sys::bindings::perf_event_attr = unsafe { std::mem::zeroed() };
        attr.size = std::mem::size_of::<sys::bindings::perf_event_attr>() as u32;
        attr.type_ = sys::bindings::PERF_TYPE_SOFTWARE;
        attr.config = u64::from(sys::bindings::PERF_COUNT_SW_BPF_OUTPUT);
        attr.sample_type = u64::from(sys::bindings::PERF_SAMPLE_RAW);
        attr.set_watermark(1);
        attr.__bindgen_anon_2.wakeup_watermark = watermark;
        open(&mut attr, -1, cpu, "perf_event_open (bpf output)")
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

    /// The descriptor, to keep as long as the event should exist.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// Open the event `attr` describes for `pid` on `cpu`; `what` names the
/// call in the error.
fn open(
    attr: &mut sys::bindings::perf_event_attr,
    pid: i32,
    cpu: i32,
    what: &'static str,
) -> Result<PerfEvent, Error> {
    // SAFETY: attr is initialised and outlives the call.
    let fd = unsafe {
        sys::perf_event_open(attr, pid, cpu, -1, sys::bindings::PERF_FLAG_FD_CLOEXEC as _)
    };
    if fd < 0 {
        return Err(Error::os(what, std::io::Error::last_os_error()));
    }
    // SAFETY: fd was just returned by the kernel and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(PerfEvent { fd })
}

/// The kernel's uprobe PMU (`/sys/bus/event_source/devices/uprobe`).
#[derive(Debug, Clone, Copy)]
pub struct UprobePmu {
    /// Its perf event type.
    pub kind: u32,
}

impl UprobePmu {
    /// The PMU, once its type and its `ref_ctr_offset` format (Linux 4.20)
    /// are read.
    pub fn get() -> Result<UprobePmu, Error> {
        const DIR: &str = "/sys/bus/event_source/devices/uprobe";
        let unsupported = |why: String| {
            Error::Unsupported(format!(
                "{DIR}: {why}; this kernel has neither BPF uprobe_multi links nor a uprobe PMU \
                 with semaphore support (Linux 4.20)"
            ))
        };
        let kind = std::fs::read_to_string(format!("{DIR}/type"))
            .map_err(|e| unsupported(e.to_string()))?;
        let kind = kind
            .trim()
            .parse()
            .map_err(|_| unsupported(format!("type {:?} is not a number", kind.trim())))?;
        let format = |name: &str| std::fs::read_to_string(format!("{DIR}/format/{name}"));
        match (format("retprobe"), format("ref_ctr_offset")) {
            (Ok(r), Ok(c)) if r.trim() == "config:0" && c.trim() == "config:32-63" => {
                Ok(UprobePmu { kind })
            }
            (r, c) => Err(unsupported(format!(
                "unexpected formats retprobe {r:?}, ref_ctr_offset {c:?}"
            ))),
        }
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
