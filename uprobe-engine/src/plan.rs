//! The plan: objects and selectors become sites to attach to, each with its
//! file offset, semaphore offset, and every argument as a typed location.
//! Pure: no kernel, no root; what the lowering (`crate::lower`) turns into
//! BPF instructions, and the one place an operand becomes a location.

use stapsdt_reader::{cheap_site, Arch, Arg, ArgType, Memory, Object, Operand, Register};
use std::path::{Path, PathBuf};

/// An x86-64 register as the kernel saves it at a uprobe hit (`struct
/// pt_regs`, also for 32-bit tasks), named by its DWARF number's register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum X86Reg {
    Rax,
    Rdx,
    Rcx,
    Rbx,
    Rsi,
    Rdi,
    Rbp,
    Rsp,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
    Rip,
}

impl X86Reg {
    /// By DWARF register number (System V x86-64 ABI; 16 is the return
    /// address column, which is `rip` here).
    pub fn from_dwarf(n: u16) -> Option<X86Reg> {
        use X86Reg::*;
        Some(match n {
            0 => Rax,
            1 => Rdx,
            2 => Rcx,
            3 => Rbx,
            4 => Rsi,
            5 => Rdi,
            6 => Rbp,
            7 => Rsp,
            8 => R8,
            9 => R9,
            10 => R10,
            11 => R11,
            12 => R12,
            13 => R13,
            14 => R14,
            15 => R15,
            16 => Rip,
            _ => return None,
        })
    }

    /// By the reader's canonical name (`rax`; i386 names too).
    pub fn from_canonical(name: &str) -> Option<X86Reg> {
        use X86Reg::*;
        Some(match name {
            "rax" | "eax" => Rax,
            "rdx" | "edx" => Rdx,
            "rcx" | "ecx" => Rcx,
            "rbx" | "ebx" => Rbx,
            "rsi" | "esi" => Rsi,
            "rdi" | "edi" => Rdi,
            "rbp" | "ebp" => Rbp,
            "rsp" | "esp" => Rsp,
            "r8" => R8,
            "r9" => R9,
            "r10" => R10,
            "r11" => R11,
            "r12" => R12,
            "r13" => R13,
            "r14" => R14,
            "r15" => R15,
            "rip" | "eip" => Rip,
            _ => return None,
        })
    }

    /// Byte offset of the register in `struct pt_regs`.
    pub fn pt_regs_offset(self) -> i16 {
        use X86Reg::*;
        match self {
            R15 => 0,
            R14 => 8,
            R13 => 16,
            R12 => 24,
            Rbp => 32,
            Rbx => 40,
            R11 => 48,
            R10 => 56,
            R9 => 64,
            R8 => 72,
            Rax => 80,
            Rcx => 88,
            Rdx => 96,
            Rsi => 104,
            Rdi => 112,
            Rip => 128,
            Rsp => 152,
        }
    }
}

/// A saved register, and whether the operand names its 32-bit view (then
/// the high half is not part of the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Saved {
    pub reg: X86Reg,
    pub low32: bool,
}

/// An address computed at the hit: base + (index << shift) + disp.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub base: Option<Saved>,
    pub index: Option<(Saved, u8)>,
    pub disp: i64,
    /// 32-bit code: the sum wraps at 4 GiB.
    pub wrap32: bool,
}

/// Where a value is at the hit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// In a saved register, `shift` bits up (8 for `%ah`).
    Register { reg: Saved, shift: u8 },
    /// In user memory: `bytes` read at an address.
    Memory { address: Address, bytes: u8 },
    /// A constant pointer (a string at a fixed address).
    Pointer(i64),
}

/// How a value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    Int {
        bytes: u8,
        signed: bool,
    },
    /// IEEE float of this many bytes, fetched as its bit pattern.
    Float {
        bytes: u8,
    },
    /// The NUL-terminated string the value points to.
    Str,
    /// The string the value points to, as long as argument `len_arg` says
    /// (a pointer+length pair, as Rust's `&str`).
    StrN {
        len_arg: usize,
    },
}

