//! Reader operands → uprobe fetchargs, so that every argument is read by the
//! kernel at the moment of the hit.
//!
//! What the kernel's fetcharg language can express (x86-64): a register
//! (`%ax`), a bit field of one (`%ax:b8@8/64` for `%ah`), memory at a
//! register plus a constant (`+16(%bp)`, nested for strings), memory at an
//! address relative to the probed object (`@+OFFSET`), an absolute address
//! (`@ADDR`, for non-PIE executables). It cannot add two registers, so
//! `disp(%base,%index,scale)` and the like are fetched by a BPF program
//! instead ([`crate::bpf`]); what neither can read is reported as
//! unfetchable rather than read wrongly. Constants need no fetch at all:
//! they are decoded here.

use crate::bpf::{self, BpfArg};
use stapsdt_reader::{Arch, Arg, Memory, Operand, Register};

/// How a value is to be read out of the record and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Int {
        bytes: u8,
        signed: bool,
    },
    /// IEEE float of this many bytes, fetched as its bit pattern.
    Float {
        bytes: u8,
    },
    /// A NUL-terminated string the argument points to.
    Str,
}

/// How one argument is obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// By the kernel: `fetcharg:type` for the uprobe definition.
    Kernel { spec: String, kind: ValueKind },
    /// By a BPF program run at the hit (fetchargs cannot express it).
    Bpf(BpfArg),
    /// A constant operand: known without fetching.
    Constant(i64),
    /// The kernel cannot fetch it; the reason names the operand.
    Unsupported(String),
}

/// Facts about the probe site the fetchargs depend on.
#[derive(Debug, Clone, Copy)]
pub struct Site {
    pub arch: Arch,
    /// Link-time address of the probe.
    pub address: u64,
    /// File offset of the probe.
    pub file_offset: u64,
    /// A non-PIE executable: link-time addresses are run-time addresses.
    pub fixed_addresses: bool,
    /// Bytes to add to `%rsp`-relative displacements: at a cheap site's
    /// 5-byte nop `%rsp` is 128 below its value at the note's pc.
    pub rsp_adjust: i64,
    /// Bytes from the note's pc to the attached instruction (a cheap
    /// site's 5-byte nop): what `%ip` holds at the hit, less the pc.
    pub ip_adjust: i64,
}

#[cfg(test)]
impl Site {
    /// A PIE's probe at 0x1064, for unit tests.
    pub(crate) fn example() -> Site {
        Site {
            arch: Arch::X86_64,
            address: 0x1064,
            file_offset: 0x1064,
            fixed_addresses: false,
            rsp_adjust: 0,
            ip_adjust: 0,
        }
    }
}

/// The fetch for `arg` at `site`; with `as_string`, the string it points to.
/// Uprobe fetchargs where they can express it, else a BPF program.
pub fn fetch(arg: &Arg, site: &Site, as_string: bool) -> Fetch {
    match kernel_fetch(arg, site, as_string) {
        Fetch::Unsupported(why) => match bpf::locate(arg, site, as_string) {
            Ok(located) => Fetch::Bpf(located),
            Err(bpf_why) if why == unsupported(arg, &bpf_why) => Fetch::Unsupported(why),
            Err(bpf_why) => Fetch::Unsupported(format!("{why}; nor by a BPF program: {bpf_why}")),
        },
        fetch => fetch,
    }
}

/// The reason an argument is not fetched, naming it.
fn unsupported(arg: &Arg, why: &str) -> String {
    format!("`{}`: {why}", arg.raw)
}

/// How `arg`'s value is delivered: as the string it points to, a float's
/// bits, or an integer of its size and sign.
pub(crate) fn value_kind(arg: &Arg, as_string: bool) -> ValueKind {
    let bytes = arg.size.clamp(1, 8);
    if as_string {
        ValueKind::Str
    } else if arg.float {
        ValueKind::Float { bytes }
    } else {
        ValueKind::Int {
            bytes,
            signed: arg.signed,
        }
    }
}

