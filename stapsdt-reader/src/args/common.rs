//! Pieces of operand grammar that several architectures share.

use super::number::parse_int;
use super::{Memory, Operand, Register};

/// `DISP(REG)`, `(REG)` and, where `allow_index`, `DISP(REG,REG)`: the GAS
/// memory form of s390x, powerpc and RISC-V. `reg` resolves a register name.
pub(crate) fn disp_paren(
    text: &str,
    allow_index: bool,
    reg: impl Fn(&str) -> Result<Register, String>,
) -> Result<Operand, String> {
    let open = text.find('(').ok_or("no `(`")?;
    let inner = text[open + 1..]
        .strip_suffix(')')
        .ok_or_else(|| "unbalanced `(`".to_string())?;
    let mut mem = Memory::new();
    let disp = &text[..open];
    if !disp.is_empty() {
        mem.disp = parse_int(disp)?;
    }
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    match parts.as_slice() {
        [base] => mem.base = Some(reg(base)?),
        // s390x writes D(X,B): the sum is what matters, so the first is the index.
        [index, base] if allow_index => {
            mem.index = Some(reg(index)?);
            mem.base = Some(reg(base)?);
        }
        _ => return Err(format!("`({inner})` is not a register address")),
    }
    Ok(Operand::Memory(mem))
}

/// The operand grammar that s390x and RISC-V share: `DISP(REG...)` memory,
/// bare numbers as immediates, anything else a register name.
pub(crate) fn gas_operand(
    text: &str,
    allow_index: bool,
    reg: impl Fn(&str) -> Result<Register, String>,
) -> Result<Operand, String> {
    if text.contains('(') {
        return disp_paren(text, allow_index, reg);
    }
    if super::number::starts_numeric(text) {
        return immediate(text);
    }
    reg(text).map(|register| Operand::Register { register })
}

pub(crate) fn simple(name: &str, canonical: &'static str, dwarf: u16, bits: u16) -> Register {
    Register {
        name: name.to_string(),
        canonical,
        dwarf,
        bits,
        shift: 0,
    }
}

pub(crate) fn immediate(text: &str) -> Result<Operand, String> {
    parse_int(text)
        .map(|value| Operand::Immediate { value })
        .map_err(|e| format!("immediate: {e}"))
}
