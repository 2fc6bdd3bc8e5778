//! The shared memory of the in-process backend: one memfd the tracer
//! creates and the traced process inherits (its descriptor number in
//! [`FD_ENV`]). Both sides map it; nothing in it is a pointer.
//!
//! ```text
//! 0            Header: magic, control words, ring positions, lost count
//! sites_at     Site × capacity: where each site is, its argument fetches
//! counts_at    one cache line per site: hits counted (--count)
//! ring_at      the record ring (ring_bytes, a power of two)
//! ```
//!
//! The tracer writes the sites once, before the agent reads them; after
//! that only the atomics change. Control: the tracer stores a request in
//! [`Header::control`] and wakes it (futex); the agent applies it and
//! stores the same value in [`Header::state`] (futex wake too).

pub mod futex;
pub mod ring;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8};

/// Environment variable naming the memfd's descriptor in the traced process.
pub const FD_ENV: &str = "STAP_SDT_INPROC_FD";

/// "STAPINP" and the layout's version.
pub const MAGIC: u64 = 0x3150_4e49_5041_5453;
pub const VERSION: u32 = 1;

/// Arguments of a probe (the note's limit).
pub const MAX_ARGS: usize = 12;

/// [`Header::control`]/[`Header::state`]: bit 0 set = attached; the rest a
/// generation the tracer bumps on every request, so that each request has
/// its own acknowledgement.
pub const ATTACHED: u32 = 1;

/// [`Header::flags`]: count hits per site, write no records.
pub const COUNT_ONLY: u32 = 1;
/// [`Header::flags`]: the tracer plans objects loaded later (report each
/// through the header's object mailbox before patching it).
pub const DEFERRED: u32 = 2;

/// Bytes of [`Header::object_path`].
pub const OBJECT_PATH_BYTES: usize = 256;

/// A value alone on its cache line.
#[repr(C, align(64))]
pub struct Line<T>(pub T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The header at offset 0.
#[repr(C)]
pub struct Header {
    pub magic: u64,
    pub version: u32,
    /// Set by the tracer: what it wants (generation << 1 | ATTACHED).
    pub control: AtomicU32,
    /// Set by the agent: the last request it applied, in full.
    pub state: AtomicU32,
    pub flags: u32,
    /// Sites planned so far (the tracer adds sites of objects loaded
    /// later, with [`DEFERRED`]), at most `capacity`.
    pub site_count: AtomicU32,
    /// Room for sites in the layout.
    pub capacity: u32,
    /// Bytes of each string argument at most (with its NUL).
    pub string_bytes: u32,
    pub sites_at: u64,
    pub counts_at: u64,
    pub ring_at: u64,
    pub ring_bytes: u64,
    /// The tracer's pid: the agent detaches when it is gone.
    pub tracer_pid: u32,
    /// The agent's pid once it has read the sites (a fork child does not
    /// write it).
    pub agent_pid: AtomicU32,
    /// Sites the agent patched at the last attach.
    pub patched: AtomicU32,
    /// Hits the agent saw on the int3 of a site being patched (each a hit).
    pub trapped: AtomicU32,
    /// Why the agent could not do what was asked (0: nothing wrong; else
    /// an `AgentError` number), for the tracer to say.
    pub error: AtomicU32,
    pub _pad0: u32,
    /// An object loaded after start, for the tracer to plan (with
    /// [`DEFERRED`]): the agent fills the fields and bumps `object_request`,
    /// the tracer adds the object's sites (maybe none) and sets
    /// `object_answer` to the same number.
    pub object_request: AtomicU32,
    pub object_answer: AtomicU32,
    pub object_dev: AtomicU64,
    pub object_ino: AtomicU64,
    /// A path the tracer can open (NUL-terminated): the file, or
    /// `/proc/PID/fd/N` for an object in a memfd.
    pub object_path: [AtomicU8; OBJECT_PATH_BYTES],
    /// Ring positions (bytes ever reserved / consumed), each on its own
    /// cache line: producers share `head`, the tracer alone moves `tail`.
    pub head: Line<AtomicU64>,
    pub tail: Line<AtomicU64>,
    /// Records that did not fit, counted by the agent.
    pub lost: Line<AtomicU64>,
}

/// Where the header's `error` comes from.
pub const ERROR_MEMBARRIER: u32 = 1;
pub const ERROR_MPROTECT: u32 = 2;
pub const ERROR_STUBS: u32 = 3;

/// What the header's `error` means.
pub fn error_text(code: u32) -> &'static str {
    match code {
        ERROR_MEMBARRIER => "membarrier(PRIVATE_EXPEDITED_SYNC_CORE) is not available: code cannot be patched safely in a running process",
        ERROR_MPROTECT => "mprotect of a code page failed",
        ERROR_STUBS => "no memory within ±2 GiB of an object for its call stubs",
        _ => "unknown agent error",
    }
}

/// No semaphore / no register.
pub const NONE: u64 = u64::MAX;
pub const NO_REG: u8 = 0xff;

/// One site: the object by device and inode, the 5-byte nop by file offset.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Site {
    pub dev: u64,
    pub ino: u64,
    /// File offset of the cheap site's 5-byte nop.
    pub offset: u64,
    /// File offset of the semaphore, or [`NONE`].
    pub semaphore: u64,
    pub arg_count: u32,
    /// Bytes of the largest record of this site (a multiple of 8).
    pub record_bytes: u32,
    pub args: [ArgOp; MAX_ARGS],
}

