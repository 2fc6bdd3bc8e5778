//! AT&T operands of x86-64 and i386 (`%reg`, `$imm`, `disp(%base,%index,scale)`,
//! `sym+off(%rip)`).

use super::names::{lookup, Names, R, R_B, R_D, R_W, XMM};
use super::number::{parse_int, starts_numeric};
use super::{Arch, Memory, Operand, Register};

/// One register view: name, index of its family, width in bits, bit offset.
type View = (&'static str, usize, u16, u8);

/// The 64-bit register families, in the order of `FAMILIES_64`.
const FAMILIES_64: [(&str, u16); 17] = [
    ("rax", 0),
    ("rdx", 1),
    ("rcx", 2),
    ("rbx", 3),
    ("rsi", 4),
    ("rdi", 5),
    ("rbp", 6),
    ("rsp", 7),
    ("r8", 8),
    ("r9", 9),
    ("r10", 10),
    ("r11", 11),
    ("r12", 12),
    ("r13", 13),
    ("r14", 14),
    ("r15", 15),
    ("rip", 16),
];

/// The same families as i386 names them, with i386's DWARF numbering
/// (r8..r15 do not exist there).
const FAMILIES_32: [(&str, u16); 9] = [
    ("eax", 0),
    ("edx", 2),
    ("ecx", 1),
    ("ebx", 3),
    ("esi", 6),
    ("edi", 7),
    ("ebp", 5),
    ("esp", 4),
    ("eip", 8),
];

const LEGACY_VIEWS: [View; 34] = [
    ("rax", 0, 64, 0),
    ("eax", 0, 32, 0),
    ("ax", 0, 16, 0),
    ("al", 0, 8, 0),
    ("ah", 0, 8, 8),
    ("rdx", 1, 64, 0),
    ("edx", 1, 32, 0),
    ("dx", 1, 16, 0),
    ("dl", 1, 8, 0),
    ("dh", 1, 8, 8),
    ("rcx", 2, 64, 0),
    ("ecx", 2, 32, 0),
    ("cx", 2, 16, 0),
    ("cl", 2, 8, 0),
    ("ch", 2, 8, 8),
    ("rbx", 3, 64, 0),
    ("ebx", 3, 32, 0),
    ("bx", 3, 16, 0),
    ("bl", 3, 8, 0),
    ("bh", 3, 8, 8),
    ("rsi", 4, 64, 0),
    ("esi", 4, 32, 0),
    ("si", 4, 16, 0),
    ("rdi", 5, 64, 0),
    ("edi", 5, 32, 0),
    ("di", 5, 16, 0),
    ("rbp", 6, 64, 0),
    ("ebp", 6, 32, 0),
    ("bp", 6, 16, 0),
    ("rsp", 7, 64, 0),
    ("esp", 7, 32, 0),
    ("sp", 7, 16, 0),
    ("rip", 16, 64, 0),
    ("eip", 16, 32, 0),
];

/// Low-byte views that exist only in 64-bit mode.
const REX_BYTE_VIEWS: [View; 4] = [
    ("sil", 4, 8, 0),
    ("dil", 5, 8, 0),
    ("bpl", 6, 8, 0),
    ("spl", 7, 8, 0),
];

fn find_register(name: &str, arch: Arch) -> Option<Register> {
    let is_64 = arch == Arch::X86_64;
    if let Some(reg) = numbered_register(name, is_64) {
        return Some(reg);
    }
    let extra: &[View] = if is_64 { &REX_BYTE_VIEWS } else { &[] };
    let &(view, family, bits, shift) = LEGACY_VIEWS
        .iter()
        .chain(extra)
        .find(|(n, ..)| *n == name)?;
    if !is_64 && bits == 64 {
        return None;
    }
    let (canonical, dwarf) = if is_64 {
        FAMILIES_64[family]
    } else {
        // Family 16 (rip) is the ninth i386 family.
        FAMILIES_32[family.min(8)]
    };
    Some(Register {
        name: view,
        canonical,
        dwarf,
        bits,
        shift,
    })
}

/// `r8`..`r15` with their `d`/`w`/`b` views, and `xmm0`..`xmm15`.
fn numbered_register(name: &str, is_64: bool) -> Option<Register> {
    if name.starts_with("xmm") {
        let limit = if is_64 { 16 } else { 8 };
        let (n, name) = lookup(name, &XMM, "xmm", limit)?;
        let n = n as u16;
        return Some(Register {
            name,
            canonical: name,
            dwarf: if is_64 { 17 + n } else { 21 + n },
            bits: 128,
            shift: 0,
        });
    }
    if !is_64 {
        return None;
    }
    let (table, bits): (&Names, u16) = match name.as_bytes().last()? {
        b'd' => (&R_D, 32),
        b'w' => (&R_W, 16),
        b'b' => (&R_B, 8),
        _ => (&R, 64),
    };
    let number = if bits == 64 {
        name
    } else {
        &name[..name.len() - 1]
    };
    let (n, _) = lookup(number, &R, "r", 16).filter(|&(n, _)| n >= 8)?;
    let (canonical, dwarf) = FAMILIES_64[n];
    Some(Register {
        name: table[n],
        canonical,
        dwarf,
        bits,
        shift: 0,
    })
}

fn register(text: &str, arch: Arch) -> Result<Register, String> {
    let name = text
        .strip_prefix('%')
        .ok_or_else(|| format!("`{text}` is not a register (no `%`)"))?;
    find_register(name, arch).ok_or_else(|| format!("unknown {} register `%{name}`", arch.name()))
}

pub(super) fn parse_operand(text: &str, arch: Arch) -> Result<Operand, String> {
    if let Some(imm) = text.strip_prefix('$') {
        return parse_int(imm)
            .map(|value| Operand::Immediate { value })
            .map_err(|e| format!("immediate: {e}"));
    }
    if text.starts_with('%') && !text.contains(['(', ':']) {
        return register(text, arch).map(|register| Operand::Register { register });
    }
    if text.starts_with('%') {
        return Err("segment-relative operands are not supported".to_string());
    }
    parse_memory(text, arch).map(|m| Operand::Memory(Box::new(m)))
}

/// `DISP(BASE,INDEX,SCALE)` with every part optional, DISP being a number,
/// a symbol, or `symbol±number`. A bare DISP is an absolute address.
fn parse_memory(text: &str, arch: Arch) -> Result<Memory, String> {
    let mut mem = Memory::new();
    let (disp, regs) = match text.find('(') {
        Some(open) => {
            let inner = text[open + 1..]
                .strip_suffix(')')
                .ok_or_else(|| "unbalanced `(`".to_string())?;
            (&text[..open], Some(inner))
        }
        None => (text, None),
    };
    parse_displacement(disp, &mut mem)?;
    if let Some(inner) = regs {
        let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
        if parts.len() > 3 {
            return Err(format!("too many parts in `({inner})`"));
        }
        if !parts[0].is_empty() {
            mem.base = Some(register(parts[0], arch)?);
        }
        if let Some(index) = parts.get(1) {
            mem.index = Some(register(index, arch)?);
        }
        if let Some(scale) = parts.get(2) {
            mem.scale = match *scale {
                "1" => 1,
                "2" => 2,
                "4" => 4,
                "8" => 8,
                other => return Err(format!("scale `{other}` is not 1, 2, 4 or 8")),
            };
        }
        if mem.base.is_none() && mem.index.is_none() {
            return Err(format!("`({inner})` names no register"));
        }
    } else if disp.is_empty() {
        return Err("empty operand".to_string());
    }
    Ok(mem)
}

/// A displacement is a sum of terms: numbers and at most one symbol, as GAS
/// writes them (`-20`, `0x10`, `sym`, `sym+8`, `40+sym`, `sym-8`). Symbol
/// names may contain `.`, `$` and `@` (`foo.0`, `arr@GOTOFF`).
fn parse_displacement(disp: &str, mem: &mut Memory) -> Result<(), String> {
    let mut rest = disp;
    let mut negative = false;
    let mut first = true;
    while !rest.is_empty() {
        if !first || rest.starts_with(['+', '-']) {
            negative = match rest.as_bytes()[0] {
                b'+' => false,
                b'-' => true,
                _ => return Err(format!("`{disp}` is not a sum of numbers and a symbol")),
            };
            rest = &rest[1..];
        }
        first = false;
        let end = rest.find(['+', '-']).unwrap_or(rest.len());
        let term = &rest[..end];
        rest = &rest[end..];
        if starts_numeric(term) {
            let value = parse_int(term)?;
            mem.disp = mem.disp.wrapping_add(if negative {
                value.wrapping_neg()
            } else {
                value
            });
        } else if is_symbol(term) && !negative && mem.symbol.is_none() {
            mem.symbol = Some(term.to_string());
        } else {
            return Err(format!(
                "`{disp}` is neither a number nor a symbol plus a number"
            ));
        }
    }
    Ok(())
}

/// A symbol does not start with `$`: in AT&T syntax that marks an
/// immediate, so GAS cannot have written one there, and accepting it made
/// `-4+$0` a memory operand that no spec prints back to (found by the
/// `args` fuzz target).
fn is_symbol(term: &str) -> bool {
    let mut chars = term.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '_' | '.'))
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$' | '@'))
}

