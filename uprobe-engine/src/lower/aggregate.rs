//! Aggregation in the kernel: keys, histograms and latencies, so that only
//! the results cross to user space.
//!
//! An aggregating program fills a per-CPU scratch record exactly as a
//! record program fills a ring record (the same fetch code), applies the
//! filter, then builds the key after the record and adds the hit to the
//! aggregation map: a per-CPU hash from key to
//!
//! | offset  | what                                             |
//! |---------|--------------------------------------------------|
//! | 0       | u64 count                                        |
//! | 8       | i64 sum of the values (histograms only, as all below) |
//! | 16, 24  | i64 min, max (set by a CPU's first hit of the key) |
//! | 32 + 8b | u64 hits in bucket b                             |
//!
//! Latency: the START program stores (its time, the key) under (pid, thread
//! or the matched argument); the END program takes that entry, and adds
//! `now - time` to the key's histogram.
//!
//! Where the scratch record lives: on the BPF stack when it is small; else
//! in a per-CPU array entry. A program that reads strings is sleepable (to
//! fault in pages the process never touched, as record programs do), and
//! while it sleeps another task may run on its CPU: the entry has a busy
//! word, taken with a compare-and-exchange, and a hit that finds it taken
//! is counted as lost instead of overwriting the sleeper's record. (Stack
//! ids come from a map type sleepable programs may not use: with `ustack`
//! in the key, strings are read without faulting pages in.)
//!
//! Scratch layout: `[record][u64 time][key]`.

use super::{
    arg_slot, fill_some, filter, Builder, Header, Layout, Maps, COMM, CPU, PID_TGID, SITE,
};
use crate::bpf::insn::{self, helper, Alu, Cond, Insn, R0, R1, R10, R2, R3, R4, R6, R7, R8, R9};
use crate::expr::Expr;

/// A part of an aggregation key, as the user names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPart {
    Probe,
    Pid,
    Tid,
    Cpu,
    Comm,
    Arg(usize),
    Str(usize),
    /// The user stack (an id in the stack map, with the pid that owns it).
    Ustack,
}

impl KeyPart {
    /// `probe`, `pid`, `tid`, `cpu`, `comm`, `argN`, `str(argN)`, `ustack`.
    pub fn parse(text: &str) -> Option<KeyPart> {
        let arg = crate::expr::arg_number;
        Some(match text.trim() {
            "probe" => KeyPart::Probe,
            "pid" => KeyPart::Pid,
            "tid" => KeyPart::Tid,
            "cpu" => KeyPart::Cpu,
            "comm" => KeyPart::Comm,
            "ustack" | "stack" => KeyPart::Ustack,
            s => match s.strip_prefix("str(").and_then(|s| s.strip_suffix(')')) {
                Some(inner) => KeyPart::Str(arg(inner.trim())?),
                None => KeyPart::Arg(arg(s)?),
            },
        })
    }

    pub fn name(&self) -> String {
        match self {
            KeyPart::Probe => "probe".into(),
            KeyPart::Pid => "pid".into(),
            KeyPart::Tid => "tid".into(),
            KeyPart::Cpu => "cpu".into(),
            KeyPart::Comm => "comm".into(),
            KeyPart::Arg(n) => format!("arg{n}"),
            KeyPart::Str(n) => format!("str(arg{n})"),
            KeyPart::Ustack => "ustack".into(),
        }
    }
}

/// What each hit adds to its key's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggValue {
    /// One more hit.
    Count,
    /// The value of an argument, into a histogram.
    Arg(usize),
    /// The time from a START hit to its END, in ns.
    Latency,
}

/// Histogram buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Buckets {
    /// 0: negative, 1: zero, k + 2: [2^k, 2^(k+1)).
    Log2,
    /// 0: below `min`, 1 + i: [min + i·step, min + (i+1)·step), the last:
    /// `max` and above.
    Linear { min: i64, max: i64, step: i64 },
}