/// How an argument is fetched ([`ArgOp::how`]).
pub const HOW_SKIP: u8 = 0;
pub const HOW_REGISTER: u8 = 1;
pub const HOW_MEMORY: u8 = 2;
pub const HOW_POINTER: u8 = 3;
/// A constant (`disp`): not in the record, but a string's length may be it.
pub const HOW_CONSTANT: u8 = 4;

/// Whether an argument has a slot in the record.
pub fn in_record(how: u8) -> bool {
    matches!(how, HOW_REGISTER | HOW_MEMORY | HOW_POINTER)
}

/// What the fetched value is ([`ArgOp::what`]).
pub const WHAT_INT: u8 = 0;
/// The NUL-terminated string it points to.
pub const WHAT_STR: u8 = 1;
/// The string it points to, as long as argument `len_arg` says.
pub const WHAT_STRN: u8 = 2;

/// One argument's fetch: a value from a saved register, memory at
/// `base + (index << scale) + disp`, or a constant pointer. Registers are
/// numbered as [`Frame`] orders them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ArgOp {
    pub how: u8,
    pub what: u8,
    /// Bytes read from memory (1, 2, 4, 8).
    pub bytes: u8,
    pub reg: u8,
    /// Bits the register's value is shifted down (8 for `%ah`).
    pub reg_shift: u8,
    /// 1: the register's 32-bit view (low half).
    pub low32: u8,
    pub index: u8,
    pub scale: u8,
    pub index_low32: u8,
    pub len_arg: u8,
    pub _pad: [u8; 6],
    pub disp: i64,
}

/// The registers' slots in the agent's frame: the order in which the
/// trampoline saves them (8 bytes each), then `rip` and `rsp`, which are
/// computed from the return address. An [`ArgOp`] names registers by slot.
pub mod frame {
    pub const R15: u8 = 0;
    pub const R14: u8 = 1;
    pub const R13: u8 = 2;
    pub const R12: u8 = 3;
    pub const RBP: u8 = 4;
    pub const RBX: u8 = 5;
    pub const R11: u8 = 6;
    pub const R10: u8 = 7;
    pub const R9: u8 = 8;
    pub const R8: u8 = 9;
    pub const RDI: u8 = 10;
    pub const RSI: u8 = 11;
    pub const RDX: u8 = 12;
    pub const RCX: u8 = 13;
    pub const RAX: u8 = 14;
    pub const RIP: u8 = 15;
    pub const RSP: u8 = 16;
}

/// Bytes of a record's fixed part: length word, site, time, pid, tid, cpu,
/// fault bits, comm.
pub const RECORD_HEAD: usize = 56;

/// The record layout (after the ring's 8-byte length word):
/// `site u32, pad u32 | time u64 | pid u32, tid u32 | cpu u32, faults u32 |
/// comm [u8; 16]`, then each fetched argument in order: integers as `u64`,
/// strings as `u32` length (without NUL) + bytes, padded to 8.
pub mod record {
    pub const SITE: usize = 8;
    pub const TIME: usize = 16;
    pub const PID: usize = 24;
    pub const TID: usize = 28;
    pub const CPU: usize = 32;
    pub const FAULTS: usize = 36;
    pub const COMM: usize = 40;
    pub const ARGS: usize = super::RECORD_HEAD;
}

/// Bytes of one site's hit counter (a cache line, so that sites hit by
/// different threads do not share one).
pub const COUNT_STRIDE: u64 = 64;

/// Bytes of the largest record of a site whose arguments are `args`, with
/// strings of at most `string_bytes`.
pub fn record_bytes(args: &[ArgOp], string_bytes: usize) -> u32 {
    let fetched: usize = args
        .iter()
        .map(|a| match (in_record(a.how), a.what) {
            (false, _) => 0,
            (true, WHAT_INT) => 8,
            _ => (4 + string_bytes).next_multiple_of(8),
        })
        .sum();
    (RECORD_HEAD + fetched) as u32
}

/// The offsets of a layout for `sites` sites (its capacity) and a ring of
/// `ring_bytes`.
pub fn layout(sites: usize, ring_bytes: u64) -> (u64, u64, u64, u64) {
    let page = 4096u64;
    let sites_at = (std::mem::size_of::<Header>() as u64).next_multiple_of(64);
    let counts_at =
        (sites_at + (sites * std::mem::size_of::<Site>()) as u64).next_multiple_of(COUNT_STRIDE);
    let ring_at = (counts_at + sites as u64 * COUNT_STRIDE).next_multiple_of(page);
    (sites_at, counts_at, ring_at, ring_at + ring_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_keeps_the_hot_words_apart() {
        assert_eq!(std::mem::offset_of!(Header, head) % 64, 0);
        assert_eq!(std::mem::offset_of!(Header, tail) % 64, 0);
        assert_eq!(std::mem::offset_of!(Header, lost) % 64, 0);
        let (sites, counts, ring, total) = layout(3, 1 << 16);
        assert!(sites >= std::mem::size_of::<Header>() as u64);
        assert!(counts >= sites + 3 * std::mem::size_of::<Site>() as u64);
        assert_eq!(ring % 4096, 0);
        assert_eq!(total, ring + (1 << 16));
    }
}
