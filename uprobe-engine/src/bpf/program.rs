//! The record a BPF-fetched probe emits, and the program that builds it.
//!
//! Record layout (8-byte slots, like a tracefs record so that the same
//! field decoder reads both):
//!
//! | offset        | what                                                   |
//! |---------------|--------------------------------------------------------|
//! | 0             | u16 tracepoint id of the probe's own tracefs event     |
//! | 4             | u32 bit i set: argument i's memory could not be read   |
//! | 8             | u32 `__data_loc` of the command name                   |
//! | 16 + 8·i      | argument i: its value, or a `__data_loc` for a string  |
//! | 16 + 8·n      | the command name, 16 bytes                             |
//! | then          | the strings, one after the other, each as long as read |
//!
//! The program builds the record in a per-CPU map value (the BPF stack is
//! only 512 bytes) with room for every string at its longest, and sends to
//! this CPU's slot of a perf event array only the bytes it filled: a short
//! string costs what it is long.

use super::insn::{self, helper, Insn, Reg, R0, R1, R10, R2, R3, R4, R5, R6, R7, R8, R9};
use super::{Address, BpfArg, Location, Saved};
use crate::fetchargs::ValueKind;
use crate::format::Field;

/// The largest record a program builds: `__data_loc` offsets are 16-bit,
/// and a perf record's size too.
pub const MAX_RECORD: usize = 60 * 1024;

/// The longest string read at a hit, with its NUL (as uprobe fetchargs:
/// the kernel's MAX_STRING_SIZE).
pub const STRING_BYTES: usize = 4096;
const COMM_BYTES: usize = 16;
const HEADER: usize = 16;
/// Offset of the fault bits.
const FAULTS: i16 = 4;
const COMM_LOC: usize = 8;

/// Where each part of the record is.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Bytes of the buffer the record is built in: the fixed part and room
    /// for every string at its longest.
    pub size: usize,
    /// One field per argument; `None` for those not fetched (constants).
    pub args: Vec<Option<Field>>,
    pub comm: Field,
    /// The u32 of fault bits.
    pub faults: Field,
    /// Where the strings start; the end of the fixed part.
    strings_at: usize,
}

fn field(name: String, offset: usize, size: usize, data_loc: bool) -> Field {
    Field {
        name,
        offset,
        size,
        signed: false,
        data_loc,
    }
}

/// The layout of a record for these arguments (`None`: not fetched), or
/// why there is none (too large for the program's 16-bit offsets).
pub fn layout(args: &[Option<&BpfArg>]) -> Result<Layout, String> {
    let strings_at = HEADER + 8 * args.len() + COMM_BYTES;
    let mut string_count = 0;
    let mut fields = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        let is_string = arg.is_some_and(|a| a.kind == ValueKind::Str);
        string_count += usize::from(is_string);
        let size = if is_string { 4 } else { 8 };
        fields.push(arg.map(|_| field(format!("a{i}"), HEADER + 8 * i, size, is_string)));
    }
    let size = (strings_at + string_count * STRING_BYTES).next_multiple_of(8);
    if size > MAX_RECORD {
        return Err(format!(
            "{} arguments make a {size}-byte record; a program builds at most {MAX_RECORD}",
            args.len()
        ));
    }
    Ok(Layout {
        size,
        args: fields,
        comm: field("_comm".into(), COMM_LOC, 4, true),
        faults: field("_faults".into(), FAULTS as usize, 4, false),
        strings_at,
    })
}

/// Instructions with forward jumps to the common exit patched at the end.
struct Builder {
    insns: Vec<Insn>,
    /// Jumps to patch: (instruction index, register tested for zero).
    to_exit: Vec<(usize, Reg)>,
}

impl Builder {
    fn push(&mut self, i: Insn) {
        self.insns.push(i);
    }

    fn extend(&mut self, is: impl IntoIterator<Item = Insn>) {
        self.insns.extend(is);
    }