impl Buckets {
    pub fn count(&self) -> usize {
        match self {
            Buckets::Log2 => 66,
            Buckets::Linear { min, max, step } => {
                let span = (*max as i128 - *min as i128).max(0) as u128;
                span.div_ceil((*step).max(1) as u128) as usize + 2
            }
        }
    }

    /// The bucket that holds `v`.
    pub fn index(&self, v: i64) -> usize {
        match *self {
            Buckets::Log2 => match v {
                v if v < 0 => 0,
                0 => 1,
                v => 2 + (63 - v.leading_zeros() as usize),
            },
            Buckets::Linear { min, max, step } => {
                if v < min {
                    0
                } else if v >= max {
                    self.count() - 1
                } else {
                    ((i128::from(v) - i128::from(min)) / i128::from(step)) as usize + 1
                }
            }
        }
    }

    /// The values bucket `b` holds, as [low, high] (inclusive).
    pub fn range(&self, b: usize) -> (i128, i128) {
        match *self {
            Buckets::Log2 => match b {
                0 => (i128::from(i64::MIN), -1),
                1 => (0, 0),
                b => (1i128 << (b - 2), (1i128 << (b - 1)) - 1),
            },
            Buckets::Linear { min, max, step } => {
                let last = self.count() - 1;
                let (min, max, step) = (i128::from(min), i128::from(max), i128::from(step));
                match b {
                    0 => (i128::from(i64::MIN), min - 1),
                    b if b == last => (max, i128::from(i64::MAX)),
                    b => (
                        min + (b as i128 - 1) * step,
                        (min + b as i128 * step).min(max) - 1,
                    ),
                }
            }
        }
    }
}

/// The most linear buckets a histogram may have.
pub const MAX_LINEAR_BUCKETS: usize = 1002;

/// An aggregation: the key, and what a hit adds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AggSpec {
    pub keys: Vec<KeyPart>,
    pub value: AggValue,
    pub buckets: Buckets,
    /// Bytes a string takes in a key (with its NUL; a multiple of 8).
    pub key_string_bytes: usize,
}

impl AggSpec {
    /// Where each key part starts, and the key's size.
    pub fn key_layout(&self) -> (Vec<usize>, usize) {
        let mut at = 0;
        let offsets = self
            .keys
            .iter()
            .map(|k| {
                let here = at;
                at += match k {
                    KeyPart::Comm => 16,
                    KeyPart::Str(_) => self.key_string_bytes,
                    _ => 8,
                };
                here
            })
            .collect();
        (offsets, at.max(8))
    }

    pub fn has_histogram(&self) -> bool {
        self.value != AggValue::Count
    }

    /// Bytes of one CPU's aggregate value.
    pub fn value_bytes(&self) -> usize {
        if self.has_histogram() {
            32 + 8 * self.buckets.count()
        } else {
            8
        }
    }
}

/// Where a key part comes from at one site.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeySource {
    Site,
    Pid,
    Tid,
    Cpu,
    Comm,
    Arg(usize),
    /// An argument the note gives as a constant.
    Constant(i64),
    Str(usize),
    Ustack,
}

/// What an aggregating program does after filling its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Add the hit to its key.
    Aggregate,
    /// Remember the time and key, under (pid, thread or argument `arg`).
    Start { by_arg: Option<usize> },
    /// Take the START entry under (pid, thread or argument), add the time
    /// since to its key.
    End { by_arg: Option<usize> },
}

/// Everything an aggregating program for a group of sites depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AggProgram {
    /// Sleepable, with its scratch record in the ring buffer.
    pub sleepable: bool,
    pub layout: Layout,
    pub filter: Option<Expr>,
    pub role: Role,
    pub spec: AggSpec,
    /// Per key part, where it comes from at these sites (START and
    /// aggregate programs).
    pub sources: Vec<KeySource>,
    /// The histogram's value is the constant argument this is.
    pub constant_value: Option<i64>,
}

/// The scratch record: `[record][time][key]` (and a busy word after it,
/// for sleepable programs: see [`map_bytes`]).
pub fn scratch_bytes(layout: &Layout, spec: &AggSpec) -> usize {
    time_at(layout) + 8 + spec.key_layout().1
}