#[cfg(test)]
mod tests {
    use super::super::{parse_arg, Arch, Operand};

    fn op(spec: &str) -> Operand {
        parse_arg(spec, Arch::X86_64).operand
    }

    fn reg(spec: &str) -> (&'static str, u16, u8) {
        match op(spec) {
            Operand::Register { register } => (register.canonical, register.bits, register.shift),
            other => panic!("{spec}: {other:?}"),
        }
    }

    #[test]
    fn registers_of_every_width() {
        assert_eq!(reg("8@%rax"), ("rax", 64, 0));
        assert_eq!(reg("4@%eax"), ("rax", 32, 0));
        assert_eq!(reg("2@%ax"), ("rax", 16, 0));
        assert_eq!(reg("1@%al"), ("rax", 8, 0));
        assert_eq!(reg("1@%ah"), ("rax", 8, 8));
        assert_eq!(reg("1@%dil"), ("rdi", 8, 0));
        assert_eq!(reg("8@%r12"), ("r12", 64, 0));
        assert_eq!(reg("4@%r12d"), ("r12", 32, 0));
        assert_eq!(reg("2@%r9w"), ("r9", 16, 0));
        assert_eq!(reg("1@%r15b"), ("r15", 8, 0));
        assert_eq!(reg("8f@%xmm3"), ("xmm3", 128, 0));
        assert_eq!(reg("8f@%xmm15"), ("xmm15", 128, 0));
    }

