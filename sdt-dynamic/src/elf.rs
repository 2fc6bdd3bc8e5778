//! The shared object of one provider, written byte by byte (ELF64,
//! little-endian): no compiler, assembler or template.
//!
//! ```text
//! file offset = virtual address (ET_DYN, linked at 0)
//! ┌ PT_LOAD r-x ─ ELF header, program headers, .hash, .dynsym, .dynstr,
//! │               .text (one fire function per probe), .stapsdt.base
//! ├ PT_LOAD rw- ─ .dynamic, .probes (one u16 semaphore per probe)   (page-aligned)
//! └ not loaded  ─ .note.stapsdt, .note.stapsdt.types, .shstrtab, section headers
//! ```
//!
//! The notes are `sys/sdt.h`'s: `.note.stapsdt` (owner `stapsdt`, type 3,
//! not allocated) with the site's pc, the address of `.stapsdt.base` and
//! the semaphore's address; the types note is the one
//! `stapsdt_reader::types::note` reads. Nothing in the loaded image holds
//! an absolute address (the loader relocates `.dynamic`'s pointers
//! itself), so the object needs no relocations. `.dynsym` names each fire
//! function `PROVIDER_NAME` and each semaphore `PROVIDER_NAME_semaphore`,
//! found with `dlsym` and shown by debuggers.

use crate::arch::Arch;
use crate::arg::ArgKind;

/// One probe to write.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    pub name: String,
    pub args: Vec<ArgKind>,
}

/// Where a written probe lives, as link-time addresses (= file offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePlace {
    pub fire: u64,
    pub semaphore: u64,
    pub fire_symbol: String,
    pub semaphore_symbol: String,
}

/// A written object.
#[derive(Debug, Clone)]
pub struct Image {
    pub bytes: Vec<u8>,
    pub probes: Vec<ProbePlace>,
}

const EHDR_SIZE: u64 = 64;
const PHDR_SIZE: u64 = 56;
const SHDR_SIZE: u64 = 64;
const SYM_SIZE: u64 = 24;
const DYN_SIZE: u64 = 16;
/// Fire functions start on 16-byte boundaries (padding is `int3`/zero).
const TEXT_ALIGN: u64 = 16;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_GNU_STACK: u32 = 0x6474_e551;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

const SHT_PROGBITS: u32 = 1;
const SHT_STRTAB: u32 = 3;
const SHT_HASH: u32 = 5;
const SHT_DYNAMIC: u32 = 6;
const SHT_NOTE: u32 = 7;
const SHT_DYNSYM: u32 = 11;
const SHF_WRITE: u64 = 1;
const SHF_ALLOC: u64 = 2;
const SHF_EXECINSTR: u64 = 4;

const DT_NULL: u64 = 0;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_STRSZ: u64 = 10;
const DT_SYMENT: u64 = 11;
const DT_SONAME: u64 = 14;

const STB_GLOBAL: u8 = 1;
const STT_OBJECT: u8 = 1;
const STT_FUNC: u8 = 2;

const NT_STAPSDT: u32 = 3;
const NT_STAPSDT_TYPES: u32 = 0x7473;

/// The sections, in file order; their indexes are section header indexes.
#[derive(Clone, Copy)]
enum Sec {
    Hash = 1,
    Dynsym,
    Dynstr,
    Text,
    Base,
    Dynamic,
    Probes,
    Note,
    Types,
    Shstrtab,
}
const SECTION_COUNT: usize = 11;

/// Little-endian output with alignment.
#[derive(Default)]
struct Out(Vec<u8>);

