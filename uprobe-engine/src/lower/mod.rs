//! The lowering: planned sites become BPF programs. The one place a
//! location becomes instructions.
//!
//! Three programs:
//! - a **record** program per distinct argument layout: it reserves a record
//!   in the session's one ring buffer, fills it (time, site, thread, CPU,
//!   command, every argument read from the saved registers and user memory,
//!   strings copied after the fixed part) and submits it. Sites with the
//!   same layout share the program; the attach cookie says which site hit.
//!   A program that reads strings is sleepable, so that it can fault in a
//!   page the process never touched (a string literal) and retry;
//! - a **count** program: hits per site in a per-CPU array, no records;
//! - a **fork** program on the `sched_process_fork` tracepoint that adds
//!   the children of traced processes to the traced set and tells the
//!   session in a short record (site [`FORK_SITE`], the child in the pid
//!   field), so that it attaches to the child too.
//!
//! Links of a traced process carry the kernel's pid filter, so that only
//! that process gets breakpoints and raised semaphores; its children get
//! links of their own when their fork record is read. A traced process
//! *tree* (a shell command's pipeline, whose children may hit a probe at
//! once) has unfiltered links instead, and its programs first check the
//! hitting process against the set the fork program keeps.
//!
//! Record layout (all native-endian):
//!
//! | offset     | what                                                          |
//! |------------|---------------------------------------------------------------|
//! | 0          | u64 time of the hit, CLOCK_MONOTONIC ns                       |
//! | 8          | u32 site (the attach cookie)                                  |
//! | 12         | u32 bit i set: argument i's memory could not be read          |
//! | 16         | u32 thread id, 20: u32 process id                             |
//! | 24         | u32 CPU, 28: u32 bytes filled                                 |
//! | 32         | the command name, 16 bytes                                    |
//! | 48 + 8·i   | argument i: its value, or for a string u32 (length << 16 | offset) |
//! | 48 + 8·n   | the strings, one after the other                              |

pub mod aggregate;
pub mod filter;

use crate::bpf::insn::{self, helper, Cond, Insn, Reg, R0, R1, R10, R2, R3, R4, R6, R7, R8, R9};
use crate::expr::Expr;
use crate::plan::{Address, Fetch, Location, ProbeInfo, Saved, ValueKind};

/// The longest string read at a hit, with its NUL (the kernel's
/// MAX_STRING_SIZE for uprobe fetchargs too).
pub const STRING_BYTES: usize = 4096;
/// Room per string when the caller does not say: a record reserves room
/// for each of its strings at its longest, so this bounds how many records
/// a burst can queue in the ring.
pub const DEFAULT_STRING_BYTES: usize = 512;
pub const HEADER: usize = 48;
const SITE: i16 = 8;
const FAULTS: i16 = 12;
const PID_TGID: i16 = 16;
const CPU: i16 = 24;
const FILLED: i16 = 28;
const COMM: usize = 32;
const COMM_BYTES: usize = 16;
/// Stack slots the programs use below the frame pointer.
const STACK_KEY: i16 = -4;
const STACK_PTR: i16 = -16;
const STACK_BYTE: i16 = -24;

/// Slots of the lost map: records that found the ring full, and hits
/// whose aggregation key found the key map full.
pub const LOST_RECORDS: u32 = 0;
pub const LOST_KEYS: u32 = 1;

/// The site number of a fork record.
pub const FORK_SITE: u32 = u32::MAX;

/// The maps the programs use, by file descriptor.
#[derive(Debug, Clone, Copy)]
pub struct Maps {
    /// The ring buffer of records.
    pub ring: i32,
    /// Per-CPU u64 slot 0: records lost because the ring was full.
    pub lost: i32,
    /// Per-CPU u64 per site: hits (counting mode).
    pub counts: i32,
    /// The set of traced processes that programs check, or -1: none.
    pub scope: i32,
    /// Aggregating programs: a per-CPU scratch record (one entry).
    pub scratch: i32,
    /// The aggregation map (key → count, sum, min, max, buckets; per CPU).
    pub aggregates: i32,
    /// One all-zero aggregate value, to insert a new key from.
    pub zeros: i32,
    /// Latency: START hits waiting for their END, by (pid, match value).
    pub starts: i32,
    /// User stacks by id (`--by ustack`).
    pub stacks: i32,
    /// Records wake the reader when the bytes waiting in the ring cross
    /// this mark (a power of two; see `wake_flags`).
    pub wake_bytes: i32,
}

impl Maps {
    /// No maps yet.
    pub fn none() -> Maps {
        Maps {
            ring: -1,
            lost: -1,
            counts: -1,
            scope: -1,
            scratch: -1,
            aggregates: -1,
            zeros: -1,
            starts: -1,
            stacks: -1,
            wake_bytes: 0,
        }
    }
}

/// One argument as the record program sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArgCode {
    pub location: Location,
    pub kind: ValueKind,
}

