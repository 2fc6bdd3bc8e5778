//! 32-bit ARM operands: `r0`, `#5`, `[r7, #28]`, `[lr, r4, lsl #2]`.

use super::common::{immediate, simple};
use super::names::{lookup, R};
use super::number::parse_int;
use super::{Memory, Operand, Register};

fn register(name: &str) -> Result<Register, String> {
    const ALIASES: [(&str, usize); 6] = [
        ("sl", 10),
        ("fp", 11),
        ("ip", 12),
        ("sp", 13),
        ("lr", 14),
        ("pc", 15),
    ];
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map(|&(alias, n)| (n, alias))
        .or_else(|| lookup(name, &R, "r", 16))
        .map(|(n, name)| simple(name, R[n], n as u16, 32))
        .ok_or_else(|| format!("unknown arm register `{name}`"))
}

pub(super) fn parse_operand(text: &str) -> Result<Operand, String> {
    if let Some(imm) = text.strip_prefix('#') {
        return immediate(imm);
    }
    let Some(inner) = text.strip_prefix('[') else {
        return register(text).map(|register| Operand::Register { register });
    };
    let inner = inner.strip_suffix(']').ok_or("unbalanced `[`")?;
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    let mut mem = Memory::new();
    mem.base = Some(register(parts[0])?);
    match &parts[1..] {
        [] => {}
        [off] if off.starts_with('#') => mem.disp = parse_int(&off[1..])?,
        [index] => mem.index = Some(register(index)?),
        [index, shift] => {
            mem.index = Some(register(index)?);
            let amount = shift
                .strip_prefix("lsl")
                .map(|s| s.trim().trim_start_matches('#'))
                .ok_or_else(|| format!("shift `{shift}` is not `lsl #N`"))?;
            mem.scale = match amount {
                "0" => 1,
                "1" => 2,
                "2" => 4,
                "3" => 8,
                _ => return Err(format!("shift `{shift}` is not lsl #0..#3")),
            };
        }
        _ => return Err(format!("`[{inner}]` is not a supported address")),
    }
    Ok(Operand::Memory(Box::new(mem)))
}

#[cfg(test)]
mod tests {
    use super::super::{parse_args, Arch, Operand};

    #[test]
    fn gcc_forms() {
        let args = parse_args(
            "-4@r0 -4@[r3, #4] -4@[lr, r4, lsl #2] -4@#5 -4@#-7 4@[r7] 4@[r1, r2] 4@sp",
            Arch::Arm,
        );
        assert!(args.iter().all(|a| a.is_parsed()), "{args:?}");
        let Operand::Memory(m) = &args[2].operand else {
            panic!()
        };
        assert_eq!(
            (
                m.base.as_ref().unwrap().canonical,
                m.index.as_ref().unwrap().canonical,
                m.scale
            ),
            ("r14", "r4", 4)
        );
        assert_eq!(args[4].operand, Operand::Immediate { value: -7 });
        for bad in ["4@r16", "4@[r0, lsr #2]", "4@5", "4@[r0, r1, lsl #9]"] {
            assert!(!parse_args(bad, Arch::Arm)[0].is_parsed(), "{bad}");
        }
    }
}
