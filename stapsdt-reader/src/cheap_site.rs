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

/// The x86-64 page size.
pub const PAGE_SIZE: u64 = 4096;

/// Whether the 5-byte nop of a site at `site_offset` (the note's pc, as a
/// file offset or an address) lies within one page. That nop is the
/// instruction a tracer rewrites (the kernel's uprobe optimisation into a
/// call, or an in-process patch); rewritten across two pages it could not
/// be replaced as one unit, so such a site is treated as an ordinary one.
/// File offsets and addresses of a loadable segment agree modulo the page
/// size, so either may be given.
pub fn nop5_within_one_page(site_offset: u64) -> bool {
    let start = site_offset.wrapping_add(NOP5_OFFSET) % PAGE_SIZE;
    start + 5 <= PAGE_SIZE
}

/// Read the bytes at a site's file offset and tell whether it is a cheap
/// site whose 5-byte nop does not cross a page boundary.
pub fn file_has_cheap_site(file: &std::fs::File, file_offset: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let mut code = [0u8; BYTES.len()];
    nop5_within_one_page(file_offset)
        && file.read_exact_at(&mut code, file_offset).is_ok()
        && is_cheap_site(&code)
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
    fn a_nop5_across_a_page_boundary_is_not_cheap() {
        // The nop5 starts 6 bytes after the site: sites at 4086..=4089 put
        // it across the boundary at 4096.
        assert!(nop5_within_one_page(0));
        assert!(nop5_within_one_page(4085)); // nop5 at 4091..=4095
        for site in 4086..=4089 {
            assert!(!nop5_within_one_page(site), "{site}");
            assert!(!nop5_within_one_page(site + 7 * PAGE_SIZE), "{site}");
        }
        assert!(nop5_within_one_page(4090)); // nop5 from 4096
        assert!(nop5_within_one_page(u64::MAX - 3), "wraps without overflow");
    }

    /// The same bytes are cheap or not by where they lie in the file.
    #[test]
    fn files_are_checked_for_the_boundary_too() {
        use std::io::Write;
        let mut file = tempfile::tempfile().unwrap();
        let mut data = vec![0u8; 2 * PAGE_SIZE as usize];
        data[100..119].copy_from_slice(&BYTES);
        data[4087..4106].copy_from_slice(&BYTES);
        file.write_all(&data).unwrap();
        assert!(file_has_cheap_site(&file, 100));
        assert!(!file_has_cheap_site(&file, 4087));
        assert!(!file_has_cheap_site(&file, 101));
    }
}