/// What a record program depends on: the arguments it fetches (`None`: not
/// fetched) and how. Sites with equal layouts share a program.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Layout {
    pub args: Vec<Option<ArgCode>>,
    /// Room per string, with its NUL (at most [`STRING_BYTES`]).
    pub string_bytes: usize,
    /// User stack frames kept per record (0: none): after the arguments,
    /// a u64 of bytes taken, then the addresses, innermost first.
    pub stack_frames: usize,
    /// Strings may fault their pages in (the program is then sleepable,
    /// which costs some tens of ns per hit).
    pub fault_in: bool,
}

impl Layout {
    pub fn of(site: &ProbeInfo, string_bytes: usize) -> Layout {
        Layout {
            stack_frames: 0,
            fault_in: true,
            string_bytes: string_bytes.clamp(2, STRING_BYTES),
            args: site
                .args
                .iter()
                .map(|a| match &a.fetch {
                    Fetch::At(location) => Some(ArgCode {
                        location: location.clone(),
                        kind: a.kind,
                    }),
                    _ => None,
                })
                .collect(),
        }
    }

    pub(crate) fn strings(&self) -> usize {
        self.args
            .iter()
            .flatten()
            .filter(|a| matches!(a.kind, ValueKind::Str | ValueKind::StrN { .. }))
            .count()
    }

    /// A program that reads strings may sleep to fault pages in.
    pub fn sleepable(&self) -> bool {
        self.strings() > 0 && self.fault_in
    }

    /// Bytes reserved per record: the fixed part and room for every string
    /// at its longest.
    pub fn record_bytes(&self) -> usize {
        self.strings_at() + self.strings() * self.string_bytes
    }

    /// Where the user stack is: a u64 of bytes taken, then the frames.
    pub fn stack_at(&self) -> usize {
        HEADER + 8 * self.args.len()
    }

    pub fn strings_at(&self) -> usize {
        self.stack_at()
            + if self.stack_frames > 0 {
                8 + 8 * self.stack_frames
            } else {
                0
            }
    }
}

/// Where argument `i`'s slot is in a record.
pub fn arg_slot(i: usize) -> usize {
    HEADER + 8 * i
}

/// Fields of a record, for the reader of the ring.
pub mod record {
    use super::*;

    fn u32_at(r: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_ne_bytes(r.get(at..at + 4)?.try_into().ok()?))
    }

    pub fn u64_at(r: &[u8], at: usize) -> Option<u64> {
        Some(u64::from_ne_bytes(r.get(at..at + 8)?.try_into().ok()?))
    }

    pub fn time(r: &[u8]) -> u64 {
        u64_at(r, 0).unwrap_or(0)
    }
    pub fn site(r: &[u8]) -> Option<u32> {
        u32_at(r, SITE as usize)
    }
    pub fn faults(r: &[u8]) -> u32 {
        u32_at(r, FAULTS as usize).unwrap_or(0)
    }
    pub fn tid(r: &[u8]) -> u32 {
        u32_at(r, PID_TGID as usize).unwrap_or(0)
    }
    pub fn pid(r: &[u8]) -> u32 {
        u32_at(r, PID_TGID as usize + 4).unwrap_or(0)
    }
    /// The user stack's addresses in a record laid out with a stack at
    /// `at`, innermost first.
    pub fn stack(r: &[u8], at: usize) -> Vec<u64> {
        let taken = u64_at(r, at).unwrap_or(0) as i64;
        let frames = r.get(at + 8..at + 8 + taken.max(0) as usize).unwrap_or(&[]);
        frames
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
            .take_while(|&ip| ip != 0)
            .collect()
    }

    /// Bytes the program filled (the whole record when it did not say).
    pub fn filled(r: &[u8]) -> usize {
        u32_at(r, FILLED as usize).map_or(r.len(), |n| n as usize)
    }
    pub fn cpu(r: &[u8]) -> u32 {
        u32_at(r, CPU as usize).unwrap_or(0)
    }
    pub fn comm(r: &[u8]) -> &str {
        let bytes = r.get(COMM..COMM + COMM_BYTES).unwrap_or(&[]);
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        std::str::from_utf8(&bytes[..end]).unwrap_or("")
    }
    /// The bytes of the string in slot `at` (`__data_loc`), up to its first
    /// NUL; `None` when the slot points outside the record.
    pub fn string(r: &[u8], at: usize) -> Option<&[u8]> {
        let loc = u32_at(r, at)?;
        let (len, offset) = ((loc >> 16) as usize, (loc & 0xffff) as usize);
        let bytes = r.get(offset..offset + len)?;
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Some(&bytes[..end])
    }
}

/// Instructions with forward jumps to labels patched at the end.
pub(crate) struct Builder {
    insns: Vec<Insn>,
    /// Jumps to the common exit: (instruction index, register tested for
    /// zero, or `None`: always).
    to_exit: Vec<(usize, Option<Reg>)>,
    /// From [`hold`](Self::hold) on, exits first release what R7 holds;
    /// their jumps land on that.
    releasing: Option<Held>,
    to_release: Vec<(usize, Option<Reg>)>,
}