/// The per-CPU scratch entry: the record and its busy word.
pub fn map_bytes(layout: &Layout, spec: &AggSpec) -> usize {
    scratch_bytes(layout, spec) + 8
}

fn time_at(layout: &Layout) -> usize {
    layout.record_bytes().next_multiple_of(8)
}

/// `BPF_F_USER_STACK`: `bpf_get_stackid` walks the user stack.
pub const USER_STACK: i32 = 1 << 8;
/// `BPF_NOEXIST` for map updates.
const NOEXIST: i32 = 1;

pub fn program(p: &AggProgram, maps: Maps) -> Vec<Insn> {
    let mut b = Builder::new();
    b.push(insn::mov(R6, R1));
    b.scope_check(maps.scope);
    let scratch = scratch_bytes(&p.layout, &p.spec);
    let on_stack = !p.sleepable
        && scratch <= STACK_SCRATCH
        && p.filter
            .as_ref()
            .is_none_or(|f| filter::depth(f) <= filter::SHALLOW);
    if on_stack {
        // R7 = the scratch record at the bottom of the stack: no lookup.
        b.push(insn::mov(R7, R10));
        b.push(insn::add_imm(R7, -(STACK_SCRATCH_AT as i32)));
    } else {
        // R7 = this CPU's scratch record.
        b.take_scratch(maps, p.sleepable.then_some(scratch as i16));
    }
    fill_some(&mut b, &p.layout, p.sleepable, header(p));
    let time_at = time_at(&p.layout);
    let key_at = time_at + 8;
    if let Role::End { by_arg } = p.role {
        // No filter at END: the START hit was the one filtered.
        match_key(&mut b, &p.layout, by_arg);
        match_key_ptr(&mut b);
        b.extend(insn::load_map(R1, maps.starts));
        b.push(insn::call(helper::MAP_LOOKUP_ELEM));
        b.jump_to_exit_if_zero(R0);
        // R9 = now - start; R8 = the key stored with the start.
        b.push(insn::load64(R9, R7, 0));
        b.push(insn::load64(R1, R0, 0));
        b.push(insn::alu(Alu::Sub, R9, R1));
        b.push(insn::mov(R8, R0));
        b.push(insn::add_imm(R8, 8));
        update(&mut b, &p.spec, maps);
        match_key_ptr(&mut b);
        b.extend(insn::load_map(R1, maps.starts));
        b.push(insn::call(helper::MAP_DELETE_ELEM));
        b.jump_to_exit();
        return b.finish();
    }
    if let Some(f) = &p.filter {
        filter::condition(&mut b, f, &p.layout);
        b.jump_to_exit_if_zero(R0);
    }
    build_key(&mut b, p, key_at, maps);
    match p.role {
        Role::Start { by_arg } => {
            b.push(insn::load64(R1, R7, 0));
            b.push(insn::store64(R7, time_at as i16, R1));
            match_key(&mut b, &p.layout, by_arg);
            b.extend(insn::load_map(R1, maps.starts));
            match_key_ptr(&mut b);
            b.push(insn::mov(R3, R7));
            b.push(insn::add_imm(R3, time_at as i32));
            b.push(insn::mov_imm(R4, 0));
            b.push(insn::call(helper::MAP_UPDATE_ELEM));
        }
        _ => {
            match (p.spec.value, p.constant_value) {
                (AggValue::Arg(_), Some(c)) => b.extend(insn::load_imm64(R9, c as u64)),
                (AggValue::Arg(n), None) => filter::load_int_arg(&mut b, R9, &p.layout, n),
                _ => b.push(insn::mov_imm(R9, 0)),
            }
            b.push(insn::mov(R8, R7));
            b.push(insn::add_imm(R8, key_at as i32));
            update(&mut b, &p.spec, maps);
        }
    }
    b.jump_to_exit();
    b.finish()
}

