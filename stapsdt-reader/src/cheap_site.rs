//! The opt-in cheap probe site of `sdt.h` and `sdt-macros` (x86-64):
//!
//! ```text
//! nop                      90                        <- the note's pc
//! lea -128(%rsp),%rsp      48 8d 64 24 80
//! nopl 0(%rax,%rax,1)      0f 1f 44 00 00            <- pc + 6: a 5-byte nop
//! lea 128(%rsp),%rsp       48 8d a4 24 80 00 00 00
//! ```
//!
//! The kernel optimises a uprobe on a 5-byte nop into a CALL, which is
//! cheaper per hit than the int3 of a 1-byte nop; the CALL writes below
//! `%rsp`, so the site moves `%rsp` past the red zone first. A tracer that
//! recognises these exact bytes attaches at the 5-byte nop and adds
//! [`RSP_ADJUST`] to `%rsp`-relative operands. Recognition is here, beside
//! the note parser, so every consumer agrees on the shape; it is not done
//! while listing (it would read a code page per site), only by consumers
//! that attach.

/// The bytes of a cheap site, starting at the note's pc.
pub const BYTES: [u8; 19] = [
    0x90, // nop
    0x48, 0x8d, 0x64, 0x24, 0x80, // lea -0x80(%rsp),%rsp
    0x0f, 0x1f, 0x44, 0x00, 0x00, // nopl 0x0(%rax,%rax,1)
    0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00, // lea 0x80(%rsp),%rsp
];

/// Offset of the 5-byte nop from the note's pc.
pub const NOP5_OFFSET: u64 = 6;

/// How far below its value at the pc `%rsp` is at the 5-byte nop.
pub const RSP_ADJUST: i64 = 128;

/// Whether `code` (read at the note's pc) is a cheap site.
pub fn is_cheap_site(code: &[u8]) -> bool {
    code.starts_with(&BYTES)
}

/// Whether the 5-byte nop at this file offset (or address: pages keep
/// their offsets) crosses a 4 KiB page boundary: then no single page holds
/// the instruction, and a tracer that rewrites it in place does not.
pub fn nop5_crosses_page(nop5_offset: u64) -> bool {
    nop5_offset % 4096 > 4096 - 5
}

/// Read the bytes at a site's file offset and tell whether it is a cheap site.
pub fn file_has_cheap_site(file: &std::fs::File, file_offset: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let mut code = [0u8; BYTES.len()];
    file.read_exact_at(&mut code, file_offset).is_ok() && is_cheap_site(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_exactly_the_cheap_site() {
        assert!(is_cheap_site(&BYTES));
        let mut longer = BYTES.to_vec();
        longer.extend_from_slice(&[0xc3]);
        assert!(is_cheap_site(&longer));
        assert!(!is_cheap_site(&BYTES[..18]));
        let mut other = BYTES;
        other[5] = 0x7f; // lea -0x81 would not match
        assert!(!is_cheap_site(&other));
        assert!(!is_cheap_site(&[0x90, 0x90]));
    }

    #[test]
    fn a_nop5_across_pages_is_told() {
        assert!(!nop5_crosses_page(4096 - 5));
        assert!(nop5_crosses_page(4096 - 4));
        assert!(nop5_crosses_page(2 * 4096 - 1));
        assert!(!nop5_crosses_page(8192));
    }
}
