//! RISC-V operands: `a0`, `x10`, `5`, `-36(s0)`, `8(sp)`.

use super::common::{gas_operand, simple};
use super::names::{numbered, F, RISCV_ABI};
use super::{Operand, Register};

fn register(name: &str) -> Result<Register, String> {
    let n = RISCV_ABI
        .iter()
        .position(|&abi| abi == name)
        .or(if name == "fp" { Some(8) } else { None })
        .or_else(|| numbered(name, "x", 32));
    if let Some(n) = n {
        return Ok(simple(name, RISCV_ABI[n], n as u16, 64));
    }
    if let Some(n) = numbered(name, "f", 32) {
        return Ok(simple(name, F[n], 32 + n as u16, 64));
    }
    Err(format!("unknown riscv register `{name}`"))
}

pub(super) fn parse_operand(text: &str) -> Result<Operand, String> {
    gas_operand(text, false, register)
}

#[cfg(test)]
mod tests {
    use super::super::{parse_args, Arch, Operand};

    #[test]
    fn gcc_forms() {
        let args = parse_args(
            "-4@a0 -8@8(a3) -4@12(sp) -4@5 -8@40(t3) -4@-36(s0) 8@x5 8@fp",
            Arch::Riscv64,
        );
        assert!(args.iter().all(|a| a.is_parsed()), "{args:?}");
        let Operand::Memory(m) = &args[5].operand else {
            panic!()
        };
        assert_eq!((m.base.as_ref().unwrap().canonical, m.disp), ("s0", -36));
        let Operand::Register { register } = &args[6].operand else {
            panic!()
        };
        assert_eq!(register.canonical, "t0");
        for bad in ["8@x32", "8@q0", "8@8(a0,a1)"] {
            assert!(!parse_args(bad, Arch::Riscv64)[0].is_parsed(), "{bad}");
        }
    }
}
