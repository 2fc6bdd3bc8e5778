//! Reading the BPF ring buffer: one ring for every CPU, records in the order
//! they were reserved, handed out in time order.
//!
//! The kernel maps the data area twice in a row, so a record that wraps
//! around the end is contiguous in our mapping. Each record has an 8-byte
//! header: its length, with a busy bit while the program fills it and a
//! discard bit for records given up.

use crate::bpf::sys::Map;
use crate::mapping::Mapping;
use crate::Error;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const CACHE_LINE: u64 = 64;
const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;
const HEADER: usize = 8;
/// How often a waiting reader looks at the ring, in ms: at the least while
/// records come in (a ring of 512 KiB per CPU holds 3.5 ms of one CPU's
/// fastest hits, 2 M/s of 72 bytes), at the most while none do.
pub(crate) const LOOK_MIN_MS: i32 = 1;
const LOOK_MAX_MS: i32 = 32;

/// A record arriving later than this after another of the same time can
/// still come before it: records are held back this long before they are
/// handed out, so that they come out in time order across CPUs (a record's
/// time is taken just after its place in the ring is; only a program
/// preempted in between can be later by more).
pub const REORDER_NS: u64 = 1_000_000;

pub struct RingReader {
    map: Map,
    /// The ring's descriptor, edge-triggered: `epoll_wait` sleeps until a
    /// program wakes the reader, even while records are waiting.
    epoll: OwnedFd,
    /// How long the next wait sleeps before looking (see `wait`).
    look_ms: std::cell::Cell<i32>,
    consumer: Mapping,
    /// The producer page followed by the data area, twice.
    producer: Mapping,
    data_bytes: usize,
    page: usize,
    /// Records taken from the ring and not yet handed out: (time, bytes).
    pending: Vec<(u64, Vec<u8>)>,
    /// Processes forked by traced ones, not yet followed (their records
    /// are not held back: the session attaches to them at once).
    forks: Vec<u32>,
    /// Records taken since the last `drain`.
    fresh: usize,
    /// Whether this CPU has `cldemote` (see [`demote_lines`]).
    demote: bool,
}

impl RingReader {
    /// A ring of `data_bytes` (a power of two, at least a page).
    pub fn new(data_bytes: usize) -> Result<RingReader, Error> {
        let page = crate::page_size();
        let data_bytes = data_bytes.next_power_of_two().max(page);
        let map = Map::ring_buffer(data_bytes as u32)?;
        let fd = map.fd();
        let consumer = Mapping::new(fd, page, true, 0, "the BPF ring buffer")?;
        let producer = Mapping::new(
            fd,
            page + 2 * data_bytes,
            false,
            page,
            "the BPF ring buffer",
        )?;
        let epoll = edge_triggered_epoll(fd)?;
        Ok(RingReader {
            map,
            epoll,
            look_ms: std::cell::Cell::new(LOOK_MIN_MS),
            consumer,
            producer,
            data_bytes,
            page,
            pending: Vec::new(),
            forks: Vec::new(),
            fresh: 0,
            demote: has_cldemote(),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.map.fd()
    }

    /// Wait up to `timeout_ms` for records. Programs do not wake the reader
    /// for each record (that costs the traced thread more than the record:
    /// see `lower::wake_flags`), only when the ring is filling past
    /// [`RingReader::wake_mark`], or for a record the session needs at once
    /// (a fork). So the reader looks at the ring on its own clock: every
    /// millisecond while records come in, backing off to [`LOOK_MAX_MS`]
    /// while none do. Returns at once if an eighth of the ring waits.
    pub fn wait(&self, timeout_ms: i32) {
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms.max(0) as u64);
        loop {
            let unread = self.unread_bytes();
            if unread >= (self.data_bytes / 8) as u64 {
                return;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            let look = self.look_ms.get();
            let slice = (left.as_millis() as i32).clamp(1, look);
            let mut event = libc::epoll_event { events: 0, u64: 0 };
            // SAFETY: our epoll descriptor and one event we own.
            let woken = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut event, 1, slice) };
            let unread = self.unread_bytes();
            self.look_ms.set(if unread > 0 {
                LOOK_MIN_MS
            } else {
                (look * 2).min(LOOK_MAX_MS)
            });
            if woken > 0 || unread > 0 {
                return;
            }
        }
    }

    /// Records wake the reader when the bytes waiting cross this mark.
    pub fn wake_mark(&self) -> u64 {
        (self.data_bytes / 2) as u64
    }

    fn unread_bytes(&self) -> u64 {
        let (consumer, producer) = self.positions();
        producer
            .load(Ordering::Acquire)
            .saturating_sub(consumer.load(Ordering::Acquire))
    }

    fn positions(&self) -> (&AtomicU64, &AtomicU64) {
        (self.consumer.word(0), self.producer.word(0))
    }