/// The latency match key `[pid, thread or argument]` lives on the stack:
/// a helper may take only one pointer into a ring record.
const MATCH_KEY: i16 = -48;

/// The header fields a program reads (the others are not filled).
fn header(p: &AggProgram) -> Header {
    let mut h = Header {
        time: !matches!(p.role, Role::Aggregate),
        thread: !matches!(p.role, Role::Aggregate),
        ..Header::default()
    };
    for source in &p.sources {
        match source {
            KeySource::Site => h.site = true,
            KeySource::Pid | KeySource::Tid | KeySource::Ustack => h.thread = true,
            KeySource::Cpu => h.cpu = true,
            KeySource::Comm => h.comm = true,
            _ => {}
        }
    }
    if let Some(f) = &p.filter {
        let fields = filter::fields(f);
        h.thread |= fields.thread;
        h.cpu |= fields.cpu;
        h.comm |= fields.comm;
    }
    h
}

/// Scratch records this small live on the BPF stack, below the slots the
/// programs use (a filter's temporaries included, when it is shallow).
const STACK_SCRATCH: usize = 192;
const STACK_SCRATCH_AT: usize = 512;

/// `[pid, thread or argument]` at [`MATCH_KEY`].
fn match_key(b: &mut Builder, layout: &Layout, by_arg: Option<usize>) {
    b.push(insn::load32(R1, R7, PID_TGID + 4));
    b.push(insn::store64(R10, MATCH_KEY, R1));
    match by_arg {
        Some(n) => filter::load_int_arg(b, R1, layout, n),
        None => b.push(insn::load32(R1, R7, PID_TGID)),
    }
    b.push(insn::store64(R10, MATCH_KEY + 8, R1));
}

/// `R2 = &match key`.
fn match_key_ptr(b: &mut Builder) {
    b.push(insn::mov(R2, R10));
    b.push(insn::add_imm(R2, i32::from(MATCH_KEY)));
}

fn build_key(b: &mut Builder, p: &AggProgram, key_at: usize, maps: Maps) {
    let (offsets, _) = p.spec.key_layout();
    for (source, &off) in p.sources.iter().zip(&offsets) {
        let at = (key_at + off) as i16;
        match source {
            KeySource::Site => b.push(insn::load32(R1, R7, SITE)),
            KeySource::Pid => b.push(insn::load32(R1, R7, PID_TGID + 4)),
            KeySource::Tid => b.push(insn::load32(R1, R7, PID_TGID)),
            KeySource::Cpu => b.push(insn::load32(R1, R7, CPU)),
            KeySource::Arg(n) => filter::load_int_arg(b, R1, &p.layout, *n),
            KeySource::Constant(c) => b.extend(insn::load_imm64(R1, *c as u64)),
            KeySource::Comm => {
                for half in [0, 8] {
                    b.push(insn::load64(R1, R7, (COMM + half) as i16));
                    b.push(insn::store64(R7, at + half as i16, R1));
                }
                continue;
            }
            KeySource::Str(n) => {
                key_string(b, &p.layout, *n, at, p.spec.key_string_bytes);
                continue;
            }
            KeySource::Ustack => {
                b.push(insn::mov(R1, R6));
                b.extend(insn::load_map(R2, maps.stacks));
                b.push(insn::mov_imm(R3, USER_STACK));
                b.push(insn::call(helper::GET_STACKID));
                b.push(insn::store32(R7, at, R0));
                b.push(insn::load32(R1, R7, PID_TGID + 4));
                b.push(insn::store32(R7, at + 4, R1));
                continue;
            }
        }
        b.push(insn::store64(R7, at, R1));
    }
}