/// How one argument is obtained.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Fetch {
    /// Read at the hit from registers or memory.
    At(Location),
    /// A constant operand: known without fetching.
    Constant(i64),
    /// Not fetched: the caller did not ask for it.
    NotRequested,
    /// Cannot be fetched; the reason names the operand.
    Unavailable(String),
}

/// One argument of a site.
#[derive(Debug, Clone)]
pub struct ArgInfo {
    /// The spec as written in the note (`-4@%eax`), or the register for functions.
    pub raw: String,
    pub kind: ValueKind,
    pub fetch: Fetch,
}

/// One site to attach to.
#[derive(Debug, Clone)]
pub struct ProbeInfo {
    /// Position in the session's sites (for per-site tables of callers).
    pub index: usize,
    /// `provider:name` for SDT probes, `SYMBOL` or `SYMBOL%return` for functions.
    pub label: String,
    pub path: PathBuf,
    /// File offset of the probed instruction.
    pub offset: u64,
    /// File offset of the semaphore the kernel raises while attached.
    pub semaphore_offset: Option<u64>,
    /// Attached at a cheap site's 5-byte nop rather than at the note's pc.
    pub cheap_site: bool,
    pub retprobe: bool,
    pub args: Vec<ArgInfo>,
}

/// What the caller wants fetched.
#[derive(Debug, Clone, Default)]
pub struct ArgRequest {
    /// Arguments (0-based) to fetch as the NUL-terminated strings they point to.
    pub strings: Vec<usize>,
    /// Fetch only these arguments (0-based); `None`: all.
    pub only: Option<Vec<usize>>,
    /// (string, length): argument `string` points to as many bytes as
    /// argument `length` says (no NUL), as HotSpot's class and method names.
    pub counted: Vec<(usize, usize)>,
}

impl ArgRequest {
    fn wants(&self, index: usize) -> bool {
        self.only.as_ref().is_none_or(|only| only.contains(&index))
    }
}

/// Facts about the probe site that locations depend on.
#[derive(Debug, Clone, Copy)]
pub struct Site {
    pub arch: Arch,
    /// Link-time address of the probe.
    pub address: u64,
    /// A non-PIE executable: link-time addresses are run-time addresses.
    pub fixed_addresses: bool,
    /// Bytes to add to `%rsp`-relative displacements: at a cheap site's
    /// 5-byte nop `%rsp` is 128 below its value at the note's pc.
    pub rsp_adjust: i64,
    /// Bytes from the note's pc to the attached instruction: what `%ip`
    /// holds at the hit, less the pc.
    pub ip_adjust: i64,
}

#[cfg(test)]
impl Site {
    /// A PIE's probe at 0x1064, for unit tests.
    pub(crate) fn example() -> Site {
        Site {
            arch: Arch::X86_64,
            address: 0x1064,
            fixed_addresses: false,
            rsp_adjust: 0,
            ip_adjust: 0,
        }
    }
}

