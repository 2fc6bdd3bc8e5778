//! Static probes (SystemTap SDT / USDT) for Rust, on stable, without a
//! build script.
//!
//! ```
//! use sdt_macros::{enabled, probe, probe_lazy};
//!
//! fn handle(id: u64, path: &str, status: i32) {
//!     // A NOP here; a `.note.stapsdt` entry naming `shop:request` with the
//!     // arguments `8@%rXX 8@%rXX 8@%rXX -4@%eXX` (id, path pointer, path
//!     // length, status) for bpftrace, GDB, perf, libbpf and `stap-sdt`.
//!     probe!(shop, request, id, str(path), status);
//!
//!     // Arguments evaluated only while a tracer is attached (the probe's
//!     // semaphore is non-zero).
//!     probe_lazy!(shop, detail, expensive_summary());
//!     if enabled!(shop, detail) {
//!         // ... work only a tracer wants
//!     }
//! }
//! # fn expensive_summary() -> u64 { 42 }
//! # handle(1, "/", 200);
//! ```
//!
//! # Arguments
//!
//! Each argument's type sets its size and signedness in the note
//! ([`SdtArg`]): `u8`..`u64`, `usize` (`1@`..`8@`), `i8`..`i64`, `isize`
//! (`-1@`..`-8@`), `bool` (`1@`), `char` (`4@`), raw pointers and
//! references (the address, `8@`), `&CStr` (the address of its
//! NUL-terminated bytes), `f32`/`f64` (`4f@`/`8f@`, the float's bits in a
//! general register, as `sys/sdt.h` emits for C floats).
//!
//! `str(expr)` passes anything that is `AsRef<[u8]>` (`&str`, `String`,
//! `&[u8]`, `Vec<u8>`) as two arguments, pointer and length, borrowed, not
//! copied. Rust strings have no NUL terminator, so consumers read them with
//! the length: bpftrace `str(arg1, arg2)`, GDB `*(char *) $_probe_arg1 @
//! $_probe_arg2`. When a
//! consumer wants a C string (bpftrace's one-argument `str(argN)`, tools
//! that cannot take a length), pass a `&CStr` instead: one argument, the
//! address of NUL-terminated bytes.
//!
//! Each probe also gets a types note (`.note.stapsdt.types`, owner
//! `stap-sdt`, not allocated) naming what each argument is: `str(expr)`
//! is `strptr strlen`, `&CStr` is `str`, `f32`/`f64` are `float`, the rest
//! `int`. `stap-sdt list` shows it; tracers that do not know the note
//! ignore it.
//!
//! A probe takes at most 12 arguments (`str(..)` counts as two), the limit
//! of GDB, libbpf and bpftrace; more is a compile error:
//!
//! ```compile_fail
//! sdt_macros::probe!(p, thirteen, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13);
//! ```
//!
//! # Semaphores
//!
//! Every probe has a semaphore (`unsigned short` in `.probes`, named
//! `_.stapsdt.sema.PROVIDER.NAME`, shared by every site of that probe in
//! the executable or shared object); tracers raise it while attached.
//! [`enabled!`] reads it; [`probe_lazy!`] evaluates its arguments only
//! when it is non-zero. [`probe!`] itself never reads it: its cost when
//! nothing is attached is the argument set-up and one `nop`.
//!
//! # Typed providers
//!
//! [`provider!`] declares probes with their argument types once and
//! generates a function per probe, so a misspelt probe is a compile error.
//!
//! # Targets
//!
//! x86-64 and AArch64 Linux/Android (ELF; the AArch64 text is checked by
//! assembling and linking it with the AArch64 tools, as no AArch64 Rust
//! standard library was at hand). On every other target the
//! macros compile to nothing: arguments are still type-checked, `probe!`
//! evaluates them and emits no code, and `enabled!` is `false`.
//!
//! With the `cheap-sites` feature (x86-64) each site is `nop` followed by
//! `lea -128(%rsp),%rsp; nop5; lea 128(%rsp),%rsp`, whose 5-byte NOP the
//! kernel can optimise (see `docs/macros.md`).

#![cfg_attr(not(test), no_std)]

#[doc(hidden)]
pub mod arg;
mod collect;
mod note;
mod provider;

pub use arg::SdtArg;

mod site_aarch64;
mod site_none;
#[cfg(all(
    target_arch = "x86_64",
    any(target_os = "linux", target_os = "android")
))]
mod site_x86_64;

// The macros `__sdt_site!` expands to, per target.
#[cfg(all(
    target_arch = "x86_64",
    any(target_os = "linux", target_os = "android")
))]
#[doc(hidden)]
pub use __sdt_elf_probe as __sdt_asm_probe;

#[cfg(all(
    target_arch = "aarch64",
    any(target_os = "linux", target_os = "android")
))]
#[doc(hidden)]
pub use {
    __sdt_aarch64_enabled as __sdt_asm_enabled, __sdt_aarch64_operand_asm as __sdt_operand_asm,
    __sdt_aarch64_site_insns as __sdt_site_insns, __sdt_elf_probe as __sdt_asm_probe,
};

#[cfg(not(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    any(target_os = "linux", target_os = "android")
)))]
#[doc(hidden)]
pub use {__sdt_none_enabled as __sdt_asm_enabled, __sdt_none_probe as __sdt_asm_probe};

/// A static probe: `probe!(provider, name, args...)`.
///
/// `provider` and `name` are identifiers. Arguments are expressions of a
/// type implementing [`SdtArg`], or `str(expr)` for a byte string (pointer
/// and length). They are evaluated once, in order, whether or not a tracer
/// is attached; see [`probe_lazy!`] for arguments that cost something.
#[macro_export]
macro_rules! probe {
    ($provider:ident, $name:ident $(, $($args:tt)*)?) => {
        $crate::__sdt_collect!($provider $name [] []
            [(v0 T0 s0 w0 f0) (v1 T1 s1 w1 f1) (v2 T2 s2 w2 f2) (v3 T3 s3 w3 f3)
             (v4 T4 s4 w4 f4) (v5 T5 s5 w5 f5) (v6 T6 s6 w6 f6) (v7 T7 s7 w7 f7)
             (v8 T8 s8 w8 f8) (v9 T9 s9 w9 f9) (v10 T10 s10 w10 f10) (v11 T11 s11 w11 f11)]
            [$($($args)*)?])
    };
}

/// Whether a tracer is attached to `provider:name`: its semaphore is
/// non-zero. A 2-byte load and a compare.
#[macro_export]
macro_rules! enabled {
    ($provider:ident, $name:ident) => {
        $crate::__sdt_asm_enabled!($provider $name)
    };
}

/// [`probe!`] whose argument expressions are evaluated only while a
/// tracer is attached (the probe's semaphore is non-zero).
#[macro_export]
macro_rules! probe_lazy {
    ($provider:ident, $name:ident $(, $($args:tt)*)?) => {
        if $crate::enabled!($provider, $name) {
            $crate::probe!($provider, $name $(, $($args)*)?);
        }
    };
}