/// What a program holds at R7 until it exits.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Held {
    /// A per-CPU scratch record whose busy word is at this offset: cleared.
    Scratch { busy_at: i16 },
}

impl Builder {
    pub(crate) fn new() -> Builder {
        Builder {
            insns: Vec::new(),
            to_exit: Vec::new(),
            releasing: None,
            to_release: Vec::new(),
        }
    }

    /// R7 now holds something every exit must release.
    pub(crate) fn hold(&mut self, held: Held) {
        self.releasing = Some(held);
    }

    fn exits(&mut self) -> &mut Vec<(usize, Option<Reg>)> {
        if self.releasing.is_some() {
            &mut self.to_release
        } else {
            &mut self.to_exit
        }
    }

    pub(crate) fn push(&mut self, i: Insn) {
        self.insns.push(i);
    }

    pub(crate) fn extend(&mut self, is: impl IntoIterator<Item = Insn>) {
        self.insns.extend(is);
    }

    /// A jump whose target is set later by [`land`](Self::land).
    pub(crate) fn forward(&mut self, jump: Insn) -> usize {
        self.push(jump);
        self.insns.len() - 1
    }

    /// Point the forward jump at `at` to the next instruction.
    pub(crate) fn land(&mut self, at: usize) {
        let mut j = self.insns[at];
        j.set_off((self.insns.len() - at - 1) as i16);
        self.insns[at] = j;
    }

    /// `r = saved register`, without its high half when only the low one is named.
    pub(crate) fn load_saved(&mut self, r: Reg, reg: Saved) {
        self.push(insn::load64(r, R6, reg.reg.pt_regs_offset()));
        if reg.low32 {
            self.push(insn::zero_extend32(r));
        }
    }

    /// `R3 = address`. Clobbers R4.
    fn address(&mut self, a: &Address) {
        match a.base {
            Some(base) => self.load_saved(R3, base),
            None => self.push(insn::mov_imm(R3, 0)),
        }
        if let Some((index, shift)) = a.index {
            self.load_saved(R4, index);
            if shift > 0 {
                self.push(insn::lsh_imm(R4, i32::from(shift)));
            }
            self.push(insn::add(R3, R4));
        }
        match i32::try_from(a.disp) {
            Ok(0) => {}
            Ok(d) => self.push(insn::add_imm(R3, d)),
            Err(_) => {
                self.extend(insn::load_imm64(R4, a.disp as u64));
                self.push(insn::add(R3, R4));
            }
        }
        if a.wrap32 {
            self.push(insn::zero_extend32(R3));
        }
    }

    /// Read `bytes` at the address in R3 into the record at `at` (zeroed
    /// first); on failure set fault bit `bit`.
    fn read_user(&mut self, at: usize, bytes: u8, bit: usize) {
        self.push(insn::store64_imm(R7, at as i16, 0));
        self.push(insn::mov(R1, R7));
        self.push(insn::add_imm(R1, at as i32));
        self.push(insn::mov_imm(R2, i32::from(bytes)));
        self.push(insn::call(helper::PROBE_READ_USER));
        self.push(insn::jump_if_eq(R0, 0, 1));
        self.set_fault(bit);
    }

    pub(crate) fn jump_to_exit_if_zero(&mut self, r: Reg) {
        let at = self.insns.len();
        self.exits().push((at, Some(r)));
        self.push(insn::jump_if_eq(r, 0, 0));
    }

    pub(crate) fn jump_to_exit(&mut self) {
        let at = self.insns.len();
        self.exits().push((at, None));
        self.push(insn::jump(0));
    }

    /// Set fault bit `bit` (arguments past the 32nd have none).
    fn set_fault(&mut self, bit: usize) {
        if bit < 32 {
            self.push(insn::or_imm(R8, (1u32 << bit) as i32));
        } else {
            self.push(insn::or_imm(R8, 0));
        }
    }

    /// Only tasks of traced processes go on; the rest end here.
    pub(crate) fn scope_check(&mut self, scope: i32) {
        if scope < 0 {
            return;
        }
        self.push(insn::call(helper::GET_CURRENT_PID_TGID));
        self.push(insn::rsh_imm(R0, 32));
        self.push(insn::store32(R10, STACK_KEY, R0));
        self.push(insn::mov(R2, R10));
        self.push(insn::add_imm(R2, i32::from(STACK_KEY)));
        self.extend(insn::load_map(R1, scope));
        self.push(insn::call(helper::MAP_LOOKUP_ELEM));
        self.jump_to_exit_if_zero(R0);
    }

    /// `map[key]` += 1 for the per-CPU u64 array `map`, key in R0 (u32).
    pub(crate) fn count(&mut self, map: i32) {
        self.push(insn::store32(R10, STACK_KEY, R0));
        self.push(insn::mov(R2, R10));
        self.push(insn::add_imm(R2, i32::from(STACK_KEY)));
        self.extend(insn::load_map(R1, map));
        self.push(insn::call(helper::MAP_LOOKUP_ELEM));
        self.jump_to_exit_if_zero(R0);
        self.push(insn::mov_imm(R1, 1));
        self.push(insn::atomic_add64(R0, 0, R1));
    }

