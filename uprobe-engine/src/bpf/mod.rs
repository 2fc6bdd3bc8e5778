//! Fetching arguments with a BPF program where uprobe fetchargs cannot:
//! `disp(%base,%index,scale)` (fetchargs cannot add two registers), a
//! symbol plus a register in a position-independent object (fetchargs
//! cannot add the load address to a register), a string behind a 32-bit
//! pointer held in memory (fetchargs dereference 8 bytes).
//!
//! Such a probe keeps its tracefs uprobe event (which registers the uprobe,
//! raises its semaphore through `ref_ctr_offset` and scopes it to the traced
//! process), but its record is built by a program run on every hit: the
//! program reads every argument from the saved registers and user memory,
//! writes a record laid out like a tracefs one (so the same decoder reads
//! it) and emits it with `bpf_perf_event_output`; it returns 0 so the
//! tracefs event records nothing itself. The record carries the event's own
//! tracepoint id, which no other record can carry.

mod insn;
pub mod program;
pub mod sys;

use crate::fetchargs::{value_kind, Site, ValueKind};
use stapsdt_reader::{Arch, Arg, Memory, Operand, Register};

/// A register as saved at the hit: its byte offset in x86-64 `struct
/// pt_regs` (the layout for 32-bit tasks too), and whether the operand
/// names its 32-bit view (then the high half is not part of the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    pub slot: i16,
    pub low32: bool,
}

/// An address computed at the hit: base + (index << shift) + disp, plus the
/// run-time address of the probe (`ip`) for position-independent symbols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub base: Option<Saved>,
    pub index: Option<(Saved, u8)>,
    pub disp: i64,
    /// 32-bit code: the sum wraps at 4 GiB.
    pub wrap32: bool,
}

/// Where a value is at the hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// In a saved register, `shift` bits up (8 for `%ah`).
    Register { reg: Saved, shift: u8 },
    /// In user memory at an address.
    Memory(Address),
    /// A constant: only asked for as a string pointer.
    Constant(i64),
}

/// How a BPF program obtains one argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfArg {
    pub location: Location,
    pub kind: ValueKind,
    /// Bytes read at a memory location: the value's size, or for a string
    /// the size of the pointer held there.
    pub bytes: u8,
}

const IP: i16 = 128;
const SP: i16 = 152;

/// The offset of a canonical x86 register in `struct pt_regs`.
fn pt_regs_slot(canonical: &str) -> Option<i16> {
    Some(match canonical {
        "r15" => 0,
        "r14" => 8,
        "r13" => 16,
        "r12" => 24,
        "rbp" | "ebp" => 32,
        "rbx" | "ebx" => 40,
        "r11" => 48,
        "r10" => 56,
        "r9" => 64,
        "r8" => 72,
        "rax" | "eax" => 80,
        "rcx" | "ecx" => 88,
        "rdx" | "edx" => 96,
        "rsi" | "esi" => 104,
        "rdi" | "edi" => 112,
        "rip" | "eip" => IP,
        "rsp" | "esp" => SP,
        _ => return None,
    })
}

fn saved(register: &Register) -> Result<Saved, String> {
    let slot = pt_regs_slot(register.canonical).ok_or_else(|| {
        format!(
            "register %{} is not in the kernel's saved registers",
            register.name
        )
    })?;
    Ok(Saved {
        slot,
        low32: register.bits == 32,
    })
}

/// A whole saved register as an unsigned 64-bit value (function arguments
/// and return values), by its canonical name (`rdi`).
pub fn register_u64(canonical: &str) -> Option<BpfArg> {
    Some(BpfArg {
        location: Location::Register {
            reg: Saved {
                slot: pt_regs_slot(canonical)?,
                low32: false,
            },
            shift: 0,
        },
        kind: ValueKind::Int {
            bytes: 8,
            signed: false,
        },
        bytes: 8,
    })
}

/// How a BPF program reads `arg` at `site` (as the string it points to with
/// `as_string`), or why it cannot. Constants are not asked for: they need
/// no fetch at all.
pub fn locate(arg: &Arg, site: &Site, as_string: bool) -> Result<BpfArg, String> {
    if !matches!(site.arch, Arch::X86_64 | Arch::I386) {
        return Err(format!("fetching {} operands", site.arch.name()));
    }
    let wrap32 = site.arch == Arch::I386;
    let bytes = arg.size.clamp(1, 8);
    let kind = value_kind(arg, as_string);
    let location = match &arg.operand {
        Operand::Register { register } => {
            if as_string && register.shift != 0 {
                return Err(format!("%{} cannot hold a pointer", register.name));
            }
            Location::Register {
                reg: saved(register)?,
                shift: register.shift,
            }
        }
        Operand::Memory(memory) => Location::Memory(address(memory, site, wrap32)?),
        // A constant pointer (non-PIE): the string is read from there.
        Operand::Immediate { value } if as_string && site.fixed_addresses => {
            Location::Constant(*value)
        }
        Operand::Immediate { .. } if as_string => {
            return Err("a constant pointer in a position-independent object".into())
        }
        Operand::Immediate { .. } => return Err("a constant needs no fetch".into()),
        Operand::Unparsed { reason } => return Err(format!("unparsed operand ({reason})")),
    };
    Ok(BpfArg {
        location,
        kind,
        // A pointer in memory is as wide as the code's pointers.
        bytes: if as_string {
            if wrap32 {
                4
            } else {
                8
            }
        } else {
            bytes
        },
    })
}

