//! PowerPC operands. GCC writes registers as bare numbers (`3` is r3), so an
//! immediate carries an `i` prefix (`i5`); `0(6)` is memory at r6, `11,7` is
//! the indexed form r11+r7. `%r3` / `r3` (with `-mregnames`) are accepted too.

use super::common::{disp_paren, immediate, simple};
use super::names::{lookup, F, NUM, R};
use super::{Memory, Operand, Register};

fn register(text: &str) -> Result<Register, String> {
    let name = text.strip_prefix('%').unwrap_or(text);
    if let Some((n, name)) = lookup(name, &R, "r", 32).or_else(|| lookup(name, &NUM, "", 32)) {
        return Ok(simple(name, R[n], n as u16, 64));
    }
    if let Some((n, name)) = lookup(name, &F, "f", 32) {
        return Ok(simple(name, F[n], 32 + n as u16, 64));
    }
    Err(format!("unknown powerpc register `{text}`"))
}

pub(super) fn parse_operand(text: &str) -> Result<Operand, String> {
    if let Some(imm) = text.strip_prefix('i') {
        return immediate(imm);
    }
    if text.contains('(') {
        return disp_paren(text, false, register);
    }
    if let Some((base, index)) = text.split_once(',') {
        let mut mem = Memory::new();
        mem.base = Some(register(base.trim())?);
        mem.index = Some(register(index.trim())?);
        return Ok(Operand::Memory(Box::new(mem)));
    }
    register(text).map(|register| Operand::Register { register })
}

#[cfg(test)]
mod tests {
    use super::super::{parse_args, Arch, Operand};

    #[test]
    fn gcc_forms() {
        let args = parse_args(
            "-4@3 -8@0(6) -4@11,7 -4@0 -4@i5 -4@i-7 8f@10 8@%r31 8@-16(%r1)",
            Arch::Ppc64,
        );
        assert!(args.iter().all(|a| a.is_parsed()), "{args:?}");
        let Operand::Register { register } = &args[0].operand else {
            panic!()
        };
        assert_eq!(register.canonical, "r3");
        let Operand::Memory(m) = &args[2].operand else {
            panic!()
        };
        assert_eq!(m.index.as_ref().unwrap().canonical, "r7");
        assert_eq!(args[5].operand, Operand::Immediate { value: -7 });
        for bad in ["8@32", "8@ix", "8@0(6", "8@r99"] {
            assert!(!parse_args(bad, Arch::Ppc64)[0].is_parsed(), "{bad}");
        }
    }
}
