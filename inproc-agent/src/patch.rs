//! Turning sites into calls and back, safely in a running multi-threaded
//! process.
//!
//! A 5-byte instruction cannot be written atomically for the instruction
//! fetch of other cores, so each change goes through an `int3`: write
//! `0xcc` over the first byte, serialise every core running the process
//! (`membarrier(PRIVATE_EXPEDITED_SYNC_CORE)`), write bytes 1..4,
//! serialise, write the first byte, serialise. A thread that reaches the
//! site meanwhile executes the `int3` (whatever the other bytes are); the
//! SIGTRAP handler ([`trap_target`]) makes that a hit, as if the call had
//! been made, both while attaching and while detaching. Sites are changed
//! in batches: three serialisations per batch, not per site.
//!
//! The code pages are writable (and still executable) only while a batch
//! is written, then get their segment's protection back.

use crate::asm::{self, STUB_BYTES};
use crate::objects::{Loaded, Segment};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The bytes of a cheap site's 5-byte nop (`nopl 0(%rax,%rax,1)`).
pub fn nop5() -> [u8; 5] {
    let at = stapsdt_reader::cheap_site::NOP5_OFFSET as usize;
    let mut nop = [0; 5];
    nop.copy_from_slice(&stapsdt_reader::cheap_site::BYTES[at..at + 5]);
    nop
}

/// `call rel32` from `from` (the 5-byte nop) to `to`, if in reach.
pub fn call(from: usize, to: usize) -> Option<[u8; 5]> {
    let rel = (to as i64).wrapping_sub(from as i64 + 5);
    let rel = i32::try_from(rel).ok()?;
    let mut code = [0xe8, 0, 0, 0, 0];
    code[1..].copy_from_slice(&rel.to_le_bytes());
    Some(code)
}

/// Sites whose int3 the SIGTRAP handler may meet: (address, stub). Only
/// added to; an entry is cleared when its object is gone. Read in the
/// signal handler, so plain atomics, no locks.
const MAX_TRAPS: usize = 16384;
static TRAP_SITES: [AtomicUsize; MAX_TRAPS] = [const { AtomicUsize::new(0) }; MAX_TRAPS];
static TRAP_STUBS: [AtomicUsize; MAX_TRAPS] = [const { AtomicUsize::new(0) }; MAX_TRAPS];
static TRAP_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Remember that `site`'s int3 means a call to `stub` (before the first
/// int3 is written). False when the table is full.
pub fn add_trap(site: usize, stub: usize) -> bool {
    let n = TRAP_COUNT.load(Ordering::Acquire);
    if let Some(i) = (0..n).find(|&i| TRAP_SITES[i].load(Ordering::Relaxed) == site) {
        TRAP_STUBS[i].store(stub, Ordering::Release);
        return true;
    }
    if let Some(i) = (0..n).find(|&i| TRAP_SITES[i].load(Ordering::Relaxed) == 0) {
        TRAP_STUBS[i].store(stub, Ordering::Release);
        TRAP_SITES[i].store(site, Ordering::Release);
        return true;
    }
    if n == MAX_TRAPS {
        return false;
    }
    TRAP_STUBS[n].store(stub, Ordering::Release);
    TRAP_SITES[n].store(site, Ordering::Release);
    TRAP_COUNT.store(n + 1, Ordering::Release);
    true
}

/// Forget a site (its object was unloaded).
pub fn remove_trap(site: usize) {
    let n = TRAP_COUNT.load(Ordering::Acquire);
    for entry in &TRAP_SITES[..n] {
        if entry.load(Ordering::Relaxed) == site {
            entry.store(0, Ordering::Release);
        }
    }
}

/// The stub to call for an int3 at `site`, if it is one of ours.
pub fn trap_target(site: usize) -> Option<usize> {
    let n = TRAP_COUNT.load(Ordering::Acquire);
    (0..n)
        .find(|&i| TRAP_SITES[i].load(Ordering::Acquire) == site)
        .map(|i| TRAP_STUBS[i].load(Ordering::Acquire))
}

/// Serialise the instruction stream of every thread of the process.
pub fn sync_core() -> bool {
    const PRIVATE_EXPEDITED_SYNC_CORE: libc::c_long = 1 << 5;
    // SAFETY: membarrier takes no pointers.
    unsafe { libc::syscall(libc::SYS_membarrier, PRIVATE_EXPEDITED_SYNC_CORE, 0, 0) == 0 }
}

/// Register for [`sync_core`]; false when the kernel cannot.
pub fn register_sync_core() -> bool {
    const REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_long = 1 << 6;
    // SAFETY: membarrier takes no pointers.
    unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
            0,
            0,
        ) == 0
    }
}

pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// One change: 5 bytes at `address`, in a segment of this protection.
pub struct Change {
    pub address: usize,
    pub bytes: [u8; 5],
    pub prot: i32,
}

/// Why a batch could not be written.
#[derive(Debug)]
pub enum PatchError {
    Mprotect,
    Membarrier,
}