    /// R7 = this CPU's entry of the per-CPU `maps.scratch`. With `busy_at`
    /// (sleepable programs) the entry is taken with its busy word: while
    /// a program sleeps in the middle of its hit, another task may run on
    /// its CPU, and a hit that finds the word taken is counted as lost
    /// rather than overwrite the sleeper's record. Every exit from here on
    /// releases it.
    pub(crate) fn take_scratch(&mut self, maps: Maps, busy_at: Option<i16>) {
        self.push(insn::store32_imm(R10, STACK_KEY, 0));
        self.push(insn::mov(R2, R10));
        self.push(insn::add_imm(R2, i32::from(STACK_KEY)));
        self.extend(insn::load_map(R1, maps.scratch));
        self.push(insn::call(helper::MAP_LOOKUP_ELEM));
        self.jump_to_exit_if_zero(R0);
        self.push(insn::mov(R7, R0));
        if let Some(busy_at) = busy_at {
            self.push(insn::mov_imm(R0, 0));
            self.push(insn::mov_imm(R1, 1));
            self.push(insn::atomic_cmpxchg64(R7, busy_at, R1));
            let free = self.forward(insn::jump_if_imm(insn::Cond::Eq, R0, 0, 0));
            self.push(insn::mov_imm(R0, LOST_RECORDS as i32));
            self.count(maps.lost);
            self.jump_to_exit();
            self.land(free);
            self.hold(Held::Scratch { busy_at });
        }
    }

    pub(crate) fn finish(mut self) -> Vec<Insn> {
        // The last instruction falls through to here: a held scratch entry
        // is released on that path too.
        let release_at = self.insns.len();
        if let Some(Held::Scratch { busy_at }) = self.releasing {
            self.push(insn::store64_imm(R7, busy_at, 0));
        }
        let exit_at = self.insns.len();
        self.push(insn::mov_imm(R0, 0));
        self.push(insn::exit());
        let jumps = std::mem::take(&mut self.to_exit)
            .into_iter()
            .map(|j| (j, exit_at))
            .chain(
                std::mem::take(&mut self.to_release)
                    .into_iter()
                    .map(|j| (j, release_at)),
            );
        for ((at, r), target) in jumps {
            let off = (target - at - 1) as i16;
            self.insns[at] = match r {
                Some(r) => insn::jump_if_eq(r, 0, off),
                None => insn::jump(off),
            };
        }
        self.insns
    }
}

/// Counting mode: one more hit of the site in the attach cookie.
pub fn count_program(maps: Maps) -> Vec<Insn> {
    let mut b = Builder::new();
    b.push(insn::mov(R6, R1));
    b.scope_check(maps.scope);
    b.push(insn::mov(R1, R6));
    b.push(insn::call(helper::GET_ATTACH_COOKIE));
    b.count(maps.counts);
    b.finish()
}

/// Records larger than this (strings, stacks) are built in a per-CPU
/// scratch entry and copied into the ring at the size they filled
/// ([`compact_record_program`]).
const COMPACT_ABOVE: usize = 256;
/// A per-CPU array value is at most 32 KiB; larger records are reserved
/// in the ring at full size.
const COMPACT_UP_TO: usize = 32 * 1024 - 16;

/// Whether records of `layout` are built in scratch and copied compactly.
pub fn compact(layout: &Layout) -> bool {
    (COMPACT_ABOVE + 1..=COMPACT_UP_TO).contains(&layout.record_bytes())
}

/// The per-CPU scratch entry of a compact record: the record, then its
/// busy word.
pub fn compact_scratch_bytes(layout: &Layout) -> usize {
    layout.record_bytes().next_multiple_of(8) + 8
}

/// The program that builds the records of sites laid out as `layout`, and
/// submits those that pass `filter` (the expression for these sites).
pub fn record_program(layout: &Layout, filter: Option<&Expr>, maps: Maps) -> Vec<Insn> {
    if compact(layout) {
        return compact_record_program(layout, filter, maps);
    }
    let mut b = Builder::new();
    // R6 = the saved registers; R7 = the record; R8 = fault bits;
    // R9 = where the next string goes (the record's length so far).
    b.push(insn::mov(R6, R1));
    b.scope_check(maps.scope);
    b.extend(insn::load_map(R1, maps.ring));
    b.push(insn::mov_imm(R2, layout.record_bytes() as i32));
    b.push(insn::mov_imm(R3, 0));
    b.push(insn::call(helper::RINGBUF_RESERVE));
    let reserved = b.forward(insn::jump_if_ne(R0, 0, 0));
    // No room: count the record as lost.
    b.push(insn::mov_imm(R0, LOST_RECORDS as i32));
    b.count(maps.lost);
    b.jump_to_exit();
    b.land(reserved);
    b.push(insn::mov(R7, R0));
    fill_record(&mut b, layout);
    if let Some(filter) = filter {
        filter::condition(&mut b, filter, layout);
        let keep = b.forward(insn::jump_if_ne(R0, 0, 0));
        b.push(insn::mov(R1, R7));
        b.push(insn::mov_imm(R2, RB_NO_WAKEUP));
        b.push(insn::call(helper::RINGBUF_DISCARD));
        b.jump_to_exit();
        b.land(keep);
    }
    wake_flags(&mut b, maps, R2, layout.record_bytes());
    b.push(insn::mov(R1, R7));
    b.push(insn::call(helper::RINGBUF_SUBMIT));
    b.finish()
}

