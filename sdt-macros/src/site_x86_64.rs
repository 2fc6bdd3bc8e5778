//! x86-64: the instructions at a site, an argument's operand text, and the
//! semaphore load.
//!
//! The `asm!` blocks use Rust's default Intel syntax (so that one `asm!`
//! invocation in `note.rs` serves every architecture), but the note's
//! argument strings are AT&T, as every consumer expects: `%` is written
//! before the register name Rust substitutes (`{v:e}` is `eax`).

/// The instructions at the note's pc. Plain: one `nop`, as `sys/sdt.h`.
#[cfg(not(feature = "cheap-sites"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_site_insns {
    () => {
        "nop"
    };
}

/// The instructions at the note's pc with the `cheap-sites` feature: the
/// `nop` every consumer attaches to, then a 5-byte NOP the kernel can
/// optimise into a CALL, fenced by `lea`s that move `%rsp` 128 bytes down
/// so the CALL's return address lands below the red zone instead of on
/// the caller's live data. A tracer that recognises these exact bytes may
/// attach at the `nop5` (pc + 6), adding 128 to `%rsp`-relative operands
/// (this crate emits none). No CFI is emitted for the adjustment: an
/// unwinder that uses `%rsp`-based CFI and stops exactly at the `nop5` sees
/// a frame 128 bytes off; frame-pointer unwinding is unaffected.
#[cfg(feature = "cheap-sites")]
#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_site_insns {
    () => {
        "nop
         lea rsp, [rsp - 128]
         .byte 0x0f, 0x1f, 0x44, 0x00, 0x00
         lea rsp, [rsp + 128]"
    };
}

/// One argument's operand in the note, `@%reg`. 8-byte values name the
/// 64-bit register (`%rax`, `%r9`), smaller ones the 32-bit register
/// (`%eax`, `%r9d`), the value being extended to 64 bits anyway. Not the
/// 8- and 16-bit names `sys/sdt.h` would print: GDB 13 rejects `%r9b` (it
/// knows `%r9l`), and with it every argument of the probe. (The Intel
/// syntax `asm!` prints `eax`; the `%` is written here.)
#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_operand_asm {
    (($v:ident $t:ident $s:ident $w:ident $f:ident)) => {
        concat!(
            ".if {",
            stringify!($w),
            "} <= 4\n",
            ".ascii \"@%{",
            stringify!($v),
            ":e}\"\n",
            ".else\n",
            ".ascii \"@%{",
            stringify!($v),
            "}\"\n",
            ".endif"
        )
    };
}

/// Read the probe's semaphore: what `sys/sdt.h`'s `__builtin_expect(sema,
/// 0)` compiles to, a 2-byte load.
#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_asm_enabled {
    ($p:ident $n:ident) => {{
        let count: u32;
        // SAFETY: a 2-byte load from the semaphore this asm defines (or
        // finds already defined) in `.probes`.
        unsafe {
            ::core::arch::asm!(
                $crate::__sdt_semaphore_asm!($p $n),
                concat!(
                    "movzx {0:e}, word ptr [rip + ",
                    $crate::__sdt_semaphore_symbol!($p $n),
                    "]"
                ),
                out(reg) count,
                options(readonly, nostack, preserves_flags)
            )
        }
        count != 0
    }};
}
