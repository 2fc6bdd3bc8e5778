//! The record ring: many producers (the traced process's threads, no locks,
//! no allocation), one consumer (the tracer). Positions only grow; a
//! record's first 8 bytes are its length word, written busy when space is
//! reserved and released when the record is complete. A record never wraps:
//! the space to the end is a padding record instead. A record that does
//! not fit is counted in [`Header::lost`] and dropped, so losses are exact.

use crate::Header;
use std::sync::atomic::{AtomicU64, Ordering};

/// The length word's flags (the length is its low 32 bits).
const BUSY: u64 = 1 << 32;
const PAD: u64 = 1 << 33;

/// Space reserved for one record (its length word first), to fill and
/// then [`Ring::commit`].
pub struct Reserved(*mut u8);

impl Reserved {
    /// The record's first byte (its length word, which is the ring's).
    pub fn as_ptr(&self) -> *mut u8 {
        self.0
    }
}

/// A mapped ring: `data` points to `size` bytes (a power of two).
#[derive(Clone, Copy)]
pub struct Ring<'a> {
    pub header: &'a Header,
    pub data: *mut u8,
    pub size: u64,
}

impl Ring<'_> {
    fn word(&self, position: u64) -> &AtomicU64 {
        // SAFETY: `position & (size - 1)` is within the `size` bytes at
        // `data` and 8-aligned (every length is a multiple of 8, `data` is
        // page-aligned), so it is a valid, aligned u64 of the shared mapping.
        unsafe { &*(self.data.add((position & (self.size - 1)) as usize) as *const AtomicU64) }
    }

    /// Reserve `len` bytes (a multiple of 8, with the length word) for a
    /// record; `None` when the ring is full (counted as lost). The record
    /// must be completed with [`commit`](Self::commit).
    #[inline]
    pub fn reserve(&self, len: u64) -> Option<Reserved> {
        debug_assert!(len.is_multiple_of(8) && len >= 8);
        let header = self.header;
        loop {
            let head = header.head.load(Ordering::Relaxed);
            let tail = header.tail.load(Ordering::Acquire);
            let at = head & (self.size - 1);
            let pad = if at + len > self.size {
                self.size - at
            } else {
                0
            };
            // Other producers and the consumer may have moved on since
            // `head` was read (the consumer even past it): only a ring
            // full at the current head is a loss; otherwise look again.
            if tail > head || head + pad + len - tail > self.size {
                if tail > head || header.head.load(Ordering::Relaxed) != head {
                    continue;
                }
                header.lost.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            if header
                .head
                .compare_exchange_weak(head, head + pad + len, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                if pad > 0 {
                    self.word(head).store(pad | PAD, Ordering::Release);
                }
                let record = self.word(head + pad);
                record.store(len | BUSY, Ordering::Relaxed);
                return Some(Reserved(record as *const AtomicU64 as *mut u8));
            }
        }
    }

    /// Make a reserved record visible to the consumer.
    #[inline]
    pub fn commit(&self, record: Reserved) {
        // SAFETY: `record` came from `reserve`: an aligned length word in
        // the ring, which no one else writes until the consumer frees it.
        let word = unsafe { &*(record.0 as *const AtomicU64) };
        let len = word.load(Ordering::Relaxed) & !BUSY;
        word.store(len, Ordering::Release);
    }

    /// Make a reserved record visible, `used` bytes of it (a multiple of
    /// 8); the rest of the reservation becomes padding the consumer skips.
    #[inline]
    pub fn commit_used(&self, record: Reserved, used: u64) {
        // SAFETY: as in `commit`.
        let word = unsafe { &*(record.0 as *const AtomicU64) };
        let len = word.load(Ordering::Relaxed) & !BUSY;
        if used < len {
            // SAFETY: the padding word lies inside the reservation (`used`
            // < its length, both multiples of 8), 8-aligned.
            let pad = unsafe { &*(record.0.add(used as usize) as *const AtomicU64) };
            pad.store((len - used) | PAD, Ordering::Relaxed);
            word.store(used, Ordering::Release);
        } else {
            word.store(len, Ordering::Release);
        }
    }

    /// Hand each complete record (length word included) to `each`, in
    /// order, up to the first one still being written; returns how many.
    pub fn drain(&self, mut each: impl FnMut(&[u8])) -> usize {
        let header = self.header;
        let mut tail = header.tail.load(Ordering::Relaxed);
        let head = header.head.load(Ordering::Acquire);
        let mut records = 0;
        while tail != head {
            let word = self.word(tail).load(Ordering::Acquire);
            if word == 0 || word & BUSY != 0 {
                break;
            }
            let len = word & 0xffff_ffff;
            let at = (tail & (self.size - 1)) as usize;
            // SAFETY: a committed record (or padding) of `len` bytes lies
            // within the ring (records never wrap) and is ours until `tail`
            // moves past it; zeroing it makes the next producer's length
            // word read 0 until it is written.
            unsafe {
                let bytes = std::slice::from_raw_parts_mut(self.data.add(at), len as usize);
                if word & PAD == 0 {
                    each(bytes);
                    records += 1;
                }
                bytes.fill(0);
            }
            tail += len;
            header.tail.store(tail, Ordering::Release);
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Box<Header> {
        // SAFETY: the header is plain integers and atomics: all zeroes is valid.
        Box::new(unsafe { std::mem::zeroed() })
    }

    #[test]
    fn records_wrap_by_padding_and_losses_are_counted() {
        let header = header();
        let mut data = vec![0u64; 32]; // 256 bytes
        let ring = Ring {
            header: &header,
            data: data.as_mut_ptr().cast(),
            size: 256,
        };
        let mut seen = Vec::new();
        for round in 0..10u64 {
            for _ in 0..2 {
                let r = ring.reserve(96).expect("room");
                // SAFETY: 96 reserved bytes at `r`.
                unsafe { r.as_ptr().add(8).cast::<u64>().write(round) };
                ring.commit(r);
            }
            // A third does not fit until the ring is drained.
            if round == 0 {
                let lost_before = header.lost.load(Ordering::Relaxed);
                assert!(ring.reserve(96).is_none());
                assert_eq!(header.lost.load(Ordering::Relaxed), lost_before + 1);
            }
            ring.drain(|r| {
                assert_eq!(r.len(), 96);
                seen.push(u64::from_ne_bytes(r[8..16].try_into().unwrap()));
            });
        }
        assert_eq!(seen.len(), 20);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(header.lost.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_busy_record_stops_the_reader() {
        let header = header();
        let mut data = vec![0u64; 32];
        let ring = Ring {
            header: &header,
            data: data.as_mut_ptr().cast(),
            size: 256,
        };
        let first = ring.reserve(16).unwrap();
        let second = ring.reserve(16).unwrap();
        ring.commit(second);
        assert_eq!(ring.drain(|_| {}), 0);
        ring.commit(first);
        assert_eq!(ring.drain(|_| {}), 2);
    }

    /// Producers on 4 threads and a consumer draining meanwhile: every
    /// record arrives once, in each thread's order, and a ring with room
    /// for all of them loses none. (The stale-head loss fixed in `reserve`
    /// is too rare to show here: the stress test saw 1 to 4 per million.)
    #[test]
    fn concurrent_producers_lose_nothing_while_there_is_room() {
        const PER_THREAD: u64 = 20_000;
        let header = header();
        let mut data = vec![0u64; (4 << 20) / 8];
        let ring = Ring {
            header: &header,
            data: data.as_mut_ptr().cast(),
            size: 4 << 20,
        };
        struct Shared<'a>(Ring<'a>);
        // SAFETY: the ring is made for concurrent producers and one
        // consumer: every shared word is atomic.
        unsafe impl Sync for Shared<'_> {}
        let shared = Shared(ring);
        let done = std::sync::atomic::AtomicU32::new(0);
        let mut seen = vec![Vec::new(); 4];
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let (shared, done) = (&shared, &done);
                scope.spawn(move || {
                    for seq in 0..PER_THREAD {
                        let r = shared.0.reserve(24).expect("room for every record");
                        // SAFETY: 24 reserved bytes at `r`.
                        unsafe {
                            r.as_ptr().add(8).cast::<u64>().write(t);
                            r.as_ptr().add(16).cast::<u64>().write(seq);
                        }
                        shared.0.commit(r);
                    }
                    done.fetch_add(1, Ordering::Release);
                });
            }
            loop {
                let finished = done.load(Ordering::Acquire) == 4;
                shared.0.drain(|r| {
                    let t = u64::from_ne_bytes(r[8..16].try_into().unwrap());
                    let seq = u64::from_ne_bytes(r[16..24].try_into().unwrap());
                    seen[t as usize].push(seq);
                });
                if finished {
                    break;
                }
            }
        });
        assert_eq!(header.lost.load(Ordering::Relaxed), 0);
        for list in &seen {
            assert_eq!(list, &(0..PER_THREAD).collect::<Vec<_>>());
        }
    }
}