/// Fill the record at R7 and its user stack, and store its fault bits and
/// filled length (R8, R9 after [`fill`]; R9 stays the length).
fn fill_record(b: &mut Builder, layout: &Layout) {
    fill(b, layout, layout.sleepable());
    if layout.stack_frames > 0 {
        user_stack(b, layout);
    }
    b.push(insn::store32(R7, FAULTS, R8));
    b.push(insn::store32(R7, FILLED, R9));
}

/// `flags` = the submit flags of a record of at most `record_bytes`.
///
/// Waking the reader from a program is dear: an irq_work on this CPU,
/// then a wakeup of the reader's CPU, and the scheduler may move the
/// reader next to the traced thread. Measured per hit on one site at 2 M
/// hits/s: a wakeup each time the ring filled by an eighth (every ~1800
/// records) cost 30 ns per record more than none at all. So the reader
/// looks at the ring on its own clock ([`crate::ring`]), and a record
/// wakes it only when the ring is filling past `maps.wake_bytes` (half of
/// it) without being read: when the bytes waiting, modulo `wake_bytes`,
/// are within a window past the mark. (At or past the mark every record
/// would wake it; the window makes it a few. A window skipped by a race
/// between CPUs leaves the reader to its own clock.) Asking the ring
/// (`bpf_ringbuf_query`) costs no measurable time. Clobbers R0-R5.
fn wake_flags(b: &mut Builder, maps: Maps, flags: Reg, record_bytes: usize) {
    let mark = maps.wake_bytes;
    let window = wake_window(mark, record_bytes);
    b.extend(insn::load_map(R1, maps.ring));
    b.push(insn::mov_imm(R2, RB_AVAIL_DATA));
    b.push(insn::call(helper::RINGBUF_QUERY));
    b.push(insn::mov_imm(flags, RB_NO_WAKEUP));
    b.push(insn::jump_if_imm(Cond::Lt, R0, mark, 3));
    b.push(insn::and_imm(R0, mark.wrapping_sub(1)));
    b.push(insn::jump_if_imm(Cond::Ge, R0, window, 1));
    b.push(insn::mov_imm(flags, RB_FORCE_WAKEUP));
}

/// How far past the wake mark (a power of two) records still wake the
/// reader: room for a few records from every CPU, at most the mark.
fn wake_window(mark: i32, record_bytes: usize) -> i32 {
    let records = 4 * (record_bytes.next_multiple_of(8) + 8);
    (records.max(mark as usize / 32)).min(mark.max(1) as usize) as i32
}

/// [`record_program`] for records with strings or a stack: a record
/// reserved in the ring at its longest (512 bytes per string by default)
/// spreads every hit over several cache lines the producer has not
/// touched, which cost 70-100 ns per hit here (`--str-max 64` against
/// 512 on the same string). Built in this CPU's scratch entry instead, the
/// record is copied into the ring at the length it filled
/// (`bpf_ringbuf_output`), so records sit back to back.
fn compact_record_program(layout: &Layout, filter: Option<&Expr>, maps: Maps) -> Vec<Insn> {
    let mut b = Builder::new();
    b.push(insn::mov(R6, R1));
    b.scope_check(maps.scope);
    let record_bytes = layout.record_bytes();
    let busy_at = compact_scratch_bytes(layout) - 8;
    b.take_scratch(maps, layout.sleepable().then_some(busy_at as i16));
    fill_record(&mut b, layout);
    if let Some(filter) = filter {
        filter::condition(&mut b, filter, layout);
        b.jump_to_exit_if_zero(R0);
    }
    // The size must be bounded for the verifier: at most the record.
    let fits = b.forward(insn::jump_if_imm(Cond::Le, R9, record_bytes as i32, 0));
    b.jump_to_exit();
    b.land(fits);
    wake_flags(&mut b, maps, R8, record_bytes);
    b.extend(insn::load_map(R1, maps.ring));
    b.push(insn::mov(R2, R7));
    b.push(insn::mov(R3, R9));
    b.push(insn::mov(R4, R8));
    b.push(insn::call(helper::RINGBUF_OUTPUT));
    // No room in the ring: the record is lost, and counted.
    let written = b.forward(insn::jump_if_imm(Cond::Eq, R0, 0, 0));
    b.push(insn::mov_imm(R0, LOST_RECORDS as i32));
    b.count(maps.lost);
    b.land(written);
    b.finish()
}