/// Every location of the probes of `objects` that `wanted(provider, name)`.
pub fn sdt_sites(
    objects: &[Object],
    wanted: impl Fn(&str, &str) -> bool,
    request: &ArgRequest,
) -> Vec<ProbeInfo> {
    let mut out = Vec::new();
    for object in objects {
        let fixed = object.elf_type == "exec";
        // Only x86-64 objects can hold cheap sites; their code is read
        // here, at attach time, never while listing.
        let code = (object.arch == Arch::X86_64)
            .then(|| std::fs::File::open(object.open_path()).ok())
            .flatten();
        for probe in object
            .probes
            .iter()
            .filter(|p| wanted(&p.provider, &p.name))
        {
            for location in &probe.locations {
                let Some(file_offset) = location.file_offset else {
                    continue;
                };
                let cheap = code.as_ref().is_some_and(|file| {
                    cheap_site::file_has_cheap_site(file, file_offset)
                        && !location.args.iter().any(reads_rsp_itself)
                });
                let site = Site {
                    arch: object.arch,
                    address: location.address,
                    fixed_addresses: fixed,
                    rsp_adjust: if cheap { cheap_site::RSP_ADJUST } else { 0 },
                    ip_adjust: if cheap {
                        cheap_site::NOP5_OFFSET as i64
                    } else {
                        0
                    },
                };
                out.push(ProbeInfo {
                    index: 0,
                    label: format!("{}:{}", probe.provider, probe.name),
                    path: PathBuf::from(object.open_path()),
                    offset: file_offset + if cheap { cheap_site::NOP5_OFFSET } else { 0 },
                    semaphore_offset: location.semaphore.as_ref().and_then(|s| s.file_offset),
                    retprobe: false,
                    cheap_site: cheap,
                    args: plan_args(&location.args, &site, request, probe.types.as_deref()),
                });
            }
        }
    }
    out
}

/// Each argument's kind and location. `types`, when the object says what
/// its arguments are (a types note, or a known provider), makes strings
/// of string arguments without being asked; `--str` still makes any
/// argument a string.
pub fn plan_args(
    args: &[Arg],
    site: &Site,
    request: &ArgRequest,
    types: Option<&[ArgType]>,
) -> Vec<ArgInfo> {
    args.iter()
        .enumerate()
        .map(|(i, arg)| {
            let declared = types.and_then(|t| t.get(i)).copied();
            let counted = request
                .counted
                .iter()
                .find(|(s, l)| *s == i && *l < args.len())
                .map(|(_, l)| *l);
            let as_string = request.strings.contains(&i)
                || counted.is_some()
                || matches!(declared, Some(ArgType::Str | ArgType::StrPtr));
            let kind = match declared {
                _ if counted.is_some() => ValueKind::StrN {
                    len_arg: counted.unwrap_or(0),
                },
                Some(ArgType::StrPtr) if i + 1 < args.len() => ValueKind::StrN { len_arg: i + 1 },
                Some(ArgType::Float) if !as_string => ValueKind::Float {
                    bytes: arg.size.clamp(1, 8),
                },
                _ => value_kind(arg, as_string),
            };
            let fetch = if request.wants(i) {
                locate(arg, site, as_string)
            } else {
                Fetch::NotRequested
            };
            ArgInfo {
                raw: arg.raw.clone(),
                kind,
                fetch,
            }
        })
        .collect()
}

/// The argument registers of the System V x86-64 calling convention, and
/// the return value's.
const ENTRY_REGISTERS: [(&str, X86Reg); 6] = [
    ("%di", X86Reg::Rdi),
    ("%si", X86Reg::Rsi),
    ("%dx", X86Reg::Rdx),
    ("%cx", X86Reg::Rcx),
    ("%r8", X86Reg::R8),
    ("%r9", X86Reg::R9),
];

/// A function's entry (its six argument registers) or return (its value).
pub fn function_site(
    file: &Path,
    symbol: &stapsdt_reader::FunctionSymbol,
    retprobe: bool,
    request: &ArgRequest,
) -> ProbeInfo {
    let registers: &[(&str, X86Reg)] = if retprobe {
        &[("retval", X86Reg::Rax)]
    } else {
        &ENTRY_REGISTERS
    };
    let args = registers
        .iter()
        .enumerate()
        .map(|(i, (raw, reg))| ArgInfo {
            raw: raw.to_string(),
            kind: if request.strings.contains(&i) {
                ValueKind::Str
            } else {
                ValueKind::Int {
                    bytes: 8,
                    signed: false,
                }
            },
            fetch: if request.wants(i) {
                Fetch::At(Location::Register {
                    reg: Saved {
                        reg: *reg,
                        low32: false,
                    },
                    shift: 0,
                })
            } else {
                Fetch::NotRequested
            },
        })
        .collect();
    ProbeInfo {
        index: 0,
        label: if retprobe {
            format!("{}%return", symbol.name)
        } else {
            symbol.name.clone()
        },
        path: file.to_path_buf(),
        offset: symbol.file_offset,
        semaphore_offset: None,
        retprobe,
        cheap_site: false,
        args,
    }
}

