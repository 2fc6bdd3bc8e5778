//! The hit path: called by the trampoline with the saved registers. No
//! locks, no allocation, no system call but the vDSO's clock (and, once
//! per thread, its id and name).

use crate::asm::{self, FRAME_BYTES, FRAME_RETURN, FRAME_SITE};
use inproc_shm::{
    frame, record, ArgOp, HOW_CONSTANT, HOW_MEMORY, HOW_POINTER, HOW_REGISTER, MAX_ARGS,
};
use inproc_shm::{WHAT_INT, WHAT_STR, WHAT_STRN};
use std::cell::Cell;
use std::sync::atomic::Ordering;

thread_local! {
    /// This thread's id and name, taken at its first hit.
    static THREAD: Cell<Option<(u32, [u8; 16])>> = const { Cell::new(None) };
}

fn thread() -> (u32, [u8; 16]) {
    THREAD.with(|t| {
        if let Some(known) = t.get() {
            return known;
        }
        // SAFETY: gettid has no arguments.
        let tid = unsafe { libc::gettid() } as u32;
        let mut comm = [0u8; 16];
        // SAFETY: PR_GET_NAME writes at most 16 bytes into `comm`.
        unsafe { libc::prctl(libc::PR_GET_NAME, comm.as_mut_ptr()) };
        t.set(Some((tid, comm)));
        (tid, comm)
    })
}

/// Forget the cached thread (a fork child's only thread has a new id).
pub fn forget_thread() {
    THREAD.with(|t| t.set(None));
}

/// The saved registers of one hit.
struct Regs(*const u64);

impl Regs {
    /// Register `n`: its slot, `inproc_shm::frame`.
    #[inline]
    fn get(&self, n: u8) -> u64 {
        // SAFETY: the frame has FRAME_RETURN + 1 words (the trampoline
        // pushed them); `n` < 15 reads a saved register.
        unsafe {
            match n {
                frame::R15..=frame::RCX => *self.0.add(n as usize),
                // rax was pushed before the flags.
                frame::RAX => *self.0.add(15),
                // At the hit `%rip` is the 5-byte nop's address.
                frame::RIP => *self.0.add(FRAME_RETURN) - 5,
                // `%rsp` as it was at the 5-byte nop, before the call.
                frame::RSP => self.0 as u64 + FRAME_BYTES as u64,
                _ => 0,
            }
        }
    }

    #[inline]
    fn operand(&self, reg: u8, low32: u8) -> u64 {
        let v = self.get(reg);
        if low32 != 0 {
            v & 0xffff_ffff
        } else {
            v
        }
    }
}

/// The value of one argument (an integer, or the pointer of a string);
/// `None` when memory could not be read.
#[inline]
fn value(op: &ArgOp, regs: &Regs) -> Option<u64> {
    match op.how {
        HOW_REGISTER => Some(regs.operand(op.reg, op.low32) >> op.reg_shift),
        HOW_MEMORY => {
            let mut address = op.disp as u64;
            if op.reg != inproc_shm::NO_REG {
                address = address.wrapping_add(regs.operand(op.reg, op.low32));
            }
            if op.index != inproc_shm::NO_REG {
                address = address.wrapping_add(regs.operand(op.index, op.index_low32) << op.scale);
            }
            asm::read(address as usize, op.bytes as usize)
        }
        HOW_POINTER | HOW_CONSTANT => Some(op.disp as u64),
        _ => Some(0),
    }
}

/// # Safety
/// Called only by the trampoline, with its frame.
#[no_mangle]
pub unsafe extern "C" fn stap_sdt_inproc_hit(frame: *const u64) {
    let Some(agent) = crate::agent() else {
        return;
    };
    // SAFETY: the trampoline's frame holds the site the stub pushed.
    let site = unsafe { *frame.add(FRAME_SITE) } as u32 as usize;
    if agent.count_only {
        if let Some(count) = agent.count(site) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        return;
    }
    let Some(spec) = agent.site(site) else {
        return;
    };
    let regs = Regs(frame);
    let args = &spec.args[..(spec.arg_count as usize).min(MAX_ARGS)];
    let mut values = [0u64; MAX_ARGS];
    let mut faults = 0u32;
    for (i, op) in args.iter().enumerate() {
        match value(op, &regs) {
            Some(v) => values[i] = v,
            None => faults |= 1 << i,
        }
    }
    let reserved = u64::from(spec.record_bytes);
    let Some(reservation) = agent.ring.reserve(reserved) else {
        return;
    };
    let r = reservation.as_ptr();
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-parameter (the vDSO answers, no system call).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let time = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    let (tid, comm) = thread();
    // SAFETY: sched_getcpu has no arguments (glibc reads it from rseq).
    let cpu = unsafe { libc::sched_getcpu() } as u32;
    let put = |at: usize, bytes: &[u8]| {
        // SAFETY: every offset written is below `reserved`, the bytes
        // `reserve` gave us (record_bytes counts the largest record).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), r.add(at), bytes.len()) }
    };
    put(record::SITE, &(site as u32).to_ne_bytes());
    put(record::TIME, &time.to_ne_bytes());
    put(record::PID, &agent.pid.to_ne_bytes());
    put(record::TID, &tid.to_ne_bytes());
    put(record::CPU, &cpu.to_ne_bytes());
    put(record::COMM, &comm);
    let mut at = record::ARGS;
    let string_bytes = agent.string_bytes;
    for (i, op) in args.iter().enumerate() {
        if !inproc_shm::in_record(op.how) {
            continue;
        }
        let failed = faults >> i & 1 == 1;
        match op.what {
            WHAT_INT => {
                put(at, &values[i].to_ne_bytes());
                at += 8;
            }
            WHAT_STR | WHAT_STRN => {
                let text = at + 4;
                let len = if failed {
                    None
                } else if op.what == WHAT_STR {
                    // SAFETY: the record has string_bytes of room after the
                    // length word for this argument.
                    unsafe { asm::copy_str(r.add(text), values[i] as usize, string_bytes) }
                } else {
                    let want = values
                        .get(op.len_arg as usize)
                        .map_or(0, |&n| n as usize)
                        .min(string_bytes - 1);
                    // SAFETY: as above, `want` < string_bytes.
                    unsafe { asm::copy(r.add(text), values[i] as usize, want) }.then_some(want)
                };
                if len.is_none() {
                    faults |= 1 << i;
                }
                let len = len.unwrap_or(0);
                put(at, &(len as u32).to_ne_bytes());
                at += (4 + len).next_multiple_of(8);
            }
            _ => {}
        }
    }
    put(record::FAULTS, &faults.to_ne_bytes());
    agent.ring.commit_used(reservation, at as u64);
}