/// `bpf_ringbuf_submit`/`discard` flags, and `bpf_ringbuf_query`'s
/// question "how many bytes wait to be read".
const RB_NO_WAKEUP: i32 = 1;
const RB_FORCE_WAKEUP: i32 = 2;
const RB_AVAIL_DATA: i32 = 0;

/// The user stack into the record (`bpf_get_stack`, frame pointers): the
/// bytes taken (negative: none) at `stack_at`, the frames after.
fn user_stack(b: &mut Builder, layout: &Layout) {
    let at = layout.stack_at();
    b.push(insn::mov(R1, R6));
    b.push(insn::mov(R2, R7));
    b.push(insn::add_imm(R2, (at + 8) as i32));
    b.push(insn::mov_imm(R3, 8 * layout.stack_frames as i32));
    b.push(insn::mov_imm(R4, aggregate::USER_STACK));
    b.push(insn::call(helper::GET_STACK));
    b.push(insn::store64(R7, at as i16, R0));
}

/// Fill the record at R7 (the ring's or a scratch one) for a hit: time,
/// site, thread, CPU, command, then every argument of `layout`. Leaves the
/// fault bits in R8 and the bytes filled in R9; R6 keeps the context.
/// `may_sleep`: the program is sleepable, and faults string pages in.
pub(crate) fn fill(b: &mut Builder, layout: &Layout, may_sleep: bool) {
    fill_some(b, layout, may_sleep, Header::ALL);
}

/// Which header fields a program reads: each costs a helper call, and an
/// aggregation keyed by an argument needs none of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Header {
    pub time: bool,
    pub site: bool,
    pub thread: bool,
    pub cpu: bool,
    pub comm: bool,
}

impl Header {
    pub const ALL: Header = Header {
        time: true,
        site: true,
        thread: true,
        cpu: true,
        comm: true,
    };
}

/// [`fill`] with only the header fields `header` names (the others are
/// left as they were: a reader must not look at them).
pub(crate) fn fill_some(b: &mut Builder, layout: &Layout, may_sleep: bool, header: Header) {
    b.push(insn::mov_imm(R8, 0));
    b.push(insn::mov_imm(R9, layout.strings_at() as i32));
    if header.time {
        b.push(insn::call(helper::KTIME_GET_NS));
        b.push(insn::store64(R7, 0, R0));
    }
    if header.site {
        b.push(insn::mov(R1, R6));
        b.push(insn::call(helper::GET_ATTACH_COOKIE));
        b.push(insn::store32(R7, SITE, R0));
    }
    if header.thread {
        b.push(insn::call(helper::GET_CURRENT_PID_TGID));
        b.push(insn::store64(R7, PID_TGID, R0));
    }
    if header.cpu {
        b.push(insn::call(helper::GET_SMP_PROCESSOR_ID));
        b.push(insn::store32(R7, CPU, R0));
    }
    if header.comm {
        b.push(insn::mov(R1, R7));
        b.push(insn::add_imm(R1, COMM as i32));
        b.push(insn::mov_imm(R2, COMM_BYTES as i32));
        b.push(insn::call(helper::GET_CURRENT_COMM));
    }

    // Values first (a pointer+length string needs its length), then strings.
    for (i, arg) in layout.args.iter().enumerate() {
        let slot = arg_slot(i);
        b.push(insn::store64_imm(R7, slot as i16, 0));
        let Some(arg) = arg else { continue };
        match &arg.location {
            Location::Register { reg, shift } => {
                b.load_saved(R3, *reg);
                if *shift > 0 {
                    b.push(insn::rsh_imm(R3, i32::from(*shift)));
                }
                b.push(insn::store64(R7, slot as i16, R3));
            }
            Location::Memory { address, bytes } => {
                b.address(address);
                b.read_user(slot, *bytes, i);
            }
            Location::Pointer(value) => {
                b.extend(insn::load_imm64(R3, *value as u64));
                b.push(insn::store64(R7, slot as i16, R3));
            }
        }
    }
    for (i, arg) in layout.args.iter().enumerate() {
        let Some(arg) = arg else { continue };
        let slot = arg_slot(i) as i16;
        match arg.kind {
            ValueKind::Str => {
                b.push(insn::load64(R3, R7, slot));
                read_string(b, slot, i, layout.string_bytes as i32, may_sleep);
            }
            ValueKind::StrN { len_arg } if len_arg < layout.args.len() => {
                b.push(insn::load64(R3, R7, slot));
                let len_slot = arg_slot(len_arg) as i16;
                read_counted_string(b, slot, len_slot, i, layout.string_bytes as i32, may_sleep);
            }
            _ => {}
        }
    }
}

