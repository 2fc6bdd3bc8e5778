//! What differs between architectures: the machine number, the page size
//! segments are aligned to, the bytes of a probe's fire function, and how
//! a note names a slot of the argument block.
//!
//! Every fire function takes one argument, the address of the block of
//! 8-byte slots (`%rdi`, `x0`), and every note argument is a memory operand
//! off that register. So a probe has as many arguments as the note format
//! allows (12) whatever the calling convention passes in registers, doubles
//! need no floating-point register, and every consumer that reads
//! `N@OFFSET(%reg)` (GDB, bpftrace/bcc, libbpf, our engine) reads them.

/// The architecture an object is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

/// x86-64 fire function: the cheap site of `sdt.h` and `sdt-macros`
/// (`stapsdt_reader::cheap_site::BYTES`: `nop; lea -128(%rsp),%rsp; nop5;
/// lea 128(%rsp),%rsp`; the note's pc is the `nop`, the engine attaches at
/// the `nop5`, which the kernel turns into a CALL that must not land on the
/// red zone), then `ret`. The tests check these bytes against the reader's.
const X86_64_FIRE: [u8; 20] = [
    0x90, // nop                          <- the note's pc
    0x48, 0x8d, 0x64, 0x24, 0x80, // lea -0x80(%rsp),%rsp
    0x0f, 0x1f, 0x44, 0x00, 0x00, // nopl 0x0(%rax,%rax,1)
    0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00, // lea 0x80(%rsp),%rsp
    0xc3, // ret
];

/// AArch64 fire function: `nop` (the note's pc, as `sys/sdt.h`), `ret`.
/// Little-endian instruction words.
const AARCH64_FIRE: [u8; 8] = [
    0x1f, 0x20, 0x03, 0xd5, // nop
    0xc0, 0x03, 0x5f, 0xd6, // ret
];

impl Arch {
    /// The architecture this library was compiled for, if it can load
    /// objects of it.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }

    /// `e_machine`.
    pub(crate) fn machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
        }
    }

    /// Segment alignment: the largest page size of the architecture (as
    /// the linkers' default max-page-size), so the object loads on every
    /// kernel configuration.
    pub(crate) fn page(self) -> u64 {
        match self {
            Arch::X86_64 => 0x1000,
            Arch::Aarch64 => 0x10000,
        }
    }

    /// The bytes of one probe's fire function; the note's pc is its first byte.
    pub fn fire_code(self) -> &'static [u8] {
        match self {
            Arch::X86_64 => &X86_64_FIRE,
            Arch::Aarch64 => &AARCH64_FIRE,
        }
    }

    /// The operand of slot `index` of the block: `16(%rdi)`, `[x0, 16]`.
    pub(crate) fn slot_operand(self, index: usize) -> String {
        let offset = index * 8;
        match self {
            Arch::X86_64 => format!("{offset}(%rdi)"),
            Arch::Aarch64 if offset == 0 => "[x0]".to_string(),
            Arch::Aarch64 => format!("[x0, {offset}]"),
        }
    }
}