    /// `r = saved register`, without its high half when only the low one is named.
    fn load_saved(&mut self, r: Reg, reg: Saved) {
        self.push(insn::load64(r, R6, reg.slot));
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

    /// Read `bytes` at the address in R3 into the record at `at`
    /// (zeroed first); on failure set fault bit `bit`.
    fn read_user(&mut self, at: usize, bytes: u8, bit: usize) {
        self.push(insn::store64_imm(R7, at as i16, 0));
        self.push(insn::mov(R1, R7));
        self.push(insn::add_imm(R1, at as i32));
        self.push(insn::mov_imm(R2, i32::from(bytes)));
        self.push(insn::call(helper::PROBE_READ_USER));
        if bit < 32 {
            self.push(insn::jump_if_eq(R0, 0, 1));
            self.push(insn::or_imm(R8, (1u32 << bit) as i32));
        }
    }

    fn jump_to_exit_if_zero(&mut self, r: Reg) {
        self.to_exit.push((self.insns.len(), r));
        self.push(insn::jump_if_eq(r, 0, 0));
    }

    fn finish(mut self) -> Vec<Insn> {
        let exit_at = self.insns.len();
        self.push(insn::mov_imm(R0, 0));
        self.push(insn::exit());
        for (at, r) in self.to_exit {
            self.insns[at] = insn::jump_if_eq(r, 0, (exit_at - at - 1) as i16);
        }
        self.insns
    }
}

/// The program for a probe whose tracefs event has id `id`.
/// The maps a program uses, by file descriptor.
#[derive(Debug, Clone, Copy)]
pub struct Maps {
    /// Per-CPU buffer of at least [`Layout::size`] bytes.
    pub scratch: i32,
    /// Perf event array of the CPUs' bpf-output events.
    pub output: i32,
    /// Per-CPU u64 counting hits: records emitted and lost alike, so that
    /// hits minus records delivered is exactly the number lost.
    pub hits: i32,
}

pub fn program(id: u16, args: &[Option<&BpfArg>], layout: &Layout, maps: Maps) -> Vec<Insn> {
    let mut b = Builder {
        insns: Vec::new(),
        to_exit: Vec::new(),
    };
    // R6 = the saved registers; R7 = this CPU's record; R8 = fault bits;
    // R9 = where the next string goes (the record's length so far).
    b.push(insn::mov(R6, R1));
    b.push(insn::store32_imm(R10, -4, 0));
    b.push(insn::mov(R2, R10));
    b.push(insn::add_imm(R2, -4));
    b.extend(insn::load_map(R1, maps.hits));
    b.push(insn::call(helper::MAP_LOOKUP_ELEM));
    b.jump_to_exit_if_zero(R0);
    b.push(insn::mov_imm(R1, 1));
    b.push(insn::atomic_add64(R0, 0, R1));
    b.push(insn::mov(R2, R10));
    b.push(insn::add_imm(R2, -4));
    b.extend(insn::load_map(R1, maps.scratch));
    b.push(insn::call(helper::MAP_LOOKUP_ELEM));
    b.jump_to_exit_if_zero(R0);
    b.push(insn::mov(R7, R0));
    b.push(insn::mov_imm(R8, 0));
    b.push(insn::mov_imm(R9, layout.strings_at as i32));
    b.push(insn::store64_imm(R7, 0, i32::from(id)));

    let comm_at = HEADER + 8 * args.len();
    b.push(insn::mov(R1, R7));
    b.push(insn::add_imm(R1, comm_at as i32));
    b.push(insn::mov_imm(R2, COMM_BYTES as i32));
    b.push(insn::call(helper::GET_CURRENT_COMM));
    b.push(insn::store64_imm(
        R7,
        COMM_LOC as i16,
        ((COMM_BYTES << 16) | comm_at) as i32,
    ));

    for (i, arg) in args.iter().enumerate() {
        let Some(arg) = arg else { continue };
        let slot = HEADER + 8 * i;
        let is_string = arg.kind == ValueKind::Str;
        // Integers and floats: the value into the slot. Strings: the
        // pointer into R3 (via the slot when it is held in memory).
        match &arg.location {
            Location::Register { reg, shift } => {
                b.load_saved(R3, *reg);
                if *shift > 0 {
                    b.push(insn::rsh_imm(R3, i32::from(*shift)));
                }
                if !is_string {
                    b.push(insn::store64(R7, slot as i16, R3));
                }
            }
            Location::Memory(address) => {
                b.address(address);
                b.read_user(slot, arg.bytes, i);
                if is_string {
                    b.push(insn::load64(R3, R7, slot as i16));
                }
            }
            Location::Constant(value) => b.extend(insn::load_imm64(R3, *value as u64)),
        }
        if is_string {
            // The text at R9; data_loc = length (with the NUL; 0 when
            // unreadable) << 16 | R9; R9 moves past it. The clamps let the
            // verifier bound R9 (it cannot know the helper's range).
            b.push(insn::mov(R1, R7));
            b.push(insn::add(R1, R9));
            b.push(insn::mov_imm(R2, STRING_BYTES as i32));
            b.push(insn::call(helper::PROBE_READ_USER_STR));
            b.push(insn::jump_if_sgt(R0, -1, 1));
            b.push(insn::mov_imm(R0, 0));
            b.push(insn::jump_if_le(R0, STRING_BYTES as i32, 1));
            b.push(insn::mov_imm(R0, STRING_BYTES as i32));
            b.push(insn::mov(R1, R0));
            b.push(insn::lsh_imm(R1, 16));
            b.push(insn::or(R1, R9));
            b.push(insn::store64(R7, slot as i16, R1));
            b.push(insn::add(R9, R0));
        }
    }
    b.push(insn::store32(R7, FAULTS, R8));
    b.push(insn::mov(R1, R6));
    b.extend(insn::load_map(R2, maps.output));
    // BPF_F_CURRENT_CPU: this CPU's slot.
    b.extend(insn::load_imm64(R3, 0xffff_ffff));
    b.push(insn::mov(R4, R7));
    // Only what was filled: the fixed part and the strings as read.
    b.push(insn::mov(R5, R9));
    b.push(insn::call(helper::PERF_EVENT_OUTPUT));
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int_arg() -> BpfArg {
        BpfArg {
            location: Location::Register {
                reg: Saved {
                    slot: 80,
                    low32: false,
                },
                shift: 0,
            },
            kind: ValueKind::Int {
                bytes: 8,
                signed: true,
            },
            bytes: 8,
        }
    }

    #[test]
    fn strings_follow_the_command_name_with_room_for_each() {
        let int = int_arg();
        let string = BpfArg {
            kind: ValueKind::Str,
            ..int_arg()
        };
        let l = layout(&[Some(&int), None, Some(&string), Some(&string)]).unwrap();
        let a = |i: usize| l.args[i].clone();
        assert_eq!(a(0).map(|f| (f.offset, f.data_loc)), Some((16, false)));
        assert!(a(1).is_none());
        assert_eq!(
            a(2).map(|f| (f.offset, f.size, f.data_loc)),
            Some((32, 4, true))
        );
        // Command name at 16 + 4*8 = 48; strings from 64, room for two.
        assert_eq!(l.strings_at, 64);
        assert_eq!(l.size, 64 + 2 * STRING_BYTES);
    }

    #[test]
    fn records_beyond_16_bit_offsets_are_refused() {
        let string = BpfArg {
            kind: ValueKind::Str,
            ..int_arg()
        };
        let many = vec![Some(&string); 16];
        let err = layout(&many).unwrap_err();
        assert!(err.contains("16 arguments"), "{err}");
        assert!(layout(&many[..12]).is_ok());
    }

    #[test]
    fn the_lookup_failure_jumps_to_the_exit() {
        let int = int_arg();
        let l = layout(&[Some(&int)]).unwrap();
        let maps = Maps {
            scratch: 3,
            output: 4,
            hits: 5,
        };
        let p = program(7, &[Some(&int)], &l, maps);
        // The last two instructions return 0, and both null checks land there.
        assert_eq!(p[p.len() - 1], insn::exit());
        assert_eq!(p[p.len() - 2], insn::mov_imm(R0, 0));
        for at in [7, 15] {
            assert_eq!(
                p[at],
                insn::jump_if_eq(R0, 0, (p.len() - 2 - at - 1) as i16)
            );
        }
    }
}