/// The string of argument `n` (in the record) into the key at `at`: zeroed
/// first (keys compare every byte), then copied up to `room - 1` bytes.
fn key_string(b: &mut Builder, layout: &Layout, n: usize, at: i16, room: usize) {
    for i in (0..room).step_by(8) {
        b.push(insn::store64_imm(R7, at + i as i16, 0));
    }
    // R3 = the string's offset in the record, R2 = its length.
    b.push(insn::load64(R3, R7, arg_slot(n) as i16));
    b.push(insn::mov(R2, R3));
    b.push(insn::rsh_imm(R2, 16));
    b.push(insn::and_imm(R3, 0xffff));
    b.push(insn::jump_if_imm(Cond::Le, R2, room as i32 - 1, 1));
    b.push(insn::mov_imm(R2, room as i32 - 1));
    let skip = b.forward(insn::jump_if_imm(Cond::Eq, R2, 0, 0));
    let last_start = layout.record_bytes() as i32;
    let skip_far = b.forward(insn::jump_if_imm(Cond::Gt, R3, last_start, 0));
    b.push(insn::add(R3, R7));
    b.push(insn::mov(R1, R7));
    b.push(insn::add_imm(R1, i32::from(at)));
    b.push(insn::call(helper::PROBE_READ_KERNEL));
    b.land(skip);
    b.land(skip_far);
}

/// Add the hit (value in R9) to the entry of the key at R8.
fn update(b: &mut Builder, spec: &AggSpec, maps: Maps) {
    let lookup = |b: &mut Builder| {
        b.extend(insn::load_map(R1, maps.aggregates));
        b.push(insn::mov(R2, R8));
        b.push(insn::call(helper::MAP_LOOKUP_ELEM));
    };
    lookup(b);
    let found = b.forward(insn::jump_if_imm(Cond::Ne, R0, 0, 0));
    // A new key: insert zeros (unless another CPU just did), look up again.
    b.push(insn::store32_imm(R10, super::STACK_KEY, 0));
    b.push(insn::mov(R2, R10));
    b.push(insn::add_imm(R2, i32::from(super::STACK_KEY)));
    b.extend(insn::load_map(R1, maps.zeros));
    b.push(insn::call(helper::MAP_LOOKUP_ELEM));
    b.jump_to_exit_if_zero(R0);
    b.push(insn::mov(R3, R0));
    b.extend(insn::load_map(R1, maps.aggregates));
    b.push(insn::mov(R2, R8));
    b.push(insn::mov_imm(R4, NOEXIST));
    b.push(insn::call(helper::MAP_UPDATE_ELEM));
    lookup(b);
    let inserted = b.forward(insn::jump_if_imm(Cond::Ne, R0, 0, 0));
    // The key map is full: the hit is lost, and counted.
    b.push(insn::mov_imm(R0, super::LOST_KEYS as i32));
    b.count(maps.lost);
    b.jump_to_exit();
    b.land(found);
    b.land(inserted);
    b.push(insn::mov(R8, R0));
    // Per-CPU entries: plain adds (a preempting hit on this CPU can
    // interleave, rarely; atomics would cost every hit).
    b.push(insn::load64(R1, R8, 0));
    b.push(insn::add_imm(R1, 1));
    b.push(insn::store64(R8, 0, R1));
    if !spec.has_histogram() {
        return;
    }
    b.push(insn::load64(R2, R8, 8));
    b.push(insn::add(R2, R9));
    b.push(insn::store64(R8, 8, R2));
    // The first hit on this CPU sets min and max.
    let later = b.forward(insn::jump_if_imm(Cond::Ne, R1, 1, 0));
    b.push(insn::store64(R8, 16, R9));
    b.push(insn::store64(R8, 24, R9));
    let to_bucket = b.forward(insn::jump(0));
    b.land(later);
    b.push(insn::load64(R2, R8, 16));
    b.push(insn::jump_if(Cond::SGe, R9, R2, 1));
    b.push(insn::store64(R8, 16, R9));
    b.push(insn::load64(R2, R8, 24));
    b.push(insn::jump_if(Cond::SLe, R9, R2, 1));
    b.push(insn::store64(R8, 24, R9));
    b.land(to_bucket);
    bucket(b, spec.buckets);
    let last = spec.buckets.count() as i32 - 1;
    b.push(insn::jump_if_imm(Cond::Le, R1, last, 1));
    b.push(insn::mov_imm(R1, last));
    b.push(insn::lsh_imm(R1, 3));
    b.push(insn::add(R1, R8));
    b.push(insn::load64(R2, R1, 32));
    b.push(insn::add_imm(R2, 1));
    b.push(insn::store64(R1, 32, R2));
}

