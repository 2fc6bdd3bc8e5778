//! The tracer's shared memory as the agent sees it: mapped once at load,
//! read by the hit path without locks.

use inproc_shm::{Header, Site, COUNT_STRIDE};
use std::sync::atomic::{AtomicU64, Ordering};

/// What the hit path reads: set once at load, never freed.
pub(crate) struct Agent {
    pub header: &'static Header,
    /// Room for `capacity` sites; the first `header.site_count` are planned.
    sites: *const Site,
    capacity: usize,
    counts: *const u8,
    pub ring: inproc_shm::ring::Ring<'static>,
    pub count_only: bool,
    /// Objects loaded later are reported to the tracer to be planned.
    pub deferred: bool,
    /// Bytes of each string argument at most (with its NUL).
    pub string_bytes: usize,
    pub pid: u32,
    /// The tracer, to notice that it is gone (-1: cannot watch).
    pub tracer: libc::c_int,
}

// SAFETY: the raw pointers point into the shared mapping, which lives as
// long as the process; everything written through them is atomic.
unsafe impl Sync for Agent {}
// SAFETY: as above.
unsafe impl Send for Agent {}

impl Agent {
    /// Sites planned now.
    pub fn site_count(&self) -> usize {
        (self.header.site_count.load(Ordering::Acquire) as usize).min(self.capacity)
    }

    /// Planned site `site`.
    pub fn site(&self, site: usize) -> Option<&Site> {
        // SAFETY: below the planned count (at most the capacity the layout
        // has room for); the tracer wrote the site before raising the count
        // (Release, read above with Acquire) and never changes it after.
        (site < self.site_count()).then(|| unsafe { &*self.sites.add(site) })
    }

    pub fn count(&self, site: usize) -> Option<&AtomicU64> {
        (site < self.capacity).then(|| {
            // SAFETY: the counts area has a COUNT_STRIDE-byte line per site,
            // 8-aligned, inside the shared mapping.
            unsafe { &*(self.counts.add(site * COUNT_STRIDE as usize) as *const AtomicU64) }
        })
    }
}

/// Map the tracer's shared memory, if this process is the one it started
/// (or that process after an `exec`): another process that inherited the
/// descriptor leaves it alone.
pub fn map_shared() -> Option<Agent> {
    let fd: libc::c_int = std::env::var(inproc_shm::FD_ENV).ok()?.parse().ok()?;
    // SAFETY: an all-zero stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat of a descriptor number; fails harmlessly if not open.
    if unsafe { libc::fstat(fd, &mut st) } != 0 || (st.st_size as usize) < 4096 {
        return None;
    }
    let size = st.st_size as usize;
    // SAFETY: a shared mapping of the whole memfd.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    let base = base as *mut u8;
    // SAFETY: the mapping is at least a page, page-aligned: room for the
    // header, whose fields are integers and atomics.
    let header: &'static Header = unsafe { &*(base as *const Header) };
    let (sites_at, counts_at, ring_at, end) =
        inproc_shm::layout(header.capacity as usize, header.ring_bytes);
    let valid = header.magic == inproc_shm::MAGIC
        && header.version == inproc_shm::VERSION
        && header.sites_at == sites_at
        && header.counts_at == counts_at
        && header.ring_at == ring_at
        && end as usize <= size
        && header.ring_bytes.is_power_of_two()
        && (2..=4096).contains(&header.string_bytes)
        && header.site_count.load(Ordering::Acquire) <= header.capacity;
    // SAFETY: getpid has no arguments.
    let pid = unsafe { libc::getpid() } as u32;
    // The first process claims it; after an exec the pid is the same.
    let claimed =
        match header
            .agent_pid
            .compare_exchange(0, pid, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(owner) => owner == pid,
        };
    if !valid || !claimed {
        // SAFETY: our mapping, unused.
        unsafe { libc::munmap(base.cast(), size) };
        return None;
    }
    // Fault the ring in now rather than at hits (only in the traced
    // process: the others that inherit the descriptor leave above). An
    // older kernel without MADV_POPULATE_WRITE faults at hits instead.
    // SAFETY: advice on our own mapping.
    unsafe { libc::madvise(base.cast(), size, libc::MADV_POPULATE_WRITE) };
    // SAFETY: the layout was checked to fit the mapping (`capacity` sites
    // at `sites_at`).
    let sites = unsafe { base.add(sites_at as usize) as *const Site };
    let capacity = header.capacity as usize;
    let string_bytes = header.string_bytes as usize;
    // SAFETY: pidfd_open takes a pid and flags; the descriptor is moved out
    // of the range programs use (and closed on exec) so that a program
    // closing or reusing its low descriptors does not touch it.
    let tracer = unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, header.tracer_pid, 0) as i32;
        let high = if fd >= 0 {
            libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 900)
        } else {
            -1
        };
        if fd >= 0 {
            libc::close(fd);
        }
        high
    };
    Some(Agent {
        header,
        sites,
        capacity,
        // SAFETY: inside the mapping (checked above).
        counts: unsafe { base.add(counts_at as usize) },
        ring: inproc_shm::ring::Ring {
            header,
            // SAFETY: as above.
            data: unsafe { base.add(ring_at as usize) },
            size: header.ring_bytes,
        },
        count_only: header.flags & inproc_shm::COUNT_ONLY != 0,
        deferred: header.flags & inproc_shm::DEFERRED != 0,
        string_bytes,
        pid,
        tracer,
    })
}
