//! A shared mapping of a kernel object's memory (a BPF ring buffer, a perf
//! event's buffer, the memfd of the in-process backend), unmapped when the
//! value drops.

use crate::Error;
use std::os::fd::RawFd;
use std::sync::atomic::AtomicU64;

#[derive(Debug)]
pub struct Mapping {
    at: *mut u8,
    bytes: usize,
}

// SAFETY: the mapping is shared memory that belongs to this value alone;
// moving it to another thread moves that ownership.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Map `bytes` of `fd` from `offset`, shared, read-only or writable;
    /// `what` names the object in the error.
    pub fn new(
        fd: RawFd,
        bytes: usize,
        writable: bool,
        offset: usize,
        what: &str,
    ) -> Result<Mapping, Error> {
        let prot = libc::PROT_READ | if writable { libc::PROT_WRITE } else { 0 };
        Mapping::map(fd, bytes, prot, 0, offset, what)
    }

    /// All `bytes` of `fd`, writable, its pages faulted in now
    /// (`MAP_POPULATE`) rather than at the first touch.
    pub fn populated(fd: RawFd, bytes: usize, what: &str) -> Result<Mapping, Error> {
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        Mapping::map(fd, bytes, prot, libc::MAP_POPULATE, 0, what)
    }

    fn map(
        fd: RawFd,
        bytes: usize,
        prot: i32,
        flags: i32,
        offset: usize,
        what: &str,
    ) -> Result<Mapping, Error> {
        // SAFETY: a new shared mapping, placed by the kernel; nothing else
        // refers to the address range.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                prot,
                libc::MAP_SHARED | flags,
                fd,
                offset as libc::off_t,
            )
        };
        if at == libc::MAP_FAILED {
            return Err(Error::os(
                &format!("mapping {what}"),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Mapping {
            at: at.cast(),
            bytes,
        })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.at
    }

    pub fn len(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// The u64 the kernel (or the reader) keeps at `offset`: a position or
    /// a head. Panics unless it is inside the mapping and aligned.
    pub fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset + 8 <= self.bytes && offset.is_multiple_of(8),
            "word {offset} of {}",
            self.bytes
        );
        // SAFETY: in bounds and aligned (checked above); the mapping lives
        // as long as the borrow.
        unsafe { &*(self.at.add(offset) as *const AtomicU64) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping, made in `new` with this size.
        unsafe { libc::munmap(self.at.cast(), self.bytes) };
    }
}