/// The NUL-terminated string at R3 into the record at R9; its `__data_loc`
/// (length with the NUL, 0 when unreadable; offset) into `slot`; R9 moves
/// past it. A page the process never touched makes the first copy fault:
/// the (sleepable) program then faults the string's first page and the
/// next in with `bpf_copy_from_user` and copies again.
fn read_string(b: &mut Builder, slot: i16, bit: usize, room: i32, may_sleep: bool) {
    b.push(insn::store64(R10, STACK_PTR, R3));
    let copy = |b: &mut Builder| {
        b.push(insn::mov(R1, R7));
        b.push(insn::add(R1, R9));
        b.push(insn::mov_imm(R2, room));
        b.push(insn::load64(R3, R10, STACK_PTR));
        b.push(insn::call(helper::PROBE_READ_USER_STR));
    };
    copy(b);
    let done = b.forward(insn::jump_if_sgt(R0, -1, 0));
    // Only a sleepable program may fault pages in.
    for next_page in [false, true].into_iter().filter(|_| may_sleep) {
        b.push(insn::mov(R1, R10));
        b.push(insn::add_imm(R1, i32::from(STACK_BYTE)));
        b.push(insn::mov_imm(R2, 1));
        b.push(insn::load64(R3, R10, STACK_PTR));
        if next_page {
            b.push(insn::or_imm(R3, 4095));
            b.push(insn::add_imm(R3, 1));
        }
        b.push(insn::call(helper::COPY_FROM_USER));
    }
    if may_sleep {
        copy(b);
    }
    b.land(done);
    // R0 < 0: unreadable, length 0 and a fault. The clamps let the
    // verifier bound R9 (it cannot know the helper's range).
    b.push(insn::jump_if_sgt(R0, -1, 2));
    b.push(insn::mov_imm(R0, 0));
    b.set_fault(bit);
    b.push(insn::jump_if_le(R0, room, 1));
    b.push(insn::mov_imm(R0, room));
    data_loc(b, slot);
}

/// `len` bytes (argument `len_slot`, at most `room - 1`) at R3 into the
/// record at R9, by `bpf_copy_from_user` (which faults pages in) when the
/// program may sleep, else by `bpf_probe_read_user`.
fn read_counted_string(
    b: &mut Builder,
    slot: i16,
    len_slot: i16,
    bit: usize,
    room: i32,
    may_sleep: bool,
) {
    b.push(insn::load64(R2, R7, len_slot));
    b.push(insn::jump_if_le(R2, room - 1, 1));
    b.push(insn::mov_imm(R2, room - 1));
    b.push(insn::store64(R10, STACK_PTR, R2));
    b.push(insn::mov(R1, R7));
    b.push(insn::add(R1, R9));
    b.push(insn::call(if may_sleep {
        helper::COPY_FROM_USER
    } else {
        helper::PROBE_READ_USER
    }));
    b.push(insn::load64(R1, R10, STACK_PTR));
    // The length read, or 0 and a fault bit.
    b.push(insn::jump_if_eq(R0, 0, 2));
    b.push(insn::mov_imm(R1, 0));
    b.set_fault(bit);
    b.push(insn::mov(R0, R1));
    b.push(insn::jump_if_le(R0, room, 1));
    b.push(insn::mov_imm(R0, room));
    data_loc(b, slot);
}

/// `slot = R0 << 16 | R9; R9 += R0`.
fn data_loc(b: &mut Builder, slot: i16) {
    b.push(insn::mov(R1, R0));
    b.push(insn::lsh_imm(R1, 16));
    b.push(insn::or(R1, R9));
    b.push(insn::store64(R7, slot, R1));
    b.push(insn::add(R9, R0));
}

