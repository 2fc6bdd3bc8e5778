//! Argument values as delivered to handlers, decoded from raw records.

use crate::lower::{arg_slot, record};
use crate::plan::{ArgInfo, Fetch, ValueKind};
use std::fmt;

/// One argument's value at a hit.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Str(String),
    /// The kernel cannot fetch this operand (said at attach time), or the
    /// record was short.
    Unavailable,
    /// The memory could not be read at the hit (a bad pointer).
    Fault,
}

impl Value {
    /// The value as an integer (for histograms), if it is one.
    pub fn as_i128(&self) -> Option<i128> {
        match self {
            Value::Signed(v) => Some(i128::from(*v)),
            Value::Unsigned(v) => Some(i128::from(*v)),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Signed(v) => write!(f, "{v}"),
            Value::Unsigned(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Unavailable => f.write_str("<unavailable>"),
            Value::Fault => f.write_str("<fault>"),
        }
    }
}

/// An integer of `bytes` bytes held in the low bits of `raw`.
pub fn integer(raw: u64, bytes: u8, signed: bool) -> Value {
    let bits = u32::from(bytes.clamp(1, 8)) * 8;
    let raw = if bits == 64 {
        raw
    } else {
        raw & ((1u64 << bits) - 1)
    };
    if signed {
        let shift = 64 - bits;
        Value::Signed(((raw << shift) as i64) >> shift)
    } else {
        Value::Unsigned(raw)
    }
}

/// Decode argument `index` from a record whose fault bits are `faults`.
pub fn decode(arg: &ArgInfo, index: usize, record: &[u8], faults: u32) -> Value {
    match &arg.fetch {
        Fetch::Constant(v) => match arg.kind {
            ValueKind::Int { bytes, signed } => integer(*v as u64, bytes, signed),
            _ => integer(*v as u64, 8, true),
        },
        Fetch::NotRequested | Fetch::Unavailable(_) => Value::Unavailable,
        Fetch::At(_) if index < 32 && faults >> index & 1 == 1 => Value::Fault,
        Fetch::At(_) => {
            let slot = arg_slot(index);
            match arg.kind {
                ValueKind::Str | ValueKind::StrN { .. } => record::string(record, slot)
                    .map_or(Value::Unavailable, |s| {
                        Value::Str(String::from_utf8_lossy(s).into_owned())
                    }),
                ValueKind::Int { bytes, signed } => record::u64_at(record, slot)
                    .map_or(Value::Unavailable, |raw| integer(raw, bytes, signed)),
                ValueKind::Float { bytes } => match record::u64_at(record, slot) {
                    Some(raw) if bytes == 4 => Value::Float(f64::from(f32::from_bits(raw as u32))),
                    Some(raw) => Value::Float(f64::from_bits(raw)),
                    None => Value::Unavailable,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_truncated_and_sign_extended() {
        assert_eq!(integer(0xffff_fffb, 4, true), Value::Signed(-5));
        assert_eq!(integer(-56i64 as u64, 1, false), Value::Unsigned(200));
        assert_eq!(integer(0x1_0000_0001, 4, false), Value::Unsigned(1));
        assert_eq!(integer(u64::MAX, 8, true), Value::Signed(-1));
    }
}
