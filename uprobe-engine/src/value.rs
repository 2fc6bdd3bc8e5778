//! Argument values as delivered to handlers, decoded from raw records.

use crate::bpf::BpfArg;
use crate::fetchargs::{Fetch, ValueKind};
use crate::format::Field;
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
    /// The kernel could not read the string at the hit (a bad pointer).
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

/// Decode one argument from a record.
pub fn decode(
    fetch: &Fetch,
    field: Option<&Field>,
    record: &[u8],
    signed: bool,
    bytes: u8,
) -> Value {
    match fetch {
        Fetch::Constant(v) => integer(*v as u64, bytes, signed),
        Fetch::Unsupported(_) => Value::Unavailable,
        Fetch::Kernel { kind, .. } | Fetch::Bpf(BpfArg { kind, .. }) => {
            let Some(field) = field else {
                return Value::Unavailable;
            };
            match *kind {
                ValueKind::Str => match field.read_string(record) {
                    Some(Some(s)) => Value::Str(s),
                    Some(None) => Value::Fault,
                    None => Value::Unavailable,
                },
                ValueKind::Int { bytes, signed } => field
                    .read_u64(record)
                    .map_or(Value::Unavailable, |raw| integer(raw, bytes, signed)),
                ValueKind::Float { bytes } => match field.read_u64(record) {
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
