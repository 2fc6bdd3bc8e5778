//! `uprobe_floor -r ringbuf|perfbuf`: the floor of a record transport. The
//! program builds the 64-byte record `stap-sdt trace --json` writes for a
//! probe with two integer arguments (time, site cookie, pid/tid, CPU, comm,
//! two registers) and hands it to one transport; a reader thread takes the
//! records every millisecond, reading every byte, as a tracer would.
//!
//! - `ringbuf`: one BPF ring buffer of 256 pages (`bpf_ringbuf_reserve`,
//!   fill, `bpf_ringbuf_submit` without a wakeup): what the engine does,
//!   minus its choices (wakeup policy, reorder, decoding, output).
//! - `perfbuf`: per-CPU perf buffers of 128 pages each (`perf record`'s
//!   default), the record built on the BPF stack and copied by
//!   `bpf_perf_event_output`: no locked instructions on the way, which is
//!   what perf itself does.
//!
//! `benches/trace_bench.sh` runs both beside `trace --json`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use uprobe_engine::bpf::insn::{self, helper, Insn, Reg, R0, R1, R10, R2, R3, R4, R5, R6, R7};
use uprobe_engine::bpf::sys::Map;
use uprobe_engine::mapping::Mapping;
use uprobe_engine::perf::PerfEvent;

const PAGE: usize = 4096;
const RECORD_BYTES: i32 = 64;
const RING_PAGES: usize = 256;
const PERF_PAGES: usize = 128;
/// `saved registers` offsets of rax and rdx (`struct pt_regs`).
const PT_REGS_AX: i16 = 80;
const PT_REGS_DX: i16 = 96;
/// `perf_event_mmap_page`: where the data head and tail are.
const DATA_HEAD: usize = 1024;
const DATA_TAIL: usize = 1032;
const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_SAMPLE: u32 = 9;
/// Ring buffer record header bits.
const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    RingBuf,
    PerfBuf,
}

impl Transport {
    pub fn parse(s: &str) -> Result<Transport, String> {
        match s {
            "ringbuf" => Ok(Transport::RingBuf),
            "perfbuf" => Ok(Transport::PerfBuf),
            _ => Err(format!("-r takes ringbuf or perfbuf, not {s}")),
        }
    }
}

/// Add up the u64s of `bytes` at ring position `offset` of `mapping`'s
/// data area (`data_bytes` at `data_at`, wrapping): the reader touches
/// each one, as a tracer copying the record out would.
fn touch(mapping: &Mapping, data_at: usize, data_bytes: usize, offset: u64, bytes: usize) -> u64 {
    (0..bytes)
        .step_by(8)
        .map(|i| {
            mapping
                .word(data_at + ((offset as usize + i) & (data_bytes - 1)))
                .load(Ordering::Relaxed)
        })
        .fold(0, u64::wrapping_add)
}

/// The transport's maps and reader.
pub struct Records {
    program: Vec<Insn>,
    stop: Arc<AtomicBool>,
    reader: JoinHandle<(u64, u64)>,
    /// The maps and events the program writes to (kept open).
    _kernel: (Map, Vec<PerfEvent>),
}

impl Records {
    pub fn new(transport: Transport) -> Result<Records, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let quit = stop.clone();
        match transport {
            Transport::RingBuf => {
                let bytes = RING_PAGES * PAGE;
                let ring = Map::ring_buffer(bytes as u32).map_err(|e| e.to_string())?;
                let map = |bytes, writable, offset| {
                    Mapping::new(ring.fd(), bytes, writable, offset, "the ring buffer")
                        .map_err(|e| e.to_string())
                };
                let consumer = map(PAGE, true, 0)?;
                let producer = map(PAGE + 2 * bytes, false, PAGE)?;
                let reader =
                    std::thread::spawn(move || read_ring(&consumer, &producer, bytes, &quit));
                Ok(Records {
                    program: ring_program(ring.fd()),
                    stop,
                    reader,
                    _kernel: (ring, Vec::new()),
                })
            }
            Transport::PerfBuf => {
                let cpus = uprobe_engine::perf::online_cpus();
                let count = cpus.iter().max().map_or(1, |c| *c as u32 + 1);
                let array = Map::perf_event_array(count).map_err(|e| e.to_string())?;
                let bytes = PERF_PAGES * PAGE;
                let (mut events, mut buffers) = (Vec::new(), Vec::new());
                for cpu in cpus {
                    let event = PerfEvent::bpf_output(cpu, (bytes / 2) as u32)
                        .map_err(|e| e.to_string())?;
                    buffers.push(
                        Mapping::new(event.raw_fd(), PAGE + bytes, true, 0, "a perf buffer")
                            .map_err(|e| e.to_string())?,
                    );
                    event.enable().map_err(|e| e.to_string())?;
                    array
                        .insert_u32(cpu as u32, event.raw_fd() as u32)
                        .map_err(|e| e.to_string())?;
                    events.push(event);
                }
                let reader = std::thread::spawn(move || read_perf(&buffers, bytes, &quit));
                Ok(Records {
                    program: perf_program(array.fd()),
                    stop,
                    reader,
                    _kernel: (array, events),
                })
            }
        }
    }

    pub fn program(&self) -> &[Insn] {
        &self.program
    }

    /// Stop the reader after one last pass: (records read, records lost).
    pub fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.reader.join().unwrap_or((0, 0))
    }
}