/// How `arg`'s value is delivered: as the string it points to, a float's
/// bits, or an integer of its size and sign.
pub fn value_kind(arg: &Arg, as_string: bool) -> ValueKind {
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

fn saved(register: &Register) -> Result<Saved, String> {
    let reg = X86Reg::from_canonical(register.canonical).ok_or_else(|| {
        format!(
            "register %{} is not in the kernel's saved registers",
            register.name
        )
    })?;
    Ok(Saved {
        reg,
        low32: register.bits == 32,
    })
}

/// How `arg` is read at `site` (as the string it points to with
/// `as_string`), or why it cannot be.
pub fn locate(arg: &Arg, site: &Site, as_string: bool) -> Fetch {
    match try_locate(arg, site, as_string) {
        Ok(fetch) => fetch,
        Err(why) => Fetch::Unavailable(format!("`{}`: {why}", arg.raw)),
    }
}

fn try_locate(arg: &Arg, site: &Site, as_string: bool) -> Result<Fetch, String> {
    if !matches!(site.arch, Arch::X86_64 | Arch::I386) {
        return Err(format!(
            "fetching {} operands is not implemented",
            site.arch.name()
        ));
    }
    let wrap32 = site.arch == Arch::I386;
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
        Operand::Memory(memory) => Location::Memory {
            address: address(memory, site, wrap32)?,
            // A pointer in memory is as wide as the code's pointers.
            bytes: match (as_string, wrap32) {
                (true, true) => 4,
                (true, false) => 8,
                (false, _) => arg.size.clamp(1, 8),
            },
        },
        // A constant pointer (non-PIE): the string is read from there.
        Operand::Immediate { value } if as_string && site.fixed_addresses => {
            Location::Pointer(*value)
        }
        Operand::Immediate { .. } if as_string => {
            return Err("a constant pointer in a position-independent object".into())
        }
        Operand::Immediate { value } => return Ok(Fetch::Constant(*value)),
        Operand::Unparsed { reason } => return Err(format!("unparsed operand ({reason})")),
    };
    Ok(Fetch::At(location))
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
    let is_ip = |b: Option<Saved>| b.is_some_and(|b| b.reg == X86Reg::Rip);
    let mut disp = memory.disp;
    if let (Some(got), Some(address), Some(_)) = (memory.got_address, memory.symbol_address, base) {
        // `sym@GOTOFF(%ebx,...)`: the base register holds the GOT's run-time address.
        disp = address.wrapping_sub(got) as i64;
    } else if let Some(symbol) = &memory.symbol {
        let symbol_address = memory
            .symbol_address
            .ok_or_else(|| format!("symbol `{symbol}` is not in the object's symbol tables"))?;
        if is_ip(base) {
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
                    reg: X86Reg::Rip,
                    low32: wrap32,
                }),
                disp: from_probe.wrapping_sub(site.ip_adjust),
                wrap32,
            });
        }
    } else if is_ip(base) {
        return Err("%rip-relative operand without a symbol".into());
    } else if base.is_none() && index.is_none() && !site.fixed_addresses {
        return Err("an absolute address in a position-independent object".into());
    }
    if base.is_some_and(|b| b.reg == X86Reg::Rsp) {
        disp = disp.wrapping_add(site.rsp_adjust);
    }
    Ok(Address {
        base,
        index,
        disp,
        wrap32,
    })
}

/// An argument that is `%rsp` itself (not memory relative to it): at a cheap
/// site's 5-byte nop its value differs by 128, so such a site is probed at
/// its pc instead.
fn reads_rsp_itself(arg: &Arg) -> bool {
    matches!(&arg.operand, Operand::Register { register } if register.canonical == "rsp")
}

