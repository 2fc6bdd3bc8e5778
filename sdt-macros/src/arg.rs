//! How one Rust value becomes one probe argument.
//!
//! A probe argument is two things: a register the probe site holds the
//! value in, and the `[-]SIZE[f]@` prefix of the argument string that tells
//! consumers how many bytes of it matter and whether they are signed or a
//! float. The prefix is known only from the *type* of the argument, which a
//! `macro_rules!` macro cannot see, so it lives in associated constants here
//! and reaches the assembler as `const` operands of `asm!` (see `site.rs`).

/// A value a probe can carry in one argument slot.
///
/// Implemented for the integers, `bool`, `char`, `f32`/`f64`, raw pointers,
/// references to sized values and `&CStr`. Strings and byte slices need two
/// slots (pointer and length): write `str(expr)` in `probe!`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a probe argument",
    label = "not a probe argument",
    note = "probe arguments are integers, bool, char, f32/f64, pointers, references and &CStr; \
            pass a &str, String or byte slice as `str(expr)` (pointer and length)"
)]
pub trait SdtArg: Copy {
    /// Size in bytes as the argument string states it: negative for signed
    /// integers (`-4@` is an `i32`), positive for everything else.
    const SIZE: i32;
    /// The value is a float: the prefix gets an `f` (`8f@%rax`), and the
    /// register holds the float's bits, as `sys/sdt.h` does for a `double`
    /// (GCC moves it to a general register). Consumers reinterpret the
    /// bits; GDB 13 does not parse the `f` (see docs/macros.md).
    const FLOAT: bool = false;
    /// What the types note says this argument is ([`type_code`]): by
    /// default `FLOAT` or `INT`; `&CStr` is a `STR`.
    #[doc(hidden)]
    const TYPE_CODE: u8 = if Self::FLOAT {
        type_code::FLOAT
    } else {
        type_code::INT
    };

    /// What the probe site's register holds: the value, sign- or
    /// zero-extended to 64 bits (floats: their bits, zero-extended).
    fn register(&self) -> u64;
}

/// The argument types of the types note (`.note.stapsdt.types`), as the
/// numbers the `asm!` gets as a `const` operand (`{fN}`) and turns into
/// the note's words.
#[doc(hidden)]
pub mod type_code {
    /// `int`
    pub const INT: u8 = 0;
    /// `float`; also what puts the `f` in the argument's size prefix.
    pub const FLOAT: u8 = 1;
    /// `str`: the address of NUL-terminated bytes.
    pub const STR: u8 = 2;
    /// `strptr`: the address of a string whose length is the next argument.
    pub const STRPTR: u8 = 3;
    /// `strlen`: the length of the `strptr` argument before it.
    pub const STRLEN: u8 = 4;
}

/// Byte count of an argument prefix (`SIZE` without its sign): selects the
/// register name width (`%al`, `%ax`, `%eax`, `%rax`) the note shows.
#[doc(hidden)]
pub const fn width(size: i32) -> i32 {
    size.abs()
}

macro_rules! unsigned_args {
    ($($t:ty),*) => {$(
        impl SdtArg for $t {
            const SIZE: i32 = core::mem::size_of::<$t>() as i32;
            #[inline(always)]
            fn register(&self) -> u64 {
                *self as u64
            }
        }
    )*};
}

macro_rules! signed_args {
    ($($t:ty),*) => {$(
        impl SdtArg for $t {
            const SIZE: i32 = -(core::mem::size_of::<$t>() as i32);
            #[inline(always)]
            fn register(&self) -> u64 {
                // Sign-extend, so that a consumer reading the whole register
                // still sees the value.
                *self as i64 as u64
            }
        }
    )*};
}

unsigned_args!(u8, u16, u32, u64, usize);
signed_args!(i8, i16, i32, i64, isize);

impl SdtArg for bool {
    const SIZE: i32 = 1;
    #[inline(always)]
    fn register(&self) -> u64 {
        *self as u64
    }
}

impl SdtArg for char {
    // A Unicode scalar value: what `sys/sdt.h` would say for a `uint32_t`.
    const SIZE: i32 = 4;
    #[inline(always)]
    fn register(&self) -> u64 {
        *self as u64
    }
}

macro_rules! float_args {
    ($($t:ty),*) => {$(
        impl SdtArg for $t {
            const SIZE: i32 = core::mem::size_of::<$t>() as i32;
            const FLOAT: bool = true;
            #[inline(always)]
            fn register(&self) -> u64 {
                self.to_bits() as u64
            }
        }
    )*};
}

float_args!(f32, f64);

const POINTER_SIZE: i32 = core::mem::size_of::<usize>() as i32;