/// The fetch for `arg` by uprobe fetchargs alone.
pub fn kernel_fetch(arg: &Arg, site: &Site, as_string: bool) -> Fetch {
    if !matches!(site.arch, Arch::X86_64 | Arch::I386) {
        return Fetch::Unsupported(unsupported(
            arg,
            &format!("fetching {} operands is not implemented", site.arch.name()),
        ));
    }
    let bytes = arg.size.clamp(1, 8);
    let kind = value_kind(arg, as_string);
    let location = match &arg.operand {
        Operand::Immediate { value } if !as_string => return Fetch::Constant(*value),
        Operand::Immediate { value } if site.fixed_addresses => Ok(format!("@0x{value:x}")),
        Operand::Immediate { .. } => {
            Err("a constant pointer in a position-independent object".into())
        }
        Operand::Register { register } => register_fetch(register, bytes, &kind),
        // The kernel dereferences an address it fetched as a full 64-bit
        // word: a 4-byte pointer read from memory comes with 4 bytes of
        // whatever follows it.
        Operand::Memory(_) if as_string && site.arch == Arch::I386 => {
            Err("a 32-bit pointer held in memory: the kernel's dereference reads 8 bytes".into())
        }
        Operand::Memory(memory) => memory_fetch(memory, site),
        Operand::Unparsed { reason } => Err(format!("unparsed operand ({reason})")),
    };
    let location = match location {
        Ok(l) => l,
        Err(why) => return Fetch::Unsupported(unsupported(arg, &why)),
    };
    let spec = match kind {
        ValueKind::Str => format!("+0({}):string", strip_type(&location)),
        ValueKind::Int { bytes, signed } if !location.contains(':') => {
            format!("{location}:{}{}", if signed { 's' } else { 'u' }, bytes * 8)
        }
        ValueKind::Float { bytes } => format!("{location}:x{}", bytes * 8),
        ValueKind::Int { .. } => location,
    };
    Fetch::Kernel { spec, kind }
}

/// A bit-field fetch carries its own type; a string dereference needs the bare location.
fn strip_type(location: &str) -> &str {
    location.split(':').next().unwrap_or(location)
}

/// The kernel's name for a canonical register (pt_regs field on x86-64).
fn kernel_register(canonical: &str) -> Option<&'static str> {
    Some(match canonical {
        "rax" | "eax" => "%ax",
        "rbx" | "ebx" => "%bx",
        "rcx" | "ecx" => "%cx",
        "rdx" | "edx" => "%dx",
        "rsi" | "esi" => "%si",
        "rdi" | "edi" => "%di",
        "rbp" | "ebp" => "%bp",
        "rsp" | "esp" => "%sp",
        "rip" | "eip" => "%ip",
        "r8" => "%r8",
        "r9" => "%r9",
        "r10" => "%r10",
        "r11" => "%r11",
        "r12" => "%r12",
        "r13" => "%r13",
        "r14" => "%r14",
        "r15" => "%r15",
        _ => return None,
    })
}

fn register_fetch(register: &Register, bytes: u8, kind: &ValueKind) -> Result<String, String> {
    let name = kernel_register(register.canonical).ok_or_else(|| {
        format!(
            "register %{} is not in the kernel's saved registers",
            register.name
        )
    })?;
    if register.shift == 0 {
        return Ok(name.to_string());
    }
    // %ah and friends: the kernel extracts the bits (unsigned; sign-extended when decoded).
    if *kind == ValueKind::Str {
        return Err(format!("%{} cannot hold a pointer", register.name));
    }
    Ok(format!(
        "{name}:b{}@{}/64",
        register.bits.min(u16::from(bytes) * 8),
        register.shift
    ))
}