#[cfg(test)]
mod tests {
    use super::*;
    use stapsdt_reader::parse_args;

    fn located(spec: &str, site: &Site) -> Fetch {
        locate(&parse_args(spec, site.arch)[0], site, false)
    }

    fn memory(spec: &str, site: &Site) -> Address {
        match located(spec, site) {
            Fetch::At(Location::Memory { address, .. }) => address,
            other => panic!("{spec}: {other:?}"),
        }
    }

    fn reg(reg: X86Reg) -> Saved {
        Saved { reg, low32: false }
    }

    #[test]
    fn registers_are_typed_by_dwarf_number_and_name_alike() {
        for n in 0..=16 {
            let r = X86Reg::from_dwarf(n).unwrap();
            let slot = r.pt_regs_offset();
            assert!(slot % 8 == 0 && slot <= 152, "{r:?}");
        }
        let args = parse_args("-4@%r12d 1@%ah", Arch::X86_64);
        assert_eq!(
            locate(&args[0], &Site::example(), false),
            Fetch::At(Location::Register {
                reg: Saved {
                    reg: X86Reg::from_dwarf(12).unwrap(),
                    low32: true
                },
                shift: 0
            })
        );
        assert!(matches!(
            locate(&args[1], &Site::example(), false),
            Fetch::At(Location::Register { shift: 8, .. })
        ));
    }

    #[test]
    fn base_index_scale() {
        let a = memory("-4@-8(%rcx,%r8,4)", &Site::example());
        assert_eq!(a.base, Some(reg(X86Reg::Rcx)));
        assert_eq!(a.index, Some((reg(X86Reg::R8), 2)));
        assert_eq!(a.disp, -8);
        let b = memory("8@(,%rax,8)", &Site::example());
        assert_eq!((b.base, b.index.map(|i| i.1)), (None, Some(3)));
        let mut i386 = Site::example();
        i386.arch = Arch::I386;
        let c = memory("4@4(%eax,%ebx,2)", &i386);
        assert!(c.wrap32 && c.base.unwrap().low32 && c.index.unwrap().0.low32);
    }

    #[test]
    fn symbols_are_found_from_the_probe_address() {
        let mut args = parse_args("8@table(%rax) -4@g(%rip)", Arch::X86_64);
        for arg in &mut args {
            let Operand::Memory(m) = &mut arg.operand else {
                panic!()
            };
            m.symbol_address = Some(0x4040);
        }
        let mut at_nop5 = Site::example();
        at_nop5.ip_adjust = 6;
        let Fetch::At(Location::Memory { address: a, .. }) = locate(&args[0], &at_nop5, false)
        else {
            panic!()
        };
        // ip + rax + (0x4040 - 0x1064 - 6)
        assert_eq!(a.base.unwrap().reg, X86Reg::Rip);
        assert_eq!(a.index, Some((reg(X86Reg::Rax), 0)));
        assert_eq!(a.disp, 0x4040 - 0x1064 - 6);
        // sym(%rip) in a PIE: ip + (sym - pc).
        let Fetch::At(Location::Memory { address: g, bytes }) =
            locate(&args[1], &Site::example(), false)
        else {
            panic!()
        };
        assert_eq!(
            (g.base.unwrap().reg, g.index, g.disp, bytes),
            (X86Reg::Rip, None, 0x4040 - 0x1064, 4)
        );
        let mut fixed = Site::example();
        fixed.fixed_addresses = true;
        let Fetch::At(Location::Memory { address: a, .. }) = locate(&args[0], &fixed, false) else {
            panic!()
        };
        assert_eq!((a.base.unwrap().reg, a.disp), (X86Reg::Rax, 0x4040));
        let Fetch::At(Location::Memory { address: g, .. }) = locate(&args[1], &fixed, false) else {
            panic!()
        };
        assert_eq!((g.base, g.disp), (None, 0x4040));
    }

