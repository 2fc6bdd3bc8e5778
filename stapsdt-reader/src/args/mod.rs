//! Argument specs of SDT probes: `[-]SIZE[f]@OPERAND`, space separated.
//!
//! The size prefix is architecture independent; the operand syntax is the
//! assembler's for the target, so each architecture has its own module. Every
//! form is parsed into one typed [`Operand`]; a spec that does not parse is kept
//! as [`Operand::Unparsed`] with the reason, so a consumer never loses the
//! probe or the other arguments because of one odd operand.

mod aarch64;
mod arm;
mod common;
mod names;
mod number;
mod ppc;
mod riscv;
mod s390x;
mod x86;

use serde::Serialize;

/// The instruction set whose assembler syntax the operands are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    X86_64,
    I386,
    Aarch64,
    Arm,
    S390x,
    Ppc64,
    Ppc,
    Riscv64,
    Riscv32,
    /// An ELF machine this crate has no operand grammar for.
    Unknown,
}

impl Arch {
    /// The architecture of an ELF file from its `e_machine` and class.
    pub fn from_elf(machine: u16, is_64: bool) -> Arch {
        use object::elf;
        match machine {
            elf::EM_X86_64 if is_64 => Arch::X86_64,
            // x32 objects are EM_X86_64 in ELF32 and use the x86-64 registers.
            elf::EM_X86_64 => Arch::X86_64,
            elf::EM_386 => Arch::I386,
            elf::EM_AARCH64 => Arch::Aarch64,
            elf::EM_ARM => Arch::Arm,
            elf::EM_S390 => Arch::S390x,
            elf::EM_PPC64 => Arch::Ppc64,
            elf::EM_PPC => Arch::Ppc,
            elf::EM_RISCV if is_64 => Arch::Riscv64,
            elf::EM_RISCV => Arch::Riscv32,
            _ => Arch::Unknown,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::I386 => "i386",
            Arch::Aarch64 => "aarch64",
            Arch::Arm => "arm",
            Arch::S390x => "s390x",
            Arch::Ppc64 => "ppc64",
            Arch::Ppc => "ppc",
            Arch::Riscv64 => "riscv64",
            Arch::Riscv32 => "riscv32",
            Arch::Unknown => "unknown",
        }
    }

    /// Size in bytes of an argument whose spec carries no size (v1 notes).
    fn word_size(self) -> u8 {
        match self {
            Arch::I386 | Arch::Arm | Arch::Ppc | Arch::Riscv32 => 4,
            _ => 8,
        }
    }
}

/// A machine register as an operand names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Register {
    /// The name as written, without the assembler's prefix (`eax`, `ah`, `x0`, `r15`).
    pub name: &'static str,
    /// The full-width register that holds it (`rax` for `%eax` and `%ah` on x86-64).
    pub canonical: &'static str,
    /// DWARF register number of the canonical register.
    pub dwarf: u16,
    /// Width in bits of the named view (`32` for `%eax`, `8` for `%ah`).
    pub bits: u16,
    /// Bit offset of the view inside the canonical register (`8` for `%ah`).
    pub shift: u8,
}

/// Where an argument's value is found at the probe site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Operand {
    /// The value is in a register.
    Register { register: Register },
    /// The value is a constant.
    Immediate { value: i64 },
    /// The value is in memory at `disp + symbol + base + index * scale`.
    Memory(Box<Memory>),
    /// The spec could not be parsed; `reason` says why. Size fields may still be valid.
    Unparsed { reason: String },
}

/// A memory operand. Exactly the parts present in the spec are set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Memory {
    pub base: Option<Register>,
    pub index: Option<Register>,
    /// Multiplier of `index` (1 when there is no index).
    pub scale: u8,
    /// Signed displacement in bytes (for `sym+off(%rip)`, the `off`).
    pub disp: i64,
    /// Symbol of a `sym(%rip)` or `sym+off(%rip)` operand (as written, so
    /// `arr@GOTOFF` for i386 PIC code).
    pub symbol: Option<String>,
    /// Link-time address of `symbol + disp`, when the symbol was found in the object.
    pub symbol_address: Option<u64>,
    /// File offset of `symbol + disp` (what the kernel's `@+OFFSET` fetcharg takes).
    pub symbol_file_offset: Option<u64>,
    /// For `sym@GOTOFF(%reg)` (i386 PIC): the link-time address of the GOT
    /// (`_GLOBAL_OFFSET_TABLE_`), which the base register holds at run time;
    /// the operand is then at `base + (symbol_address - got_address) + index * scale`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub got_address: Option<u64>,
}

impl Memory {
    fn new() -> Memory {
        Memory {
            base: None,
            index: None,
            scale: 1,
            disp: 0,
            symbol: None,
            symbol_address: None,
            symbol_file_offset: None,
            got_address: None,
        }
    }
}

/// One decoded argument of a probe location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arg {
    /// The spec as it stands in the note (`-4@-20(%rbp)`).
    pub raw: String,
    /// Size of the value in bytes (1, 2, 4, 8; 16 is accepted for vector registers).
    pub size: u8,
    pub signed: bool,
    pub float: bool,
    pub operand: Operand,
}

impl Arg {
    pub fn is_parsed(&self) -> bool {
        !matches!(self.operand, Operand::Unparsed { .. })
    }
}

/// Split an argument string into its specs and decode each one.
///
/// Never fails: a spec that does not parse becomes an [`Operand::Unparsed`] argument.
pub fn parse_args(text: &str, arch: Arch) -> Vec<Arg> {
    split_specs(text)
        .into_iter()
        .map(|spec| parse_arg(spec, arch))
        .collect()
}