/// Write every change through an int3, three serialisations in all;
/// `multi_threaded` false (a fork child) writes directly. The pages are
/// made writable for the batch and get their protection back.
pub fn write_batch(changes: &[Change], multi_threaded: bool) -> Result<(), PatchError> {
    if changes.is_empty() {
        return Ok(());
    }
    let page = page_size();
    let mut pages: Vec<(usize, i32)> = Vec::new();
    for c in changes {
        for p in [c.address & !(page - 1), (c.address + 4) & !(page - 1)] {
            if !pages.iter().any(|(q, _)| *q == p) {
                pages.push((p, c.prot));
            }
        }
    }
    let protect = |extra: i32| -> bool {
        pages.iter().all(|&(p, prot)| {
            // SAFETY: the page belongs to a loaded object's code segment;
            // only its protection changes (it stays executable).
            unsafe { libc::mprotect(p as *mut libc::c_void, page, prot | extra) == 0 }
        })
    };
    if !protect(libc::PROT_WRITE) {
        protect(0);
        return Err(PatchError::Mprotect);
    }
    let store = |address: usize, byte: u8| {
        // SAFETY: the address is in a page made writable above; volatile so
        // that each step is a real store in this order.
        unsafe { std::ptr::write_volatile(address as *mut u8, byte) }
    };
    let mut synced = true;
    let mut sync = || {
        if multi_threaded {
            synced &= sync_core();
        }
    };
    if multi_threaded {
        for c in changes {
            store(c.address, 0xcc);
        }
        sync();
    }
    for c in changes {
        for (i, &b) in c.bytes.iter().enumerate().skip(1) {
            store(c.address + i, b);
        }
    }
    sync();
    for c in changes {
        store(c.address, c.bytes[0]);
    }
    sync();
    protect(0);
    if synced {
        Ok(())
    } else {
        Err(PatchError::Membarrier)
    }
}

/// The current 5 bytes at `address`, if they can be read.
pub fn current(address: usize) -> Option<[u8; 5]> {
    let mut bytes = [0u8; 5];
    // SAFETY: 5 bytes of room; a fault is caught and reported as false.
    unsafe { asm::copy(bytes.as_mut_ptr(), address, 5) }.then_some(bytes)
}

/// The cheap site's bytes around a 5-byte nop at `address`, if they are
/// exactly the cheap site (read safely: the page may be gone).
pub fn is_cheap_site(nop5_address: usize) -> bool {
    let at = stapsdt_reader::cheap_site::NOP5_OFFSET as usize;
    let mut code = [0u8; stapsdt_reader::cheap_site::BYTES.len()];
    // SAFETY: `code` has room for the bytes copied; faults are caught.
    let read = unsafe { asm::copy(code.as_mut_ptr(), nop5_address - at, code.len()) };
    read && stapsdt_reader::cheap_site::is_cheap_site(&code)
}

/// A region of call stubs within ±2 GiB of an object, one stub per site
/// of the plan in it. Never unmapped: a thread may be in a stub long after
/// its site is restored.
pub struct Stubs {
    pub address: usize,
    pub sites: Vec<u32>,
}

impl Stubs {
    /// Map stubs for `sites` near `object`.
    /// With `counters` (the counting mode), site `s`'s stub counts at
    /// `counters(s)` instead of calling the trampoline.
    pub fn near(
        object: &Loaded,
        sites: Vec<u32>,
        counters: impl Fn(u32) -> Option<usize>,
    ) -> Option<Stubs> {
        let page = page_size();
        let bytes = (sites.len() * STUB_BYTES).next_multiple_of(page);
        let (low, high) = object.span();
        let reach = 1usize << 30; // well inside ±2 GiB of every site
        let step = 1 << 20;
        let below = (1..reach / step).map(|i| low.wrapping_sub(i * step) & !(page - 1));
        let above = (1..reach / step).map(|i| (high + i * step) & !(page - 1));
        for hint in below.zip(above).flat_map(|(b, a)| [b, a]) {
            if hint < 1 << 16 {
                continue;
            }
            // SAFETY: a fresh anonymous mapping; MAP_FIXED_NOREPLACE never
            // replaces an existing one.
            let p = unsafe {
                libc::mmap(
                    hint as *mut libc::c_void,
                    bytes,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                continue;
            }
            let address = p as usize;
            for (i, &site) in sites.iter().enumerate() {
                let code = asm::stub(site, counters(site));
                // SAFETY: our fresh mapping has room for every stub.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        code.as_ptr(),
                        (address + i * STUB_BYTES) as *mut u8,
                        STUB_BYTES,
                    )
                };
            }
            // SAFETY: our own mapping, now only executed.
            unsafe { libc::mprotect(p, bytes, libc::PROT_READ | libc::PROT_EXEC) };
            return Some(Stubs { address, sites });
        }
        None
    }

    /// The stub of plan site `site`.
    pub fn of(&self, site: u32) -> Option<usize> {
        self.sites
            .iter()
            .position(|&s| s == site)
            .map(|i| self.address + i * STUB_BYTES)
    }
}

/// A code segment's protection for `Change::prot`.
pub fn code_prot(segment: &Segment) -> i32 {
    segment.prot | libc::PROT_EXEC
}
