//! s390x operands: `%r2`, `%f0`, `5`, `172(%r15)`, `0(%r6,%r10)` (D(X,B)).

use super::common::{gas_operand, simple};
use super::names::{numbered, F, R};
use super::{Operand, Register};

/// DWARF numbers of %f0..%f15 follow the ABI's odd order (f0,f2,f4,f6,f1,...).
const FPR_DWARF: [u16; 16] = [
    16, 20, 17, 21, 18, 22, 19, 23, 24, 28, 25, 29, 26, 30, 27, 31,
];

fn register(text: &str) -> Result<Register, String> {
    let name = text
        .strip_prefix('%')
        .ok_or_else(|| format!("`{text}` is not a register (no `%`)"))?;
    if let Some(n) = numbered(name, "r", 16) {
        return Ok(simple(name, R[n], n as u16, 64));
    }
    if let Some(n) = numbered(name, "f", 16) {
        return Ok(simple(name, F[n], FPR_DWARF[n], 64));
    }
    Err(format!("unknown s390x register `{text}`"))
}

pub(super) fn parse_operand(text: &str) -> Result<Operand, String> {
    gas_operand(text, true, register)
}

#[cfg(test)]
mod tests {
    use super::super::{parse_args, Arch, Operand};

    #[test]
    fn gcc_forms() {
        let args = parse_args(
            "-4@%r2 -8@8(%r5) -4@0(%r6,%r10) -4@172(%r15) -4@5 8f@%r0 -4@-7 8f@%f2 8@(%r1)",
            Arch::S390x,
        );
        assert!(args.iter().all(|a| a.is_parsed()), "{args:?}");
        let Operand::Memory(m) = &args[2].operand else {
            panic!()
        };
        assert_eq!(
            (
                m.base.as_ref().unwrap().canonical,
                m.index.as_ref().unwrap().canonical
            ),
            ("r10", "r6")
        );
        for bad in ["8@%r16", "8@r2", "8@8(%r5", "8@8(%r1,%r2,%r3)"] {
            assert!(!parse_args(bad, Arch::S390x)[0].is_parsed(), "{bad}");
        }
    }
}