/// Split on the spaces between specs. Operands such as aarch64's `[sp, 8]` and
/// arm's `[r3, #12]` contain a space inside brackets, so brackets are respected.
fn split_specs(text: &str) -> Vec<&str> {
    let mut specs = Vec::new();
    let mut depth = 0i32;
    let mut start = None;
    for (i, c) in text.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            _ => {}
        }
        // Any whitespace separates, as `split_whitespace` sees it: a
        // vertical tab was once kept as a spec of its own (found by the
        // `args` fuzz target).
        if c.is_whitespace() && depth <= 0 {
            if let Some(s) = start.take() {
                specs.push(&text[s..i]);
            }
            depth = 0;
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        specs.push(&text[s..]);
    }
    specs
}

/// Decode one spec: the size prefix, then the operand in the syntax of `arch`.
pub fn parse_arg(spec: &str, arch: Arch) -> Arg {
    let (size, signed, float, operand_text) = match split_size(spec) {
        Ok(Some(parts)) => parts,
        // Version 1 notes carry bare operands: the value is an unsigned machine word.
        Ok(None) => (arch.word_size(), false, false, spec),
        Err(reason) => return unparsed(spec, 0, false, false, reason),
    };
    let parsed = match arch {
        Arch::X86_64 | Arch::I386 => x86::parse_operand(operand_text, arch),
        Arch::Aarch64 => aarch64::parse_operand(operand_text),
        Arch::Arm => arm::parse_operand(operand_text),
        Arch::S390x => s390x::parse_operand(operand_text),
        Arch::Ppc64 | Arch::Ppc => ppc::parse_operand(operand_text),
        Arch::Riscv64 | Arch::Riscv32 => riscv::parse_operand(operand_text),
        Arch::Unknown => Err("no operand grammar for this architecture".to_string()),
    };
    match parsed {
        Ok(operand) => Arg {
            raw: spec.to_string(),
            size,
            signed,
            float,
            operand,
        },
        Err(reason) => unparsed(spec, size, signed, float, reason),
    }
}

fn unparsed(spec: &str, size: u8, signed: bool, float: bool, reason: String) -> Arg {
    Arg {
        raw: spec.to_string(),
        size,
        signed,
        float,
        operand: Operand::Unparsed {
            reason: format!("cannot parse argument `{spec}`: {reason}"),
        },
    }
}

/// `[-]SIZE[f]@` → (size, signed, float, operand). `Ok(None)` when there is no `@`
/// prefix at all (a v1 spec). The operand itself may contain `@` on no
/// architecture, so the first `@` ends the prefix.
fn split_size(spec: &str) -> Result<Option<(u8, bool, bool, &str)>, String> {
    let Some(at) = spec.find('@') else {
        return Ok(None);
    };
    let (prefix, operand) = (&spec[..at], &spec[at + 1..]);
    let (signed, digits) = match prefix.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, prefix),
    };
    let (float, digits) = match digits.strip_suffix('f') {
        Some(rest) => (true, rest),
        None => (false, digits),
    };
    let size: u8 = digits
        .parse()
        .map_err(|_| format!("size prefix `{prefix}` is not [-]N[f]"))?;
    if !matches!(size, 1 | 2 | 4 | 8 | 16) {
        return Err(format!("size {size} is not 1, 2, 4, 8 or 16 bytes"));
    }
    if operand.is_empty() {
        return Err("empty operand after `@`".to_string());
    }
    Ok(Some((size, signed, float, operand)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_spaces_outside_brackets() {
        assert_eq!(
            split_specs("8@x0 -4@[sp, 8]  4@[x1]"),
            vec!["8@x0", "-4@[sp, 8]", "4@[x1]"]
        );
        assert_eq!(split_specs(""), Vec::<&str>::new());
        assert_eq!(split_specs("  8@%rax "), vec!["8@%rax"]);
        assert_eq!(split_specs("\u{b}"), Vec::<&str>::new());
        assert_eq!(split_specs("8@%rax\u{b}4@%ebx"), vec!["8@%rax", "4@%ebx"]);
    }

    #[test]
    fn size_prefixes() {
        let a = parse_arg("-4f@%xmm0", Arch::X86_64);
        assert_eq!((a.size, a.signed, a.float), (4, true, true));
        let a = parse_arg("8f@%xmm1", Arch::X86_64);
        assert_eq!((a.size, a.signed, a.float), (8, false, true));
        let a = parse_arg("2@%ax", Arch::X86_64);
        assert_eq!((a.size, a.signed, a.float), (2, false, false));
    }

    #[test]
    fn bad_size_is_unparsed_but_kept() {
        for spec in ["3@%rax", "x@%rax", "@%rax", "8@", "-@%rax", "99999@%rax"] {
            let a = parse_arg(spec, Arch::X86_64);
            assert!(!a.is_parsed(), "{spec}");
            assert_eq!(a.raw, spec);
            match a.operand {
                Operand::Unparsed { reason } => assert!(reason.contains(spec), "{reason}"),
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn bare_operand_is_a_v1_word() {
        let a = parse_arg("%rdi", Arch::X86_64);
        assert_eq!((a.size, a.signed), (8, false));
        assert!(a.is_parsed());
    }

    #[test]
    fn one_bad_spec_keeps_the_others() {
        let args = parse_args("8@%rdi 4@%nosuchreg -4@$5", Arch::X86_64);
        assert_eq!(args.len(), 3);
        assert!(args[0].is_parsed());
        assert!(!args[1].is_parsed());
        assert!(args[2].is_parsed());
    }
}
