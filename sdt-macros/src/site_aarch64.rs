//! AArch64: the instructions at a site, an argument's operand text, and the
//! semaphore load. Compiled on every host (under `__sdt_aarch64_*` names,
//! aliased in `lib.rs` on AArch64), so that `tests/macros_aarch64.rs` can
//! render the text and assemble and link it with the AArch64 tools: no
//! AArch64 Rust standard library can be installed here.
//!
//! Integer arguments always name the 64-bit register (`x3`): the value is
//! sign- or zero-extended to 64 bits and the size prefix tells consumers
//! how much of it to keep (bcc and libbpf parse `xN` only). Floats are
//! `SIZEf@xN`, the register holding their bits.

#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_aarch64_site_insns {
    () => {
        "nop"
    };
}

/// One argument's operand in the note, `@xN`.
#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_aarch64_operand_asm {
    (($v:ident $t:ident $s:ident $w:ident $f:ident)) => {
        concat!(
            ".ifgt {",
            stringify!($w),
            "} - 8\n",
            ".error \"probe argument wider than a register\"\n",
            ".endif\n",
            ".ascii \"@{",
            stringify!($v),
            "}\""
        )
    };
}

/// The semaphore load's text (`{0}`: the output register).
#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_aarch64_enabled_template {
    ($p:ident $n:ident) => {
        concat!(
            $crate::__sdt_semaphore_asm!($p $n), "\n",
            "adrp {0}, ", $crate::__sdt_semaphore_symbol!($p $n), "\n",
            "ldrh {0:w}, [{0}, :lo12:", $crate::__sdt_semaphore_symbol!($p $n), "]"
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_aarch64_enabled {
    ($p:ident $n:ident) => {{
        let count: u32;
        // SAFETY: a 2-byte load from the semaphore this asm defines.
        unsafe {
            ::core::arch::asm!(
                $crate::__sdt_aarch64_enabled_template!($p $n),
                out(reg) count,
                options(readonly, nostack, preserves_flags)
            )
        }
        count != 0
    }};
}
