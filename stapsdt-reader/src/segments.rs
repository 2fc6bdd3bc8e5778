//! Link-time address → file offset, through the loadable segments.

use object::read::elf::{FileHeader, ProgramHeader};
use object::{elf, Endianness};

/// One `PT_LOAD` segment's mapping of addresses to file offsets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    vaddr: u64,
    offset: u64,
    filesz: u64,
    memsz: u64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Segments(Vec<Segment>);

impl Segments {
    pub(crate) fn from_headers<H: FileHeader<Endian = Endianness>>(
        headers: &[H::ProgramHeader],
        endian: Endianness,
    ) -> Segments {
        Segments(
            headers
                .iter()
                .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
                .map(|ph| Segment {
                    vaddr: ph.p_vaddr(endian).into(),
                    offset: ph.p_offset(endian).into(),
                    filesz: ph.p_filesz(endian).into(),
                    memsz: ph.p_memsz(endian).into(),
                })
                .collect(),
        )
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The file offset of `address`. Addresses in the zero-filled tail of a
    /// segment (`.bss`) have no bytes in the file but are still mapped
    /// relative to the segment's offset, which is what uprobes and
    /// `ref_ctr_offset` compute with, so they are accepted too.
    pub(crate) fn file_offset(&self, address: u64) -> Option<u64> {
        self.0.iter().find_map(|s| {
            let end = s.vaddr.checked_add(s.memsz.max(s.filesz))?;
            if s.vaddr <= address && address < end {
                // A hostile header can put the segment's offset near 2^64.
                (address - s.vaddr).checked_add(s.offset)
            } else {
                None
            }
        })
    }
}