/// The `sched_process_fork` program: a child of a traced process is traced
/// (its parent is the current task; `child_pid` is at `child_pid_offset`
/// of the tracepoint's record), and a fork record says so.
pub fn fork_program(scope: i32, ring: i32, child_pid_offset: i16) -> Vec<Insn> {
    let mut b = Builder::new();
    b.push(insn::mov(R6, R1));
    b.scope_check(scope);
    b.push(insn::load32(R7, R6, child_pid_offset));
    b.push(insn::store32(R10, -8, R7));
    b.push(insn::store32_imm(R10, -12, 1));
    b.extend(insn::load_map(R1, scope));
    b.push(insn::mov(R2, R10));
    b.push(insn::add_imm(R2, -8));
    b.push(insn::mov(R3, R10));
    b.push(insn::add_imm(R3, -12));
    b.push(insn::mov_imm(R4, 0));
    b.push(insn::call(helper::MAP_UPDATE_ELEM));
    b.extend(insn::load_map(R1, ring));
    b.push(insn::mov_imm(R2, HEADER as i32));
    b.push(insn::mov_imm(R3, 0));
    b.push(insn::call(helper::RINGBUF_RESERVE));
    b.jump_to_exit_if_zero(R0);
    b.push(insn::mov(R8, R0));
    b.push(insn::call(helper::KTIME_GET_NS));
    b.push(insn::store64(R8, 0, R0));
    b.push(insn::store32_imm(R8, SITE, FORK_SITE as i32));
    b.push(insn::store32_imm(R8, FAULTS, 0));
    b.push(insn::store32_imm(R8, FILLED, HEADER as i32));
    b.push(insn::store32(R8, PID_TGID + 4, R7));
    b.push(insn::store32(R8, PID_TGID, R7));
    // The session attaches to the child as soon as it reads this.
    b.push(insn::mov(R1, R8));
    b.push(insn::mov_imm(R2, RB_FORCE_WAKEUP));
    b.push(insn::call(helper::RINGBUF_SUBMIT));
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::X86Reg;

    #[test]
    fn the_wake_window_holds_a_few_records_and_stays_under_the_mark() {
        // Half of a 1 MiB ring, 64-byte records: 1/32 of the mark.
        assert_eq!(wake_window(1 << 19, 64), (1 << 19) / 32);
        // Large records: four of them with their headers.
        assert_eq!(wake_window(1 << 19, 8000), 4 * 8008);
        // Never past the mark (a tiny ring): the reader is woken at most
        // once per mark's worth.
        assert_eq!(wake_window(2048, 4000), 2048);
    }

    fn int_arg() -> ArgCode {
        ArgCode {
            location: Location::Register {
                reg: Saved {
                    reg: X86Reg::Rax,
                    low32: false,
                },
                shift: 0,
            },
            kind: ValueKind::Int {
                bytes: 8,
                signed: true,
            },
        }
    }

    fn maps() -> Maps {
        Maps {
            ring: 3,
            lost: 4,
            counts: 5,
            ..Maps::none()
        }
    }

    #[test]
    fn records_have_room_for_each_string_after_the_arguments() {
        let string = ArgCode {
            kind: ValueKind::Str,
            ..int_arg()
        };
        let l = Layout {
            stack_frames: 0,
            fault_in: true,
            args: vec![Some(int_arg()), None, Some(string.clone()), Some(string)],
            string_bytes: 1000,
        };
        assert_eq!(l.strings_at(), 48 + 32);
        assert_eq!(l.record_bytes(), 80 + 2 * 1000);
        assert!(l.sleepable());
        let ints = Layout {
            stack_frames: 0,
            fault_in: true,
            args: vec![Some(int_arg())],
            string_bytes: 1000,
        };
        assert!(!ints.sleepable());
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let string = ArgCode {
            kind: ValueKind::Str,
            ..int_arg()
        };
        let counted = ArgCode {
            kind: ValueKind::StrN { len_arg: 2 },
            ..int_arg()
        };
        let layout = Layout {
            stack_frames: 0,
            fault_in: true,
            args: vec![Some(string), Some(counted), Some(int_arg())],
            string_bytes: STRING_BYTES,
        };
        for scope in [-1, 9] {
            let m = Maps { scope, ..maps() };
            for p in [
                record_program(&layout, None, m),
                count_program(m),
                fork_program(9, 3, 20),
            ] {
                assert_eq!(p[p.len() - 1], insn::exit());
                for (at, i) in p.iter().enumerate() {
                    if let Some(off) = i.jump_offset() {
                        let to = at as i64 + 1 + i64::from(off);
                        assert!(to > at as i64 && (to as usize) < p.len(), "jump at {at}");
                    }
                }
            }
        }
    }

    /// Records with strings are built in scratch and copied at the size
    /// they filled; records of integers are reserved in the ring in place.
    #[test]
    fn string_records_are_copied_compactly_integer_records_reserved() {
        let string = ArgCode {
            kind: ValueKind::Str,
            ..int_arg()
        };
        let with_string = Layout {
            stack_frames: 0,
            fault_in: true,
            args: vec![Some(int_arg()), Some(string)],
            string_bytes: STRING_BYTES,
        };
        let ints = Layout {
            args: vec![Some(int_arg()), Some(int_arg())],
            ..with_string.clone()
        };
        assert!(compact(&with_string) && !compact(&ints));
        let p = record_program(&with_string, None, maps());
        assert!(p.contains(&insn::call(helper::RINGBUF_OUTPUT)));
        assert!(!p.contains(&insn::call(helper::RINGBUF_RESERVE)));
        // Sleepable: the scratch entry is taken with its busy word, and
        // released on every path out.
        let busy_at = (compact_scratch_bytes(&with_string) - 8) as i16;
        assert!(p.contains(&insn::store64_imm(R7, busy_at, 0)));
        let p = record_program(&ints, None, maps());
        assert!(p.contains(&insn::call(helper::RINGBUF_RESERVE)));
        assert!(!p.contains(&insn::call(helper::RINGBUF_OUTPUT)));
        // A string as long as a per-CPU value may be is reserved in place.
        let huge = Layout {
            string_bytes: 40_000,
            ..with_string
        };
        assert!(!compact(&huge));
    }

    #[test]
    fn counting_is_a_lookup_and_an_add() {
        let p = count_program(maps());
        assert!(p.len() <= 14, "{}", p.len());
        assert!(!p.contains(&insn::call(helper::GET_CURRENT_PID_TGID)));
        let tree = count_program(Maps { scope: 9, ..maps() });
        assert!(tree.contains(&insn::call(helper::GET_CURRENT_PID_TGID)));
    }
}