    #[test]
    fn what_cannot_be_located_says_why() {
        let why = |f: Fetch| match f {
            Fetch::Unavailable(why) => why,
            other => panic!("{other:?}"),
        };
        assert!(why(located("8@%xmm0", &Site::example())).contains("xmm0"));
        assert_eq!(located("-4@$5", &Site::example()), Fetch::Constant(5));
        assert!(why(located("4@0x1234", &Site::example())).contains("position-independent"));
        assert!(why(located("-4@nowhere(%rip)", &Site::example())).contains("nowhere"));
        let mut at_nop5 = Site::example();
        at_nop5.rsp_adjust = 128;
        assert_eq!(memory("4@-20(%rsp)", &at_nop5).disp, 108);
        let mut aarch64 = Site::example();
        aarch64.arch = Arch::Aarch64;
        assert!(why(locate(
            &parse_args("8@x0", Arch::Aarch64)[0],
            &aarch64,
            false
        ))
        .contains("aarch64"));
    }

    #[test]
    fn strings_read_pointers_as_wide_as_the_code() {
        let mut i386 = Site::example();
        i386.arch = Arch::I386;
        let arg = &parse_args("4@8(%esp)", Arch::I386)[0];
        assert!(matches!(
            locate(arg, &i386, true),
            Fetch::At(Location::Memory { bytes: 4, .. })
        ));
        let arg = &parse_args("8@8(%rsp)", Arch::X86_64)[0];
        assert!(matches!(
            locate(arg, &Site::example(), true),
            Fetch::At(Location::Memory { bytes: 8, .. })
        ));
        let mut fixed = Site::example();
        fixed.fixed_addresses = true;
        let constant = &parse_args("8@$4096", Arch::X86_64)[0];
        assert_eq!(
            locate(constant, &fixed, true),
            Fetch::At(Location::Pointer(4096))
        );
    }

    #[test]
    fn only_requested_arguments_are_fetched() {
        let args = parse_args("8@%rdi 8@%rsi", Arch::X86_64);
        let request = ArgRequest {
            strings: vec![1],
            only: Some(vec![1]),
            ..ArgRequest::default()
        };
        let planned = plan_args(&args, &Site::example(), &request, None);
        assert_eq!(planned[0].fetch, Fetch::NotRequested);
        assert_eq!(planned[1].kind, ValueKind::Str);
        // A counted string: pointer and length, as HotSpot's names.
        let counted = ArgRequest {
            counted: vec![(0, 1)],
            ..ArgRequest::default()
        };
        let planned = plan_args(&args, &Site::example(), &counted, None);
        assert_eq!(planned[0].kind, ValueKind::StrN { len_arg: 1 });
        assert!(matches!(planned[1].fetch, Fetch::At(_)));
    }

    #[test]
    fn declared_types_make_strings_without_flags() {
        let args = parse_args("8@%rdi 8@%rsi -4@%edx 8@%rcx", Arch::X86_64);
        let types = [ArgType::StrPtr, ArgType::StrLen, ArgType::Int, ArgType::Str];
        let planned = plan_args(
            &args,
            &Site::example(),
            &ArgRequest::default(),
            Some(&types),
        );
        assert_eq!(planned[0].kind, ValueKind::StrN { len_arg: 1 });
        assert_eq!(
            planned[1].kind,
            ValueKind::Int {
                bytes: 8,
                signed: false
            }
        );
        assert_eq!(
            planned[2].kind,
            ValueKind::Int {
                bytes: 4,
                signed: true
            }
        );
        assert_eq!(planned[3].kind, ValueKind::Str);
        // Undeclared: numbers unless asked.
        let plain = plan_args(&args, &Site::example(), &ArgRequest::default(), None);
        assert!(plain
            .iter()
            .all(|a| matches!(a.kind, ValueKind::Int { .. })));
    }
}
