//! What a probe argument is, as the caller declares it, and what that
//! becomes in the note: one or two 8-byte slots of the argument block,
//! each with its size prefix and its word in the types note.

use std::fmt;

/// The type of one probe argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ArgKind {
    I8 = 1,
    U8 = 2,
    I16 = 3,
    U16 = 4,
    I32 = 5,
    U32 = 6,
    I64 = 7,
    U64 = 8,
    /// An address, shown as a number.
    Pointer = 9,
    /// A pointer to a NUL-terminated string.
    Str = 10,
    /// A pointer+length string: two slots of the block, the pointer then
    /// the length (`strptr strlen` in the types note).
    StrLen = 11,
    /// An IEEE 754 double, passed as its bits (`8@`, typed `float`).
    F64 = 12,
}

/// The most argument slots a probe has: the SDT note format's limit (a
/// pointer+length string takes two).
pub const MAX_SLOTS: usize = 12;

/// One slot of the argument block, as the note describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// The size prefix: `-1`, `8`, `8f`.
    pub prefix: &'static str,
    /// The types note word: `int str strptr strlen float`.
    pub word: &'static str,
}

impl ArgKind {
    /// Every kind, in the order of their C ABI numbers.
    pub const ALL: [ArgKind; 12] = [
        ArgKind::I8,
        ArgKind::U8,
        ArgKind::I16,
        ArgKind::U16,
        ArgKind::I32,
        ArgKind::U32,
        ArgKind::I64,
        ArgKind::U64,
        ArgKind::Pointer,
        ArgKind::Str,
        ArgKind::StrLen,
        ArgKind::F64,
    ];

    /// The kind of a C ABI number (`SDT_ARG_*`).
    pub fn from_code(code: u32) -> Option<ArgKind> {
        ArgKind::ALL.into_iter().find(|k| *k as u32 == code)
    }

    /// The kind named by `name` (`i8` ... `u64`, `ptr`, `str`, `strlen`, `f64`).
    pub fn from_name(name: &str) -> Option<ArgKind> {
        ArgKind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            ArgKind::I8 => "i8",
            ArgKind::U8 => "u8",
            ArgKind::I16 => "i16",
            ArgKind::U16 => "u16",
            ArgKind::I32 => "i32",
            ArgKind::U32 => "u32",
            ArgKind::I64 => "i64",
            ArgKind::U64 => "u64",
            ArgKind::Pointer => "ptr",
            ArgKind::Str => "str",
            ArgKind::StrLen => "strlen",
            ArgKind::F64 => "f64",
        }
    }

    /// The slots this argument fills in the block and the note.
    pub(crate) fn slots(self) -> &'static [Slot] {
        // A macro, not a const fn: struct literals are promoted to
        // `'static`, calls are not.
        macro_rules! int {
            ($prefix:literal) => {
                Slot {
                    prefix: $prefix,
                    word: "int",
                }
            };
        }
        match self {
            ArgKind::I8 => &[int!("-1")],
            ArgKind::U8 => &[int!("1")],
            ArgKind::I16 => &[int!("-2")],
            ArgKind::U16 => &[int!("2")],
            ArgKind::I32 => &[int!("-4")],
            ArgKind::U32 => &[int!("4")],
            ArgKind::I64 => &[int!("-8")],
            ArgKind::U64 | ArgKind::Pointer => &[int!("8")],
            ArgKind::Str => &[Slot {
                prefix: "8",
                word: "str",
            }],
            ArgKind::StrLen => &[
                Slot {
                    prefix: "8",
                    word: "strptr",
                },
                Slot {
                    prefix: "8",
                    word: "strlen",
                },
            ],
            // `8`, not `sys/sdt.h`'s `8f`: bcc (bpftrace 0.17) rejects
            // the whole probe at an `f` suffix. The types note's `float`
            // is what makes our tracers show a double.
            ArgKind::F64 => &[Slot {
                prefix: "8",
                word: "float",
            }],
        }
    }
}

impl fmt::Display for ArgKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One value given to [`crate::Probe::fire`].
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    /// Any integer kind (and `ptr`): the low bytes of the kind's width are
    /// what a tracer reads.
    Int(i64),
    UInt(u64),
    F64(f64),
    /// For `str`: the bytes up to the NUL.
    Str(&'a std::ffi::CStr),
    /// For `strlen`: pointer and length.
    Bytes(&'a [u8]),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for kind in ArgKind::ALL {
            assert_eq!(ArgKind::from_code(kind as u32), Some(kind));
            assert_eq!(ArgKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(ArgKind::from_code(0), None);
        assert_eq!(ArgKind::from_code(13), None);
        assert_eq!(ArgKind::from_name("int"), None);
    }
}