/// The record at `base` of `record`: what the engine writes for two integers.
fn fill(b: &mut Vec<Insn>, record: Reg, base: i16) {
    b.push(insn::call(helper::KTIME_GET_NS));
    b.push(insn::store64(record, base, R0));
    b.push(insn::mov(R1, R6));
    b.push(insn::call(helper::GET_ATTACH_COOKIE));
    b.push(insn::store32(record, base + 8, R0));
    b.push(insn::call(helper::GET_CURRENT_PID_TGID));
    b.push(insn::store64(record, base + 16, R0));
    b.push(insn::call(helper::GET_SMP_PROCESSOR_ID));
    b.push(insn::store32(record, base + 24, R0));
    b.push(insn::mov(R1, record));
    b.push(insn::add_imm(R1, i32::from(base) + 32));
    b.push(insn::mov_imm(R2, 16));
    b.push(insn::call(helper::GET_CURRENT_COMM));
    for (slot, reg) in [(48, PT_REGS_AX), (56, PT_REGS_DX)] {
        b.push(insn::load64(R3, R6, reg));
        b.push(insn::store64(record, base + slot, R3));
    }
}

fn ring_program(ring: i32) -> Vec<Insn> {
    let mut b = vec![insn::mov(R6, R1)];
    b.extend(insn::load_map(R1, ring));
    b.push(insn::mov_imm(R2, RECORD_BYTES));
    b.push(insn::mov_imm(R3, 0));
    b.push(insn::call(helper::RINGBUF_RESERVE));
    b.push(insn::jump_if_ne(R0, 0, 2));
    b.push(insn::mov_imm(R0, 0));
    b.push(insn::exit());
    b.push(insn::mov(R7, R0));
    fill(&mut b, R7, 0);
    b.push(insn::mov(R1, R7));
    b.push(insn::mov_imm(R2, 1)); // BPF_RB_NO_WAKEUP
    b.push(insn::call(helper::RINGBUF_SUBMIT));
    b.push(insn::mov_imm(R0, 0));
    b.push(insn::exit());
    b
}

fn perf_program(array: i32) -> Vec<Insn> {
    let mut b = vec![insn::mov(R6, R1)];
    fill(&mut b, R10, -(RECORD_BYTES as i16));
    b.push(insn::mov(R1, R6));
    b.extend(insn::load_map(R2, array));
    // BPF_F_CURRENT_CPU: the low 32 bits set.
    b.push(insn::mov_imm(R3, -1));
    b.push(insn::zero_extend32(R3));
    b.push(insn::mov(R4, R10));
    b.push(insn::add_imm(R4, -RECORD_BYTES));
    b.push(insn::mov_imm(R5, RECORD_BYTES));
    b.push(insn::call(helper::PERF_EVENT_OUTPUT));
    b.push(insn::mov_imm(R0, 0));
    b.push(insn::exit());
    b
}

/// Take the ring's records every millisecond until `stop`, then once more.
fn read_ring(
    consumer: &Mapping,
    producer: &Mapping,
    bytes: usize,
    stop: &AtomicBool,
) -> (u64, u64) {
    let (mut read, mut seen) = (0, 0u64);
    loop {
        let last = stop.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(1));
        let mut at = consumer.word(0).load(Ordering::Acquire);
        let end = producer.word(0).load(Ordering::Acquire);
        while at < end {
            // The header: a u32 the kernel writes atomically, then 4 bytes
            // of page offset.
            let header = producer
                .word(PAGE + (at as usize & (bytes - 1)))
                .load(Ordering::Acquire) as u32;
            if header & BUSY != 0 {
                break;
            }
            let len = (header & !(BUSY | DISCARD)) as usize;
            seen = seen.wrapping_add(touch(producer, PAGE, bytes, at + 8, len));
            read += 1;
            at += (len as u64 + 8 + 7) & !7;
        }
        consumer.word(0).store(at, Ordering::Release);
        if last {
            std::hint::black_box(seen);
            return (read, 0);
        }
    }
}

/// Take every CPU's perf buffer every millisecond until `stop`, then once
/// more: (samples read, samples the kernel reported lost).
fn read_perf(buffers: &[Mapping], bytes: usize, stop: &AtomicBool) -> (u64, u64) {
    let (mut read, mut lost, mut seen) = (0, 0, 0u64);
    loop {
        let last = stop.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(1));
        for buffer in buffers {
            let head = buffer.word(DATA_HEAD).load(Ordering::Acquire);
            let mut tail = buffer.word(DATA_TAIL).load(Ordering::Relaxed);
            while tail < head {
                // perf_event_header: u32 type, u16 misc, u16 size.
                let word = touch(buffer, PAGE, bytes, tail, 8);
                let (kind, size) = (word as u32, (word >> 48) as usize);
                if size == 0 {
                    break;
                }
                match kind {
                    PERF_RECORD_SAMPLE => {
                        seen = seen.wrapping_add(touch(buffer, PAGE, bytes, tail + 8, size - 8));
                        read += 1;
                    }
                    // After the header: u64 id, u64 lost.
                    PERF_RECORD_LOST => lost += touch(buffer, PAGE, bytes, tail + 16, 8),
                    _ => {}
                }
                tail += size as u64;
            }
            buffer.word(DATA_TAIL).store(tail, Ordering::Release);
        }
        if last {
            std::hint::black_box(seen);
            return (read, lost);
        }
    }
}