    /// Take every finished record out of the ring into the pending set.
    fn take(&mut self) {
        // Field by field: the records go into other fields meanwhile.
        let (consumer_pos, producer_pos) = (self.consumer.word(0), self.producer.word(0));
        let mut consumer = consumer_pos.load(Ordering::Acquire);
        let producer = producer_pos.load(Ordering::Acquire);
        // SAFETY: the data area starts a page after the producer page.
        let data = unsafe { self.producer.as_ptr().add(self.page) };
        let mask = self.data_bytes as u64 - 1;
        // The kernel reads the consumer position at every reserve: storing
        // it after each record would pull its cache line away from the
        // producing CPU once per record. Records are copied out, so their
        // room is handed back in steps of an eighth of the ring (the step
        // also bounds how much room a long batch keeps from the producer).
        let step = (self.data_bytes / 8) as u64;
        let mut released = consumer;
        let mut demoted = consumer & !(CACHE_LINE - 1);
        while consumer < producer {
            let at = (consumer & mask) as usize;
            // SAFETY: `at` is inside the first copy of the data area; the
            // header is a u32 the kernel writes atomically.
            let header = unsafe { &*(data.add(at) as *const AtomicU32) }.load(Ordering::Acquire);
            if header & BUSY != 0 {
                break;
            }
            let len = (header & !(BUSY | DISCARD)) as usize;
            if header & DISCARD == 0 && len <= self.data_bytes {
                // SAFETY: the record (at most the data size) lies within
                // the double mapping.
                let record = unsafe { std::slice::from_raw_parts(data.add(at + HEADER), len) };
                // Only the part the program filled (strings shorter than
                // their room leave the rest unwritten).
                let filled = crate::lower::record::filled(record).clamp(crate::lower::HEADER, len);
                let bytes = record[..filled].to_vec();
                let record = |b: &[u8]| crate::lower::record::site(b);
                if record(&bytes) == Some(crate::lower::FORK_SITE) {
                    self.forks.push(crate::lower::record::pid(&bytes));
                } else {
                    let time = crate::lower::record::time(&bytes);
                    self.pending.push((time, bytes));
                    self.fresh += 1;
                }
            }
            consumer += ((len + HEADER + 7) & !7) as u64;
            if self.demote {
                // The lines read to the end, not the one the next record
                // begins in: the producer may be writing it.
                let read = consumer & !(CACHE_LINE - 1);
                demote_lines(
                    data,
                    mask,
                    demoted.max(read.saturating_sub(self.data_bytes as u64)),
                    read,
                );
                demoted = read;
            }
            if consumer - released >= step {
                consumer_pos.store(consumer, Ordering::Release);
                released = consumer;
            }
        }
        if consumer != released {
            consumer_pos.store(consumer, Ordering::Release);
        }
    }

    /// The processes forked by traced ones since the last call.
    pub fn take_forks(&mut self) -> Vec<u32> {
        self.take();
        std::mem::take(&mut self.forks)
    }

    /// Hand out, in time order, the records that no later one can precede
    /// (older than `now_ns - REORDER_NS` on CLOCK_MONOTONIC), or all of them
    /// with `all` or when no record came in since the last call.
    pub fn drain(&mut self, now_ns: u64, all: bool, mut each: impl FnMut(&[u8])) -> usize {
        self.take();
        if self.pending.is_empty() {
            return 0;
        }
        // Nothing new came in since the last call: the ring is quiet and
        // no later record can precede the held ones.
        let all = all || std::mem::take(&mut self.fresh) == 0;
        self.pending.sort_by_key(|(time, _)| *time);
        let horizon = now_ns.saturating_sub(REORDER_NS);
        let ready = if all {
            self.pending.len()
        } else {
            self.pending.partition_point(|(time, _)| *time <= horizon)
        };
        for (_, bytes) in self.pending.drain(..ready) {
            each(&bytes);
        }
        ready
    }
}

/// An epoll instance watching `fd` for input, edge-triggered.
fn edge_triggered_epoll(fd: RawFd) -> Result<OwnedFd, Error> {
    let failed = |what| Error::os(what, std::io::Error::last_os_error());
    // SAFETY: no pointers; the descriptor returned is ours to own.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epoll < 0 {
        return Err(failed("creating an epoll instance for the ring buffer"));
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: 0,
    };
    // SAFETY: both descriptors are open; the event is read during the call.
    if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) } < 0 {
        return Err(failed("watching the ring buffer with epoll"));
    }
    Ok(epoll)
}

/// Push the cache lines of the data area from `from` to `to` (ring
/// positions, line-aligned) out of this CPU's caches to the shared one.
///
/// The CPU that writes the next lap of records must take each line back
/// from wherever the reader left it: from the reader's own cache that is
/// a cross-core snoop the kernel waits out at the record's commit (an
/// atomic exchange); from the shared cache it is quicker. Measured on one
/// site at 2 M records/s (1 MiB ring, interleaved runs, medians): 447.5
/// ns per hit without, 432.8 with (12 runs each); 475.1 and 467.0 (20
/// runs, a noisier hour). Not reading the records at all saved ~20 ns.
/// `cldemote` is a hint: it changes no data and faults on nothing.
fn demote_lines(data: *const u8, mask: u64, from: u64, to: u64) {
    let mut line = from;
    while line < to {
        // SAFETY: `line & mask` is inside the data area's first copy; the
        // instruction reads nothing and writes nothing.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::asm!(
                "cldemote [{0}]",
                in(reg) data.add((line & mask) as usize),
                options(nostack, preserves_flags, readonly)
            );
        }
        line += CACHE_LINE;
    }
}

/// Whether the CPU has `cldemote` (CPUID leaf 7, ECX bit 25). Where it
/// does not, the encoding may be something else: it is not run there.
fn has_cldemote() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // Leaf 0 says whether leaf 7 exists.
        let max_leaf = std::arch::x86_64::__cpuid(0).eax;
        max_leaf >= 7 && std::arch::x86_64::__cpuid_count(7, 0).ecx & (1 << 25) != 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