fn memory_fetch(memory: &Memory, site: &Site) -> Result<String, String> {
    if memory.index.is_some() {
        return Err(
            "base+index*scale addressing: uprobe fetchargs cannot add two registers".into(),
        );
    }
    let base = memory.base.as_ref().map(|b| b.canonical);
    if let (Some(reg), Some(got), Some(address)) = (base, memory.got_address, memory.symbol_address)
    {
        // `sym@GOTOFF(%ebx)`: the register holds the GOT's run-time address.
        let name = kernel_register(reg).ok_or_else(|| format!("register {reg} unsupported"))?;
        return Ok(format!("{:+}({name})", address.wrapping_sub(got) as i64));
    }
    match (base, &memory.symbol) {
        (Some("rip" | "eip"), Some(symbol)) => {
            let address = memory
                .symbol_address
                .ok_or_else(|| format!("symbol `{symbol}` is not in the object's symbol tables"))?;
            // `@+X`: the kernel reads at load_bias + X, where it finds the
            // load bias from the probe: vaddr(probe) - offset(probe).
            let bias_free = address
                .wrapping_sub(site.address)
                .wrapping_add(site.file_offset);
            Ok(format!("@+0x{bias_free:x}"))
        }
        // In a non-PIE executable the symbol's address is a constant displacement.
        (Some(reg), Some(symbol)) if site.fixed_addresses => {
            let address = memory
                .symbol_address
                .ok_or_else(|| format!("symbol `{symbol}` is not in the object's symbol tables"))?;
            let name = kernel_register(reg).ok_or_else(|| format!("register {reg} unsupported"))?;
            let adjust = if name == "%sp" { site.rsp_adjust } else { 0 };
            Ok(format!(
                "+{}({name})",
                (address as i64).wrapping_add(adjust)
            ))
        }
        (Some(_), Some(symbol)) => Err(format!(
            "symbol `{symbol}` plus a register in a position-independent object: \
             fetchargs cannot add the load address"
        )),
        (Some(reg), None) => {
            let name = kernel_register(reg).ok_or_else(|| format!("register {reg} unsupported"))?;
            if name == "%ip" {
                return Err("%rip-relative operand without a symbol".into());
            }
            let adjust = if name == "%sp" { site.rsp_adjust } else { 0 };
            Ok(format!("{:+}({name})", memory.disp.wrapping_add(adjust)))
        }
        (None, None) if site.fixed_addresses => Ok(format!("@0x{:x}", memory.disp)),
        (None, Some(symbol)) if site.fixed_addresses => memory
            .symbol_address
            .map(|a| format!("@0x{a:x}"))
            .ok_or_else(|| format!("symbol `{symbol}` is not in the object's symbol tables")),
        (None, _) => Err("an absolute address in a position-independent object".into()),
    }
}

/// The fetcharg names the kernel gives a function's arguments at entry
/// (System V x86-64 calling convention) and its return value.
pub const ENTRY_ARGS: [&str; 6] = ["%di", "%si", "%dx", "%cx", "%r8", "%r9"];
pub const RETURN_VALUE: &str = "$retval";
/// The same registers by their canonical names (for a BPF program): at a
/// return, the value is in `rax`.
pub const ENTRY_REGISTERS: [&str; 6] = ["rdi", "rsi", "rdx", "rcx", "r8", "r9"];
pub const RETURN_REGISTER: &str = "rax";

#[cfg(test)]
mod tests {
    use super::*;
    use stapsdt_reader::parse_args;

    fn site() -> Site {
        Site::example()
    }

    fn one(spec: &str, as_string: bool) -> Fetch {
        let args = parse_args(spec, Arch::X86_64);
        fetch(&args[0], &site(), as_string)
    }

    fn kernel(spec: &str) -> String {
        match one(spec, false) {
            Fetch::Kernel { spec, .. } => spec,
            other => panic!("{spec}: {other:?}"),
        }
    }

