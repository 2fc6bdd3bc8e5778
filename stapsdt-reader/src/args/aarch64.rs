//! AArch64 operands as GCC writes them for `<sys/sdt.h>`: `x0`, `w1`, `5`,
//! `[sp, 12]`, `[x3]`, `[x1, x2]`.

use super::common::{immediate, simple};
use super::names::{lookup, B, D, H, Q, S, V, W, X};
use super::number::{parse_int, starts_numeric};
use super::{Memory, Operand, Register};

fn register(name: &str) -> Result<Register, String> {
    let found = match name {
        "sp" => Some(("sp", "sp", 31, 64)),
        "wsp" => Some(("wsp", "sp", 31, 32)),
        "fp" => Some(("fp", X[29], 29, 64)),
        "lr" => Some(("lr", X[30], 30, 64)),
        _ => None,
    };
    if let Some((name, canonical, dwarf, bits)) = found {
        return Ok(simple(name, canonical, dwarf, bits));
    }
    for (table, prefix, bits) in [(&X, "x", 64), (&W, "w", 32)] {
        if let Some((n, name)) = lookup(name, table, prefix, 31) {
            return Ok(simple(name, X[n], n as u16, bits));
        }
    }
    for (table, prefix, bits) in [
        (&V, "v", 128),
        (&Q, "q", 128),
        (&D, "d", 64),
        (&S, "s", 32),
        (&H, "h", 16),
        (&B, "b", 8),
    ] {
        if let Some((n, name)) = lookup(name, table, prefix, 32) {
            return Ok(simple(name, V[n], 64 + n as u16, bits));
        }
    }
    Err(format!("unknown aarch64 register `{name}`"))
}

pub(super) fn parse_operand(text: &str) -> Result<Operand, String> {
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("unbalanced `[`")?;
        let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
        let mut mem = Memory::new();
        mem.base = Some(register(parts[0])?);
        match &parts[1..] {
            [] => {}
            [off] if starts_numeric(off.trim_start_matches('#')) => {
                mem.disp = parse_int(off.trim_start_matches('#'))?
            }
            [index] => mem.index = Some(register(index)?),
            _ => return Err(format!("`[{inner}]` is not a supported address")),
        }
        return Ok(Operand::Memory(Box::new(mem)));
    }
    let imm = text.strip_prefix('#').unwrap_or(text);
    if starts_numeric(imm) {
        return immediate(imm);
    }
    register(text).map(|register| Operand::Register { register })
}

#[cfg(test)]
mod tests {
    use super::super::{parse_args, Arch, Operand};

    #[test]
    fn gcc_forms() {
        let args = parse_args(
            "-4@x0 -8@[x3, 8] -4@[sp, 12] -4@5 8f@x4 -4@-7 4@w1 8@[x2] 8@[x1, x2] 8@#3",
            Arch::Aarch64,
        );
        assert!(args.iter().all(|a| a.is_parsed()), "{args:?}");
        let Operand::Memory(m) = &args[2].operand else {
            panic!()
        };
        assert_eq!((m.base.as_ref().unwrap().canonical, m.disp), ("sp", 12));
        assert_eq!(args[3].operand, Operand::Immediate { value: 5 });
        assert_eq!(args[5].operand, Operand::Immediate { value: -7 });
        let Operand::Register { register } = &args[6].operand else {
            panic!()
        };
        assert_eq!((register.canonical, register.bits), ("x1", 32));
        for bad in ["8@x31", "8@[x0", "8@[x0, 8, 9]", "8@y0"] {
            assert!(!parse_args(bad, Arch::Aarch64)[0].is_parsed(), "{bad}");
        }
    }
}