impl<T> SdtArg for *const T {
    const SIZE: i32 = POINTER_SIZE;
    #[inline(always)]
    fn register(&self) -> u64 {
        *self as usize as u64
    }
}

impl<T> SdtArg for *mut T {
    const SIZE: i32 = POINTER_SIZE;
    #[inline(always)]
    fn register(&self) -> u64 {
        *self as usize as u64
    }
}

/// A reference is passed as the address it points to. (Only to sized
/// values: `&str` and `&[u8]` carry a length and go through `str(expr)`.)
impl<T> SdtArg for &T {
    const SIZE: i32 = POINTER_SIZE;
    #[inline(always)]
    fn register(&self) -> u64 {
        *self as *const T as usize as u64
    }
}

/// The address of the NUL-terminated bytes: what C-string consumers
/// (`bpftrace`'s `str(arg0)`, GDB's `$_as_string`) expect.
impl SdtArg for &core::ffi::CStr {
    const SIZE: i32 = POINTER_SIZE;
    const TYPE_CODE: u8 = type_code::STR;
    #[inline(always)]
    fn register(&self) -> u64 {
        self.as_ptr() as usize as u64
    }
}

/// The pointer half of `str(expr)`: the address of the bytes, typed
/// `strptr` in the types note.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct StrPtr(pub *const u8);

impl SdtArg for StrPtr {
    const SIZE: i32 = POINTER_SIZE;
    const TYPE_CODE: u8 = type_code::STRPTR;
    #[inline(always)]
    fn register(&self) -> u64 {
        self.0 as usize as u64
    }
}

/// The length half of `str(expr)`, typed `strlen` in the types note.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct StrLen(pub usize);

impl SdtArg for StrLen {
    const SIZE: i32 = core::mem::size_of::<usize>() as i32;
    const TYPE_CODE: u8 = type_code::STRLEN;
    #[inline(always)]
    fn register(&self) -> u64 {
        self.0 as u64
    }
}

/// The bytes behind `str(expr)`: anything that is a byte string without
/// copying (`&str`, `String`, `&[u8]`, `Vec<u8>`, arrays).
#[doc(hidden)]
#[inline(always)]
pub fn bytes_of<B: AsRef<[u8]> + ?Sized>(value: &B) -> &[u8] {
    value.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Takes the value to infer `T` from, like `probe!` does.
    #[allow(clippy::needless_pass_by_value)]
    fn prefix<T: SdtArg>(_: T) -> (i32, bool) {
        (T::SIZE, T::FLOAT)
    }

    #[allow(clippy::needless_pass_by_value)]
    fn code<T: SdtArg>(_: T) -> u8 {
        T::TYPE_CODE
    }

    #[test]
    fn type_codes_follow_the_type() {
        assert_eq!(code(1u64), type_code::INT);
        assert_eq!(code(-1i8), type_code::INT);
        assert_eq!(code(1.0f32), type_code::FLOAT);
        assert_eq!(code(1.0f64), type_code::FLOAT);
        assert_eq!(code(c"x"), type_code::STR);
        assert_eq!(code(b"x".as_ptr()), type_code::INT);
        assert_eq!(code(StrPtr(b"x".as_ptr())), type_code::STRPTR);
        assert_eq!(code(StrLen(1)), type_code::STRLEN);
        assert_eq!(prefix(StrPtr(b"x".as_ptr())), (POINTER_SIZE, false));
        assert_eq!(prefix(StrLen(1)), (POINTER_SIZE, false));
    }

    #[test]
    fn sizes_and_signs_follow_the_type() {
        assert_eq!(prefix(1u8), (1, false));
        assert_eq!(prefix(1i16), (-2, false));
        assert_eq!(prefix(1u32), (4, false));
        assert_eq!(prefix(1i64), (-8, false));
        assert_eq!(prefix(1isize), (-(POINTER_SIZE), false));
        assert_eq!(prefix(true), (1, false));
        assert_eq!(prefix('x'), (4, false));
        assert_eq!(prefix(1.0f32), (4, true));
        assert_eq!(prefix(1.0f64), (8, true));
        let byte = 5u8;
        assert_eq!(prefix(&byte as &u8), (POINTER_SIZE, false));
        assert_eq!(prefix(&byte as *const u8), (POINTER_SIZE, false));
        assert_eq!(prefix(c"x"), (POINTER_SIZE, false));
    }

    #[test]
    fn negative_values_are_sign_extended() {
        assert_eq!((-1i8).register(), u64::MAX);
        assert_eq!(200u8.register(), 200);
        assert_eq!(2.5f64.register(), 2.5f64.to_bits());
        assert_eq!((-1.5f32).register(), u64::from((-1.5f32).to_bits()));
    }
}
