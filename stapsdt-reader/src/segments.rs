//! Link-time address → file offset, through the loadable segments, and
//! what a segment allows (a probe site must be executable, a semaphore
//! writable: libbpf refuses both otherwise, and so do we, by name).

use object::read::elf::{FileHeader, ProgramHeader};
use object::{elf, Endianness};

/// One `PT_LOAD` segment's mapping of addresses to file offsets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    vaddr: u64,
    offset: u64,
    filesz: u64,
    memsz: u64,
    /// `p_flags`: `PF_X`, `PF_W`, `PF_R`.
    flags: u32,
}

/// Where an address lies: its file offset and what its segment allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    pub(crate) file_offset: u64,
    pub(crate) flags: u32,
}

impl Placement {
    pub(crate) fn executable(&self) -> bool {
        self.flags & elf::PF_X != 0
    }

    pub(crate) fn writable(&self) -> bool {
        self.flags & elf::PF_W != 0
    }

    /// The flags as `readelf -l` prints them (`R E`, `RW `).
    pub(crate) fn flags_text(&self) -> String {
        [(elf::PF_R, 'R'), (elf::PF_W, 'W'), (elf::PF_X, 'E')]
            .iter()
            .map(|&(bit, c)| if self.flags & bit != 0 { c } else { ' ' })
            .collect()
    }
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
                    flags: ph.p_flags(endian),
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
        self.place(address).map(|p| p.file_offset)
    }

    /// The file offset of `address` and the flags of its segment.
    pub(crate) fn place(&self, address: u64) -> Option<Placement> {
        self.0.iter().find_map(|s| {
            let end = s.vaddr.checked_add(s.memsz.max(s.filesz))?;
            if s.vaddr <= address && address < end {
                // A hostile header can put the segment's offset near 2^64.
                Some(Placement {
                    file_offset: (address - s.vaddr).checked_add(s.offset)?,
                    flags: s.flags,
                })
            } else {
                None
            }
        })
    }
}