fn address(memory: &Memory, site: &Site, wrap32: bool) -> Result<Address, String> {
    let mut base = memory.base.as_ref().map(saved).transpose()?;
    let index = match &memory.index {
        Some(index) => {
            let shift = match memory.scale {
                1 => 0,
                2 => 1,
                4 => 2,
                8 => 3,
                s => return Err(format!("scale {s} (x86 scales are 1, 2, 4 and 8)")),
            };
            Some((saved(index)?, shift))
        }
        None => None,
    };
    let mut disp = memory.disp;
    if let (Some(got), Some(address), Some(_)) = (memory.got_address, memory.symbol_address, base) {
        // `sym@GOTOFF(%ebx,...)`: the base register holds the GOT's run-time address.
        disp = address.wrapping_sub(got) as i64;
    } else if let Some(symbol) = &memory.symbol {
        let symbol_address = memory
            .symbol_address
            .ok_or_else(|| format!("symbol `{symbol}` is not in the object's symbol tables"))?;
        if base.is_some_and(|b| b.slot == IP) {
            // `sym(%rip)` names the symbol's address (as GDB and bpftrace read it).
            base = None;
        }
        if site.fixed_addresses {
            disp = symbol_address as i64;
        } else {
            // Position-independent: the probe's run-time address is in `ip`
            // at the hit, and the symbol is as far from it as at link time.
            if index.is_some() && base.is_some() {
                return Err(format!(
                    "symbol `{symbol}` plus two registers in a position-independent \
                     object (the program adds at most two registers and the load address)"
                ));
            }
            let from_probe = symbol_address.wrapping_sub(site.address) as i64;
            return Ok(Address {
                index: index.or(base.map(|b| (b, 0))),
                base: Some(Saved {
                    slot: IP,
                    low32: wrap32,
                }),
                disp: from_probe.wrapping_sub(site.ip_adjust),
                wrap32,
            });
        }
    } else if base.is_some_and(|b| b.slot == IP) {
        return Err("%rip-relative operand without a symbol".into());
    } else if base.is_none() && index.is_none() && !site.fixed_addresses {
        return Err("an absolute address in a position-independent object".into());
    }
    if base.is_some_and(|b| b.slot == SP) {
        disp = disp.wrapping_add(site.rsp_adjust);
    }
    Ok(Address {
        base,
        index,
        disp,
        wrap32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stapsdt_reader::parse_args;

    fn site() -> Site {
        Site::example()
    }

    fn located(spec: &str, site: &Site) -> Result<BpfArg, String> {
        locate(&parse_args(spec, site.arch)[0], site, false)
    }

    fn memory(spec: &str, site: &Site) -> Address {
        match located(spec, site).unwrap().location {
            Location::Memory(a) => a,
            other => panic!("{spec}: {other:?}"),
        }
    }

    #[test]
    fn base_index_scale() {
        let a = memory("-4@-8(%rcx,%r8,4)", &site());
        assert_eq!(
            a.base,
            Some(Saved {
                slot: 88,
                low32: false
            })
        );
        assert_eq!(
            a.index,
            Some((
                Saved {
                    slot: 72,
                    low32: false
                },
                2
            ))
        );
        assert_eq!(a.disp, -8);
        let b = memory("8@(,%rax,8)", &site());
        assert_eq!((b.base, b.index.map(|i| i.1)), (None, Some(3)));
        let mut i386 = site();
        i386.arch = Arch::I386;
        let c = memory("4@4(%eax,%ebx,2)", &i386);
        assert!(c.wrap32 && c.base.unwrap().low32 && c.index.unwrap().0.low32);
    }

    #[test]
    fn symbols_are_found_from_the_probe_address() {
        let mut args = parse_args("8@table(%rax)", Arch::X86_64);
        let Operand::Memory(m) = &mut args[0].operand else {
            panic!()
        };
        m.symbol_address = Some(0x4040);
        let mut at_nop5 = site();
        at_nop5.ip_adjust = 6;
        let Location::Memory(a) = locate(&args[0], &at_nop5, false).unwrap().location else {
            panic!()
        };
        // ip + rax + (0x4040 - 0x1064 - 6)
        assert_eq!(a.base.unwrap().slot, IP);
        assert_eq!(
            a.index,
            Some((
                Saved {
                    slot: 80,
                    low32: false
                },
                0
            ))
        );
        assert_eq!(a.disp, 0x4040 - 0x1064 - 6);
        let mut fixed = site();
        fixed.fixed_addresses = true;
        let Location::Memory(a) = locate(&args[0], &fixed, false).unwrap().location else {
            panic!()
        };
        assert_eq!((a.base.unwrap().slot, a.disp), (80, 0x4040));
    }

    #[test]
    fn what_cannot_be_located_says_why() {
        assert!(located("8@%xmm0", &site()).unwrap_err().contains("xmm0"));
        assert!(located("-4@$5", &site()).unwrap_err().contains("constant"));
        assert!(located("4@0x1234", &site())
            .unwrap_err()
            .contains("position-independent"));
        let mut at_nop5 = site();
        at_nop5.rsp_adjust = 128;
        assert_eq!(memory("4@-20(%rsp)", &at_nop5).disp, 108);
    }
}