    #[test]
    fn bad_registers() {
        for spec in ["8@%r16", "8@%r08", "8@%xmm16", "8@%foo", "8@%r8x"] {
            assert!(matches!(op(spec), Operand::Unparsed { .. }), "{spec}");
        }
        // 64-bit names do not exist on i386.
        let a = parse_arg("4@%rax", Arch::I386);
        assert!(!a.is_parsed());
        let a = parse_arg("1@%sil", Arch::I386);
        assert!(!a.is_parsed());
    }

    #[test]
    fn i386_registers_use_i386_dwarf_numbers() {
        match parse_arg("4@%ecx", Arch::I386).operand {
            Operand::Register { register } => {
                assert_eq!((register.canonical, register.dwarf), ("ecx", 1))
            }
            other => panic!("{other:?}"),
        }
        match parse_arg("4@8(%esp)", Arch::I386).operand {
            Operand::Memory(m) => assert_eq!(m.base.unwrap().dwarf, 4),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn immediates() {
        assert_eq!(op("4@$5"), Operand::Immediate { value: 5 });
        assert_eq!(op("-4@$-5"), Operand::Immediate { value: -5 });
        assert_eq!(op("8@$0x10"), Operand::Immediate { value: 16 });
        assert!(matches!(op("8@$"), Operand::Unparsed { .. }));
        assert!(matches!(op("8@$sym"), Operand::Unparsed { .. }));
        // A `$` term is neither a symbol nor an immediate inside a sum.
        assert!(matches!(op("8@-4+$0"), Operand::Unparsed { .. }));
        assert!(matches!(op("8@$0(%rax)"), Operand::Unparsed { .. }));
    }

    #[test]
    fn memory_forms() {
        let Operand::Memory(m) = op("-4@-20(%rbp)") else {
            panic!()
        };
        assert_eq!((m.base.unwrap().canonical, m.disp), ("rbp", -20));
        let Operand::Memory(m) = op("8@(%rdi)") else {
            panic!()
        };
        assert_eq!(
            (m.base.unwrap().canonical, m.disp, m.index),
            ("rdi", 0, None)
        );
        let Operand::Memory(m) = op("8@0x10(%rax)") else {
            panic!()
        };
        assert_eq!(m.disp, 16);
        let Operand::Memory(m) = op("8@8(%rax,%rbx,4)") else {
            panic!()
        };
        assert_eq!(
            (
                m.base.unwrap().canonical,
                m.index.unwrap().canonical,
                m.scale,
                m.disp
            ),
            ("rax", "rbx", 4, 8)
        );
        let Operand::Memory(m) = op("8@(%rax,%rcx)") else {
            panic!()
        };
        assert_eq!((m.index.unwrap().canonical, m.scale), ("rcx", 1));
        let Operand::Memory(m) = op("4@(,%rcx,8)") else {
            panic!()
        };
        assert_eq!(
            (m.base, m.index.unwrap().canonical, m.scale),
            (None, "rcx", 8)
        );
    }

    #[test]
    fn symbolic_forms() {
        let Operand::Memory(m) = op("-4@NBuffers(%rip)") else {
            panic!()
        };
        assert_eq!(m.symbol.as_deref(), Some("NBuffers"));
        assert_eq!((m.base.unwrap().canonical, m.disp), ("rip", 0));
        let Operand::Memory(m) = op("8@counter+8(%rip)") else {
            panic!()
        };
        assert_eq!((m.symbol.as_deref(), m.disp), (Some("counter"), 8));
        let Operand::Memory(m) = op("-4@40+CheckpointStats(%rip)") else {
            panic!()
        };
        assert_eq!((m.symbol.as_deref(), m.disp), (Some("CheckpointStats"), 40));
        let Operand::Memory(m) = parse_arg("-4@arr@GOTOFF(%ecx,%esi,4)", Arch::I386).operand else {
            panic!()
        };
        assert_eq!((m.symbol.as_deref(), m.scale), (Some("arr@GOTOFF"), 4));
        let Operand::Memory(m) = op("8@state.0-16(%rip)") else {
            panic!()
        };
        assert_eq!((m.symbol.as_deref(), m.disp), (Some("state.0"), -16));
        let Operand::Memory(m) = parse_arg("4@global_var", Arch::I386).operand else {
            panic!()
        };
        assert_eq!((m.symbol.as_deref(), m.base), (Some("global_var"), None));
    }

    #[test]
    fn malformed_memory() {
        for spec in [
            "8@8(%rax",
            "8@()",
            "8@8(%rax,%rbx,3)",
            "8@8(%rax,%rbx,4,5)",
            "8@%fs:0x28",
            "8@8(rax)",
            "8@a b(%rip)",
            "8@+(%rax)",
            "8@a+b(%rip)",
            "8@-sym(%rip)",
            "8@1++2(%rax)",
        ] {
            assert!(matches!(op(spec), Operand::Unparsed { .. }), "{spec}");
        }
    }
}