    #[test]
    fn registers_and_views() {
        assert_eq!(kernel("-8@%rbx"), "%bx:s64");
        assert_eq!(kernel("4@%eax"), "%ax:u32");
        assert_eq!(kernel("-1@%dil"), "%di:s8");
        assert_eq!(kernel("1@%ah"), "%ax:b8@8/64");
        assert_eq!(kernel("-4@%r12d"), "%r12:s32");
    }

    #[test]
    fn memory_forms() {
        assert_eq!(kernel("8@16(%rbp)"), "+16(%bp):u64");
        assert_eq!(kernel("-4@-20(%rsp)"), "-20(%sp):s32");
        assert_eq!(kernel("4@(%rdi)"), "+0(%di):u32");
        assert!(matches!(one("8@8(%rax,%rbx,8)", false), Fetch::Bpf(_)));
        assert_eq!(one("-4@$-56", false), Fetch::Constant(-56));
        assert!(matches!(one("8@%xmm0", false), Fetch::Unsupported(_)));
    }

    #[test]
    fn rsp_operands_move_with_a_cheap_site() {
        let at_nop5 = Site {
            rsp_adjust: 128,
            ..site()
        };
        let args = parse_args("-4@-20(%rsp) 8@8(%rbp)", Arch::X86_64);
        let spec = |i: usize| match fetch(&args[i], &at_nop5, false) {
            Fetch::Kernel { spec, .. } => spec,
            other => panic!("{other:?}"),
        };
        assert_eq!(spec(0), "+108(%sp):s32");
        assert_eq!(spec(1), "+8(%bp):u64");
    }

    #[test]
    fn strings_dereference_the_pointer() {
        match one("8@%rbp", true) {
            Fetch::Kernel { spec, kind } => {
                assert_eq!(spec, "+0(%bp):string");
                assert_eq!(kind, ValueKind::Str);
            }
            other => panic!("{other:?}"),
        }
        match one("8@8(%rsp)", true) {
            Fetch::Kernel { spec, .. } => assert_eq!(spec, "+0(+8(%sp)):string"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rip_relative_symbols_are_relative_to_the_probe() {
        let mut args = parse_args("-4@g_val(%rip)", Arch::X86_64);
        let Operand::Memory(m) = &mut args[0].operand else {
            panic!()
        };
        m.symbol_address = Some(0x4018);
        let mut s = site();
        // A probe at vaddr 0x1064 stored at file offset 0x64: bias-free 0x4018 - 0x1000.
        s.file_offset = 0x64;
        assert_eq!(
            fetch(&args[0], &s, false),
            Fetch::Kernel {
                spec: "@+0x3018:s32".into(),
                kind: ValueKind::Int {
                    bytes: 4,
                    signed: true
                }
            }
        );
        let mut indexed = parse_args("8@table(%rax)", Arch::X86_64);
        let Operand::Memory(m) = &mut indexed[0].operand else {
            panic!()
        };
        m.symbol_address = Some(0x404040);
        assert!(matches!(fetch(&indexed[0], &s, false), Fetch::Bpf(_)));
        s.fixed_addresses = true;
        assert!(
            matches!(fetch(&indexed[0], &s, false), Fetch::Kernel { spec, .. } if spec == "+4210752(%ax):u64")
        );
        let on_stack = parse_args("4@12(%esp)", Arch::I386);
        let mut s32 = s;
        s32.arch = Arch::I386;
        assert!(
            matches!(fetch(&on_stack[0], &s32, false), Fetch::Kernel { spec, .. } if spec == "+12(%sp):u32")
        );
        assert!(matches!(fetch(&on_stack[0], &s32, true), Fetch::Bpf(_)));
        let unresolved = parse_args("-4@nowhere(%rip)", Arch::X86_64);
        assert!(
            matches!(fetch(&unresolved[0], &s, false), Fetch::Unsupported(r) if r.contains("nowhere"))
        );
    }
}