impl Out {
    fn pos(&self) -> u64 {
        self.0.len() as u64
    }
    fn align(&mut self, to: u64, fill: u8) {
        while !self.pos().is_multiple_of(to) {
            self.0.push(fill);
        }
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
}

/// A string table being built; offsets of added strings.
struct StrTab(Vec<u8>);

impl StrTab {
    fn new() -> StrTab {
        StrTab(vec![0])
    }
    fn add(&mut self, s: &str) -> u32 {
        let at = self.0.len() as u32;
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        at
    }
}

/// The System V ELF hash of a symbol name (`.hash`, what `dlsym` looks up).
fn elf_hash(name: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &c in name {
        h = (h << 4).wrapping_add(u32::from(c));
        let g = h & 0xf000_0000;
        if g != 0 {
            h ^= g >> 24;
        }
        h &= !g;
    }
    h
}

/// One ELF note: header, owner padded to 4, desc padded to 4.
fn note(out: &mut Vec<u8>, owner: &[u8], kind: u32, desc: &[u8]) {
    let pad = |v: &mut Vec<u8>| {
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
    };
    out.extend_from_slice(&(owner.len() as u32 + 1).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(owner);
    out.push(0);
    pad(out);
    out.extend_from_slice(desc);
    pad(out);
}

/// The note's argument string of a probe: `-4@0(%rdi) 8@8(%rdi) ...`.
pub(crate) fn note_args(arch: Arch, args: &[ArgKind]) -> String {
    args.iter()
        .flat_map(|a| a.slots())
        .enumerate()
        .map(|(i, slot)| format!("{}@{}", slot.prefix, arch.slot_operand(i)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The types note's words of a probe: `int str strptr strlen float`.
pub(crate) fn type_words(args: &[ArgKind]) -> String {
    args.iter()
        .flat_map(|a| a.slots())
        .map(|s| s.word)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Write the shared object of `provider` with `probes` for `arch`. Names
/// are assumed checked (see `provider.rs`): identifiers, no NUL.
pub fn write(arch: Arch, provider: &str, soname: &str, probes: &[ProbeSpec]) -> Image {
    let page = arch.page();
    let mut out = Out::default();

    // Symbols: 0 is the null symbol, then per probe its fire function and semaphore.
    let mut dynstr = StrTab::new();
    let soname_at = dynstr.add(soname);
    let mut places: Vec<ProbePlace> = probes
        .iter()
        .map(|p| ProbePlace {
            fire: 0,
            semaphore: 0,
            fire_symbol: format!("{provider}_{}", p.name),
            semaphore_symbol: format!("{provider}_{}_semaphore", p.name),
        })
        .collect();
    let sym_names: Vec<(u32, u32)> = places
        .iter()
        .map(|p| (dynstr.add(&p.fire_symbol), dynstr.add(&p.semaphore_symbol)))
        .collect();
    let nsyms = 1 + 2 * probes.len();

    // Layout of the loaded read-only/executable part, computed before writing.
    let phdr_count = 4u64;
    let hash_at = EHDR_SIZE + phdr_count * PHDR_SIZE;
    let nbucket = nsyms.max(1);
    let hash_size = 4 * (2 + nbucket + nsyms) as u64;
    let dynsym_at = (hash_at + hash_size).next_multiple_of(8);
    let dynstr_at = dynsym_at + SYM_SIZE * nsyms as u64;
    let text_at = (dynstr_at + dynstr.0.len() as u64).next_multiple_of(TEXT_ALIGN);
    let fire_len = arch.fire_code().len() as u64;
    let fire_stride = fire_len.next_multiple_of(TEXT_ALIGN);
    let text_size = fire_stride * probes.len() as u64;
    let base_at = text_at + text_size;
    let rx_end = base_at + 1;
    // The writable part starts on a page of its own.
    let dynamic_at = rx_end.next_multiple_of(page);
    let dyn_entries = 7u64;
    let probes_at = dynamic_at + DYN_SIZE * dyn_entries;
    let rw_end = probes_at + 2 * probes.len() as u64;
    for (i, place) in places.iter_mut().enumerate() {
        place.fire = text_at + fire_stride * i as u64;
        place.semaphore = probes_at + 2 * i as u64;
    }

    // Notes (not loaded): pc, base, semaphore, provider, name, args.
    let mut notes = Vec::new();
    let mut types = Vec::new();
    for (probe, place) in probes.iter().zip(&places) {
        let mut desc = Vec::new();
        for addr in [place.fire, base_at, place.semaphore] {
            desc.extend_from_slice(&addr.to_le_bytes());
        }
        for text in [provider, &probe.name, &note_args(arch, &probe.args)] {
            desc.extend_from_slice(text.as_bytes());
            desc.push(0);
        }
        note(&mut notes, b"stapsdt", NT_STAPSDT, &desc);
        let mut desc = Vec::new();
        for text in [provider, &probe.name, &type_words(&probe.args)] {
            desc.extend_from_slice(text.as_bytes());
            desc.push(0);
        }
        note(&mut types, b"stap-sdt", NT_STAPSDT_TYPES, &desc);
    }

    let mut shstrtab = StrTab::new();
    let sec_names: Vec<u32> = [
        ".hash",
        ".dynsym",
        ".dynstr",
        ".text",
        ".stapsdt.base",
        ".dynamic",
        ".probes",
        ".note.stapsdt",
        ".note.stapsdt.types",
        ".shstrtab",
    ]
    .iter()
    .map(|n| shstrtab.add(n))
    .collect();
    let note_at = rw_end.next_multiple_of(4);
    let types_at = note_at + notes.len() as u64;
    let shstrtab_at = types_at + types.len() as u64;
    let shdrs_at = (shstrtab_at + shstrtab.0.len() as u64).next_multiple_of(8);

    // ELF header.
    out.bytes(b"\x7fELF");
    out.bytes(&[2, 1, 1, 0]); // ELFCLASS64, little-endian, version 1, System V ABI
    out.bytes(&[0; 8]);
    out.u16(3); // ET_DYN
    out.u16(arch.machine());
    out.u32(1);
    out.u64(0); // no entry point
    out.u64(EHDR_SIZE);
    out.u64(shdrs_at);
    out.u32(0);
    out.u16(EHDR_SIZE as u16);
    out.u16(PHDR_SIZE as u16);
    out.u16(phdr_count as u16);
    out.u16(SHDR_SIZE as u16);
    out.u16(SECTION_COUNT as u16);
    out.u16(Sec::Shstrtab as u16);

    // Program headers.
    let phdr = |out: &mut Out, kind: u32, flags: u32, at: u64, size: u64, align: u64| {
        out.u32(kind);
        out.u32(flags);
        out.u64(at); // offset
        out.u64(at); // vaddr
        out.u64(at); // paddr
        out.u64(size); // filesz
        out.u64(size); // memsz
        out.u64(align);
    };
    phdr(&mut out, PT_LOAD, PF_R | PF_X, 0, rx_end, page);
    phdr(
        &mut out,
        PT_LOAD,
        PF_R | PF_W,
        dynamic_at,
        rw_end - dynamic_at,
        page,
    );
    phdr(
        &mut out,
        PT_DYNAMIC,
        PF_R | PF_W,
        dynamic_at,
        DYN_SIZE * dyn_entries,
        8,
    );
    // A stack that is not executable (without it, the loader would make
    // the process's stack executable, and recent glibc refuses).
    phdr(&mut out, PT_GNU_STACK, PF_R | PF_W, 0, 0, 16);
    debug_assert_eq!(out.pos(), hash_at);

    // .hash: every symbol in the chain of its bucket.
    let names: Vec<&str> = places
        .iter()
        .flat_map(|p| [p.fire_symbol.as_str(), p.semaphore_symbol.as_str()])
        .collect();
    let mut buckets = vec![0u32; nbucket];
    let mut chains = vec![0u32; nsyms];
    for (i, name) in names.iter().enumerate() {
        let index = i as u32 + 1;
        let b = (elf_hash(name.as_bytes()) as usize) % nbucket;
        chains[index as usize] = buckets[b];
        buckets[b] = index;
    }
    out.u32(nbucket as u32);
    out.u32(nsyms as u32);
    buckets.iter().chain(&chains).for_each(|&v| out.u32(v));

    // .dynsym
    out.align(8, 0);
    debug_assert_eq!(out.pos(), dynsym_at);
    out.bytes(&[0; SYM_SIZE as usize]);
    for ((fire_name, sem_name), place) in sym_names.iter().zip(&places) {
        for (name, info, section, value, size) in [
            (*fire_name, STT_FUNC, Sec::Text as u16, place.fire, fire_len),
            (
                *sem_name,
                STT_OBJECT,
                Sec::Probes as u16,
                place.semaphore,
                2,
            ),
        ] {
            out.u32(name);
            out.u8(STB_GLOBAL << 4 | info);
            out.u8(0); // default visibility
            out.u16(section);
            out.u64(value);
            out.u64(size);
        }
    }
    debug_assert_eq!(out.pos(), dynstr_at);
    out.bytes(&dynstr.0);

    // .text: fire functions, padded with int3 (x86-64) / zero (an
    // undefined instruction on AArch64).
    let fill = if arch == Arch::X86_64 { 0xcc } else { 0 };
    out.align(TEXT_ALIGN, fill);
    debug_assert_eq!(out.pos(), text_at);
    for _ in probes {
        out.bytes(arch.fire_code());
        out.align(TEXT_ALIGN, fill);
    }
    debug_assert_eq!(out.pos(), base_at);
    out.u8(0); // .stapsdt.base: one byte, as sys/sdt.h

    // .dynamic
    out.align(page, 0);
    debug_assert_eq!(out.pos(), dynamic_at);
    for (tag, value) in [
        (DT_HASH, hash_at),
        (DT_STRTAB, dynstr_at),
        (DT_SYMTAB, dynsym_at),
        (DT_STRSZ, dynstr.0.len() as u64),
        (DT_SYMENT, SYM_SIZE),
        (DT_SONAME, u64::from(soname_at)),
        (DT_NULL, 0),
    ] {
        out.u64(tag);
        out.u64(value);
    }
    // .probes: semaphores, zero.
    debug_assert_eq!(out.pos(), probes_at);
    for _ in probes {
        out.u16(0);
    }

    // Not loaded: notes, section names, section headers.
    out.align(4, 0);
    debug_assert_eq!(out.pos(), note_at);
    out.bytes(&notes);
    out.bytes(&types);
    out.bytes(&shstrtab.0);
    out.align(8, 0);
    debug_assert_eq!(out.pos(), shdrs_at);

    struct Shdr {
        sec: Sec,
        kind: u32,
        flags: u64,
        at: u64,
        size: u64,
        link: u32,
        info: u32,
        align: u64,
        entsize: u64,
    }
    let alloc = SHF_ALLOC;
    let none = 0; // sh_link of sections that link to none
    let shdrs = [
        Shdr {
            sec: Sec::Hash,
            kind: SHT_HASH,
            flags: alloc,
            at: hash_at,
            size: hash_size,
            link: Sec::Dynsym as u32,
            info: 0,
            align: 8,
            entsize: 4,
        },
        Shdr {
            sec: Sec::Dynsym,
            kind: SHT_DYNSYM,
            flags: alloc,
            at: dynsym_at,
            size: SYM_SIZE * nsyms as u64,
            link: Sec::Dynstr as u32,
            info: 1, // the first global symbol
            align: 8,
            entsize: SYM_SIZE,
        },
        Shdr {
            sec: Sec::Dynstr,
            kind: SHT_STRTAB,
            flags: alloc,
            at: dynstr_at,
            size: dynstr.0.len() as u64,
            link: none,
            info: 0,
            align: 1,
            entsize: 0,
        },
        Shdr {
            sec: Sec::Text,
            kind: SHT_PROGBITS,
            flags: alloc | SHF_EXECINSTR,
            at: text_at,
            size: text_size,
            link: none,
            info: 0,
            align: TEXT_ALIGN,
            entsize: 0,
        },
        Shdr {
            sec: Sec::Base,
            kind: SHT_PROGBITS,
            flags: alloc,
            at: base_at,
            size: 1,
            link: none,
            info: 0,
            align: 1,
            entsize: 0,
        },
        Shdr {
            sec: Sec::Dynamic,
            kind: SHT_DYNAMIC,
            flags: alloc | SHF_WRITE,
            at: dynamic_at,
            size: DYN_SIZE * dyn_entries,
            link: Sec::Dynstr as u32,
            info: 0,
            align: 8,
            entsize: DYN_SIZE,
        },
        Shdr {
            sec: Sec::Probes,
            kind: SHT_PROGBITS,
            flags: alloc | SHF_WRITE,
            at: probes_at,
            size: 2 * probes.len() as u64,
            link: none,
            info: 0,
            align: 2,
            entsize: 0,
        },
        Shdr {
            sec: Sec::Note,
            kind: SHT_NOTE,
            flags: 0,
            at: note_at,
            size: notes.len() as u64,
            link: none,
            info: 0,
            align: 4,
            entsize: 0,
        },
        Shdr {
            sec: Sec::Types,
            kind: SHT_NOTE,
            flags: 0,
            at: types_at,
            size: types.len() as u64,
            link: none,
            info: 0,
            align: 4,
            entsize: 0,
        },
        Shdr {
            sec: Sec::Shstrtab,
            kind: SHT_STRTAB,
            flags: 0,
            at: shstrtab_at,
            size: shstrtab.0.len() as u64,
            link: none,
            info: 0,
            align: 1,
            entsize: 0,
        },
    ];
    out.bytes(&[0; SHDR_SIZE as usize]);
    for s in &shdrs {
        out.u32(sec_names[s.sec as usize - 1]);
        out.u32(s.kind);
        out.u64(s.flags);
        out.u64(if s.flags & alloc != 0 { s.at } else { 0 }); // addr
        out.u64(s.at); // offset
        out.u64(s.size);
        out.u32(s.link);
        out.u32(s.info);
        out.u64(s.align);
        out.u64(s.entsize);
    }
    debug_assert_eq!(shdrs.len() + 1, SECTION_COUNT);
    Image {
        bytes: out.0,
        probes: places,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_hash_matches_the_abi_examples() {
        // Values from the System V ABI's hash function (as binutils computes).
        assert_eq!(elf_hash(b""), 0);
        assert_eq!(elf_hash(b"printf"), 0x077905a6);
        assert_eq!(elf_hash(b"exit"), 0x0006cf04);
    }

    #[test]
    fn note_arguments_are_slots_of_the_block() {
        use ArgKind::*;
        let args = [I8, U16, StrLen, F64, Str, Pointer];
        assert_eq!(
            note_args(Arch::X86_64, &args),
            "-1@0(%rdi) 2@8(%rdi) 8@16(%rdi) 8@24(%rdi) 8@32(%rdi) 8@40(%rdi) 8@48(%rdi)"
        );
        assert_eq!(note_args(Arch::Aarch64, &args[..2]), "-1@[x0] 2@[x0, 8]");
        assert_eq!(type_words(&args), "int int strptr strlen float str int");
    }
}