/// `R1 = the bucket of R9`. Clobbers R2, R3.
fn bucket(b: &mut Builder, buckets: Buckets) {
    let mut done = Vec::new();
    match buckets {
        Buckets::Log2 => {
            b.push(insn::mov_imm(R1, 0));
            done.push(b.forward(insn::jump_if_imm(Cond::SLt, R9, 0, 0)));
            b.push(insn::mov_imm(R1, 1));
            done.push(b.forward(insn::jump_if_imm(Cond::Eq, R9, 0, 0)));
            // 2 + floor(log2 v), by halving the bits to look at.
            b.push(insn::mov(R2, R9));
            b.push(insn::mov_imm(R1, 2));
            for shift in [32, 16, 8, 4, 2, 1] {
                b.push(insn::mov(R3, R2));
                b.push(insn::rsh_imm(R3, shift));
                b.push(insn::jump_if_imm(Cond::Eq, R3, 0, 2));
                b.push(insn::mov(R2, R3));
                b.push(insn::add_imm(R1, shift));
            }
        }
        Buckets::Linear { min, max, step } => {
            let last = buckets.count() as i32 - 1;
            b.push(insn::mov_imm(R1, 0));
            b.extend(insn::load_imm64(R2, min as u64));
            done.push(b.forward(insn::jump_if(Cond::SLt, R9, R2, 0)));
            b.push(insn::mov_imm(R1, last));
            b.extend(insn::load_imm64(R3, max as u64));
            done.push(b.forward(insn::jump_if(Cond::SGe, R9, R3, 0)));
            b.push(insn::mov(R1, R9));
            b.push(insn::alu(Alu::Sub, R1, R2));
            b.extend(insn::load_imm64(R3, step as u64));
            // v - min >= 0 here.
            b.push(insn::alu(Alu::SDiv, R1, R3));
            b.push(insn::add_imm(R1, 1));
        }
    }
    for at in done {
        b.land(at);
    }
    b.push(insn::jump_if_imm(Cond::SGe, R1, 0, 1));
    b.push(insn::mov_imm(R1, 0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_once() {
        let lin = Buckets::Linear {
            min: 0,
            max: 100,
            step: 10,
        };
        assert_eq!(lin.count(), 12);
        assert_eq!(lin.range(0), (i128::from(i64::MIN), -1));
        assert_eq!(lin.range(1), (0, 9));
        assert_eq!(lin.range(10), (90, 99));
        assert_eq!(lin.range(11), (100, i128::from(i64::MAX)));
        let uneven = Buckets::Linear {
            min: -45,
            max: 0,
            step: 10,
        };
        assert_eq!(uneven.range(5), (-5, -1));
        assert_eq!(uneven.range(6), (0, i128::from(i64::MAX)));
        assert_eq!(Buckets::Log2.range(2), (1, 1));
        assert_eq!(Buckets::Log2.range(3), (2, 3));
        assert_eq!(Buckets::Log2.range(65), (1 << 63, (1 << 64) - 1));
    }

    #[test]
    fn keys_parse_and_lay_out() {
        let keys: Vec<KeyPart> = ["probe", "pid", "str(arg1)", "comm", "arg3"]
            .iter()
            .map(|k| KeyPart::parse(k).unwrap())
            .collect();
        assert_eq!(keys[2], KeyPart::Str(1));
        assert!(KeyPart::parse("arg12").is_none());
        assert!(KeyPart::parse("str(pid)").is_none());
        let spec = AggSpec {
            keys,
            value: AggValue::Count,
            buckets: Buckets::Log2,
            key_string_bytes: 64,
        };
        assert_eq!(spec.key_layout(), (vec![0, 8, 16, 80, 96], 104));
        assert_eq!(spec.value_bytes(), 8);
    }
}
