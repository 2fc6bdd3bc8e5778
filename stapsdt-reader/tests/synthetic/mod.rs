//! A tiny ELF writer for tests: objects whose every byte the test controls,
//! in both classes and both byte orders, with notes that may lie.

#![allow(dead_code)]

/// One SDT note's fields, written as a v3 descriptor.
pub struct NoteSpec {
    pub pc: u64,
    pub base: u64,
    pub semaphore: u64,
    pub provider: &'static str,
    pub name: &'static str,
    pub args: &'static str,
}

pub struct ElfSpec {
    pub is_64: bool,
    pub big_endian: bool,
    pub machine: u16,
    /// Address where the single PT_LOAD maps file offset 0.
    pub load_vaddr: u64,
    /// Its `p_flags` (`PF_X` 1, `PF_W` 2, `PF_R` 4): RWX unless a test
    /// wants a site or semaphore in a segment that does not allow it.
    pub load_flags: u32,
    /// Address of `.stapsdt.base`; `None` leaves the section out.
    pub stapsdt_base: Option<u64>,
    /// Raw contents of `.note.stapsdt`; build with [`note_bytes`].
    pub note_section: Vec<u8>,
}

impl ElfSpec {
    pub fn x86_64(notes: &[NoteSpec]) -> ElfSpec {
        ElfSpec {
            is_64: true,
            big_endian: false,
            machine: 62,
            load_vaddr: 0,
            load_flags: 7,
            stapsdt_base: Some(0x3000),
            note_section: notes_bytes(notes, true, false),
        }
    }
}

fn put(out: &mut Vec<u8>, value: u64, size: usize, big: bool) {
    let bytes = value.to_le_bytes();
    let mut word = bytes[..size].to_vec();
    if big {
        word.reverse();
    }
    out.extend_from_slice(&word);
}

/// The bytes of one note: header, owner, padded descriptor.
pub fn note_bytes(n: &NoteSpec, is_64: bool, big: bool) -> Vec<u8> {
    let word = if is_64 { 8 } else { 4 };
    let mut desc = Vec::new();
    for v in [n.pc, n.base, n.semaphore] {
        put(&mut desc, v, word, big);
    }
    for s in [n.provider, n.name, n.args] {
        desc.extend_from_slice(s.as_bytes());
        desc.push(0);
    }
    raw_note(b"stapsdt\0", 3, &desc, big)
}

/// A note with arbitrary owner, type and descriptor (the declared sizes are honest).
pub fn raw_note(owner: &[u8], n_type: u32, desc: &[u8], big: bool) -> Vec<u8> {
    let mut out = Vec::new();
    put(&mut out, owner.len() as u64, 4, big);
    put(&mut out, desc.len() as u64, 4, big);
    put(&mut out, n_type as u64, 4, big);
    out.extend_from_slice(owner);
    pad4(&mut out);
    out.extend_from_slice(desc);
    pad4(&mut out);
    out
}

pub fn notes_bytes(notes: &[NoteSpec], is_64: bool, big: bool) -> Vec<u8> {
    notes
        .iter()
        .flat_map(|n| note_bytes(n, is_64, big))
        .collect()
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// Offsets of interesting fields in the built file, for tests that corrupt them.
pub struct Layout {
    pub note_offset: usize,
    pub shoff: usize,
    pub shnum_field: usize,
}

pub fn build(spec: &ElfSpec) -> (Vec<u8>, Layout) {
    let (ehsize, phsize, shsize) = if spec.is_64 {
        (64, 56, 64)
    } else {
        (52, 32, 40)
    };
    let big = spec.big_endian;
    let word = if spec.is_64 { 8 } else { 4 };
    let shstrtab = b"\0.note.stapsdt\0.stapsdt.base\0.shstrtab\0".to_vec();
    let note_offset = ehsize + phsize;
    let base_offset = note_offset + spec.note_section.len();
    let shstr_offset = base_offset + 1;
    let mut shoff = shstr_offset + shstrtab.len();
    while !shoff.is_multiple_of(8) {
        shoff += 1;
    }
    let with_base = spec.stapsdt_base.is_some();
    let shnum = if with_base { 4 } else { 3 };
    let file_size = shoff + shnum * shsize;

    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF");
    out.push(if spec.is_64 { 2 } else { 1 });
    out.push(if big { 2 } else { 1 });
    out.push(1);
    out.resize(16, 0);
    put(&mut out, 3, 2, big); // ET_DYN
    put(&mut out, spec.machine as u64, 2, big);
    put(&mut out, 1, 4, big);
    put(&mut out, 0, word, big); // entry
    put(&mut out, ehsize as u64, word, big); // phoff
    put(&mut out, shoff as u64, word, big);
    put(&mut out, 0, 4, big); // flags
    put(&mut out, ehsize as u64, 2, big);
    put(&mut out, phsize as u64, 2, big);
    put(&mut out, 1, 2, big); // phnum
    put(&mut out, shsize as u64, 2, big);
    let shnum_field = out.len();
    put(&mut out, shnum as u64, 2, big);
    put(&mut out, (shnum - 1) as u64, 2, big); // shstrndx
    assert_eq!(out.len(), ehsize);

    // One PT_LOAD: the whole file, plus room for addresses past it.
    let memsz = 0x10000u64.max(file_size as u64);
    put(&mut out, 1, 4, big);
    if spec.is_64 {
        put(&mut out, spec.load_flags as u64, 4, big);
        put(&mut out, 0, 8, big); // offset
        put(&mut out, spec.load_vaddr, 8, big);
        put(&mut out, spec.load_vaddr, 8, big);
        put(&mut out, file_size as u64, 8, big);
        put(&mut out, memsz, 8, big);
        put(&mut out, 0x1000, 8, big);
    } else {
        put(&mut out, 0, 4, big);
        put(&mut out, spec.load_vaddr, 4, big);
        put(&mut out, spec.load_vaddr, 4, big);
        put(&mut out, file_size as u64, 4, big);
        put(&mut out, memsz, 4, big);
        put(&mut out, spec.load_flags as u64, 4, big);
        put(&mut out, 0x1000, 4, big);
    }
    assert_eq!(out.len(), note_offset);
    out.extend_from_slice(&spec.note_section);
    out.push(0x90);
    out.extend_from_slice(&shstrtab);
    out.resize(shoff, 0);

    let section = |out: &mut Vec<u8>, name: u32, ty: u32, addr: u64, offset: usize, size: usize| {
        put(out, name as u64, 4, big);
        put(out, ty as u64, 4, big);
        put(out, 0, word, big); // flags
        put(out, addr, word, big);
        put(out, offset as u64, word, big);
        put(out, size as u64, word, big);
        put(out, 0, 4, big); // link
        put(out, 0, 4, big); // info
        put(out, 4, word, big); // align
        put(out, 0, word, big); // entsize
    };
    section(&mut out, 0, 0, 0, 0, 0);
    section(&mut out, 1, 7, 0, note_offset, spec.note_section.len());
    if let Some(addr) = spec.stapsdt_base {
        section(&mut out, 15, 1, addr, base_offset, 1);
    }
    section(&mut out, 29, 3, 0, shstr_offset, shstrtab.len());
    assert_eq!(out.len(), file_size);
    (
        out,
        Layout {
            note_offset,
            shoff,
            shnum_field,
        },
    )
}
