//! ELF objects (32/64-bit, either endian) and static archives → [`Object`]s.
//!
//! Files are memory-mapped and only the section table, the note sections
//! and (when an operand names a symbol) the symbol tables are touched, so a
//! scan of a whole system reads a small fraction of each file.

use crate::args::{parse_args, Arch, Operand};
use crate::note::{self, NT_STAPSDT, STAPSDT_OWNER};
use crate::segments::{Placement, Segments};
use crate::types::{self, note as types_note};
use crate::{kind_of, source, symbols, Endianness as End, Error, FileKind, Location, Object};
use crate::{Probe, Semaphore};
use object::read::archive::ArchiveFile;
use object::read::elf::{FileHeader, NoteIterator, SectionHeader};
use object::{elf, Endianness};
use std::collections::HashMap;
use std::path::Path;

/// What to compute beyond the notes themselves.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Look up the source file and line of each location (DWARF, also in
    /// separate debug files).
    pub source_lines: bool,
}

/// Read every object in `path`: one for an ELF file, one per ELF member of a
/// static archive.
pub fn read_path(path: &Path) -> Result<Vec<Object>, Error> {
    read_path_with(path, &ReadOptions::default())
}

pub fn read_path_with(path: &Path, options: &ReadOptions) -> Result<Vec<Object>, Error> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::new(&name, e.to_string()))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::new(&name, e.to_string()))?;
    if !meta.is_file() {
        return Err(Error::new(&name, "not a regular file"));
    }
    if meta.len() == 0 {
        return Err(Error::new(&name, "empty file, not an ELF object"));
    }
    // SAFETY: the map is read-only and lives only for this call. A file
    // truncated underneath us could fault; the tools this replaces share that.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::new(&name, e.to_string()))?;
    let data: &[u8] = &map;
    let mut objects = read_objects(data, &name)?;
    if options.source_lines {
        for object in &mut objects {
            source::annotate(object, data, path);
        }
    }
    Ok(objects)
}

/// Read every object in an image held in memory: one for an ELF file, one
/// per ELF member of a static archive. What [`read_path`] does after
/// mapping the file; public so that the archive reader can be fuzzed
/// without files.
pub fn read_objects(data: &[u8], name: &str) -> Result<Vec<Object>, Error> {
    match kind_of(data) {
        FileKind::Elf => Ok(vec![read_bytes(data, name)?]),
        FileKind::Archive => read_archive(data, name),
        FileKind::Other => Err(Error::new(name, "not an ELF file or archive")),
    }
}

fn read_archive(data: &[u8], name: &str) -> Result<Vec<Object>, Error> {
    let archive =
        ArchiveFile::parse(data).map_err(|e| Error::new(name, format!("bad archive: {e}")))?;
    let mut objects = Vec::new();
    for member in archive.members() {
        let member = member.map_err(|e| Error::new(name, format!("bad archive member: {e}")))?;
        let member_name = String::from_utf8_lossy(member.name());
        let display = format!("{name}({member_name})");
        let Ok(bytes) = member.data(data) else {
            // Thin archives keep members outside; their paths are relative to the archive.
            continue;
        };
        if kind_of(bytes) != FileKind::Elf {
            continue;
        }
        match read_bytes(bytes, &display) {
            Ok(object) => objects.push(object),
            Err(e) => objects.push(broken_member(&display, e)),
        }
    }
    Ok(objects)
}

/// Bytes copied into 8-byte-aligned storage.
struct AlignedCopy {
    words: Vec<u64>,
    len: usize,
}

impl AlignedCopy {
    fn new(bytes: &[u8]) -> AlignedCopy {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        // SAFETY: `words` holds at least `bytes.len()` bytes and u64 has no invalid bit patterns.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                words.as_mut_ptr().cast::<u8>(),
                bytes.len(),
            );
        }
        AlignedCopy {
            words,
            len: bytes.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the storage is `len` initialised bytes; u8 has alignment 1.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }
}

/// A member that could not be read is kept as an object with one diagnostic,
/// so the rest of the archive is still listed.
fn broken_member(display: &str, error: Error) -> Object {
    Object {
        path: display.to_string(),
        arch: Arch::Unknown,
        bits: 0,
        endian: End::Little,
        elf_type: "other",
        build_id: None,
        stapsdt_base: None,
        probes: Vec::new(),
        pid: None,
        open_path: None,
        load_bias: None,
        diagnostics: vec![error.message],
    }
}

/// Read one ELF image held in memory. `name` is used in errors and as the object's path.
pub fn read_bytes(data: &[u8], name: &str) -> Result<Object, Error> {
    // The ELF parser wants its headers aligned; archive members start at
    // even offsets only, and callers' buffers may be anywhere.
    if !(data.as_ptr() as usize).is_multiple_of(8) {
        return read_bytes(AlignedCopy::new(data).bytes(), name);
    }
    // e_ident[EI_CLASS] is the fifth byte.
    match data.get(4) {
        Some(&elf::ELFCLASS64) => read_elf::<elf::FileHeader64<Endianness>>(data, name),
        Some(&elf::ELFCLASS32) => read_elf::<elf::FileHeader32<Endianness>>(data, name),
        Some(other) if data.starts_with(b"\x7fELF") => {
            Err(Error::new(name, format!("unknown ELF class {other}")))
        }
        _ => Err(Error::new(name, "not an ELF file")),
    }
}

/// The libraries an ELF file asks the loader for (its `DT_NEEDED` entries,
/// in order): `["libpython3.11.so.1.0", "libc.so.6"]`. Empty for a static
/// program or a file without a dynamic section.
pub fn needed_libraries(path: &Path) -> Result<Vec<String>, Error> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::new(&name, e.to_string()))?;
    // SAFETY: read-only map for this call, as in `read_path_with`; page-aligned.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::new(&name, e.to_string()))?;
    let data: &[u8] = &map;
    match data.get(4) {
        Some(&elf::ELFCLASS64) if data.starts_with(b"\x7fELF") => {
            needed_in::<elf::FileHeader64<Endianness>>(data, &name)
        }
        Some(&elf::ELFCLASS32) if data.starts_with(b"\x7fELF") => {
            needed_in::<elf::FileHeader32<Endianness>>(data, &name)
        }
        _ => Err(Error::new(&name, "not an ELF file")),
    }
}

fn needed_in<H: FileHeader<Endian = Endianness>>(
    data: &[u8],
    name: &str,
) -> Result<Vec<String>, Error> {
    use object::read::elf::Dyn;
    let fail = |what: &str, e: object::Error| Error::new(name, format!("{what}: {e}"));
    let header = H::parse(data).map_err(|e| fail("bad ELF header", e))?;
    let endian = header.endian().map_err(|e| fail("bad ELF header", e))?;
    let sections = header
        .sections(endian, data)
        .map_err(|e| fail("bad section table", e))?;
    let Some((entries, link)) = sections
        .dynamic(endian, data)
        .map_err(|e| fail("bad dynamic section", e))?
    else {
        return Ok(Vec::new());
    };
    let strings = sections
        .strings(endian, data, link)
        .map_err(|e| fail("bad dynamic string table", e))?;
    Ok(entries
        .iter()
        .filter(|d| d.tag32(endian) == Some(elf::DT_NEEDED))
        .filter_map(|d| d.string(endian, strings).ok())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}

fn read_elf<H: FileHeader<Endian = Endianness>>(data: &[u8], name: &str) -> Result<Object, Error> {
    let fail = |what: &str, e: object::Error| Error::new(name, format!("{what}: {e}"));
    let header = H::parse(data).map_err(|e| fail("bad ELF header", e))?;
    let endian = header.endian().map_err(|e| fail("bad ELF header", e))?;
    let sections = header
        .sections(endian, data)
        .map_err(|e| fail("bad section table", e))?;
    let mut diagnostics = Vec::new();
    let segments = match header.program_headers(endian, data) {
        Ok(headers) => Segments::from_headers::<H>(headers, endian),
        Err(e) => {
            diagnostics.push(format!("bad program headers ({e}); no file offsets"));
            Segments::default()
        }
    };
    let is_64 = header.is_type_64();
    let arch = Arch::from_elf(header.e_machine(endian), is_64);
    let elf_type = match header.e_type(endian) {
        elf::ET_EXEC => "exec",
        elf::ET_DYN => "dyn",
        elf::ET_REL => "rel",
        elf::ET_CORE => "core",
        _ => "other",
    };
    let stapsdt_base = sections
        .section_by_name(endian, b".stapsdt.base")
        .map(|(_, s)| s.sh_addr(endian).into());

    let mut builder = ProbeBuilder::default();
    let mut build_id = None;
    let mut declared_types = Vec::new();
    for (index, section) in sections.iter().enumerate() {
        if section.sh_type(endian) != elf::SHT_NOTE {
            continue;
        }
        let notes = match section.notes(endian, data) {
            Ok(Some(notes)) => notes,
            Ok(None) => continue,
            Err(e) => {
                diagnostics.push(format!("note section {index}: {e}"));
                continue;
            }
        };
        let address_size = if is_64 { 8 } else { 4 };
        let mut context = NoteContext {
            endian,
            address_size,
            arch,
            stapsdt_base,
            segments: &segments,
            elf_type,
            diagnostics: &mut diagnostics,
            build_id: &mut build_id,
            declared_types: &mut declared_types,
        };
        read_notes::<H>(notes, index, &mut context, &mut builder);
    }

    let mut probes = builder.probes;
    types::assign(&mut probes, declared_types, &mut diagnostics);
    resolve_symbols::<H>(&mut probes, &sections, &segments, endian, data);
    Ok(Object {
        path: name.to_string(),
        arch,
        bits: if is_64 { 64 } else { 32 },
        endian: if endian == Endianness::Little {
            End::Little
        } else {
            End::Big
        },
        elf_type,
        build_id,
        stapsdt_base,
        probes,
        pid: None,
        open_path: None,
        load_bias: None,
        diagnostics,
    })
}

struct NoteContext<'a> {
    endian: Endianness,
    address_size: usize,
    arch: Arch,
    stapsdt_base: Option<u64>,
    segments: &'a Segments,
    elf_type: &'static str,
    diagnostics: &'a mut Vec<String>,
    build_id: &'a mut Option<String>,
    declared_types: &'a mut Vec<types::Declared>,
}

fn read_notes<'data, H: FileHeader<Endian = Endianness>>(
    mut notes: NoteIterator<'data, H>,
    section_index: usize,
    cx: &mut NoteContext<'_>,
    builder: &mut ProbeBuilder<'data>,
) {
    let mut ordinal = 0usize;
    loop {
        let note = match notes.next() {
            Ok(Some(note)) => note,
            Ok(None) => break,
            Err(e) => {
                cx.diagnostics.push(format!(
                    "note section {section_index}, note {ordinal}: {e}; the rest of the section is skipped"
                ));
                break;
            }
        };
        ordinal += 1;
        let n_type = note.n_type(cx.endian);
        if note.name() == b"GNU" && n_type == elf::NT_GNU_BUILD_ID {
            *cx.build_id = Some(note.desc().iter().map(|b| format!("{b:02x}")).collect());
            continue;
        }
        if note.name() == types_note::TYPES_OWNER && n_type == types_note::NT_STAPSDT_TYPES {
            match types_note::decode(note.desc()) {
                Ok(t) => cx.declared_types.push(types::Declared {
                    provider: t.provider.to_string(),
                    name: t.name.to_string(),
                    types: t.types,
                }),
                Err(e) => cx.diagnostics.push(format!(
                    "types note {ordinal} in section {section_index}: {e}; its probe is left untyped"
                )),
            }
            continue;
        }
        if note.name() != STAPSDT_OWNER {
            continue;
        }
        if n_type != NT_STAPSDT {
            cx.diagnostics.push(format!(
                "stapsdt note {ordinal}: type {n_type} is not 3 (only v3 notes are defined)"
            ));
            continue;
        }
        match note::decode(note.desc(), cx.address_size, cx.endian) {
            Ok(raw) => builder.add(raw, cx),
            Err(e) => cx.diagnostics.push(format!(
                "stapsdt note {ordinal} in section {section_index}: {e}"
            )),
        }
    }
}

/// What an address of a note must be: code to probe, or a semaphore.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Code,
    Semaphore,
}

impl Need {
    /// Whether a segment allows it: code must be executable; a semaphore
    /// writable, since the kernel raises it by writing it.
    fn allowed_in(self, place: &Placement) -> bool {
        match self {
            Need::Code => place.executable(),
            Need::Semaphore => place.writable(),
        }
    }
}

/// The file offset of a note's `address`, or `None` with a diagnostic when
/// it lies outside every segment or in one that does not allow what it
/// is for. Relocatable objects (no segments) are not checked.
fn place(
    cx: &mut NoteContext<'_>,
    address: u64,
    need: Need,
    (provider, name): (&str, &str),
) -> Option<u64> {
    let checked = cx.elf_type != "rel" && !cx.segments.is_empty();
    let (what, adjective, consequence) = match need {
        Need::Code => ("address", "executable", "; it cannot be probed"),
        Need::Semaphore => ("semaphore", "writable", "; it is left alone"),
    };
    let problem = match cx.segments.place(address) {
        Some(p) if !checked || need.allowed_in(&p) => return Some(p.file_offset),
        Some(p) => format!(
            "lies in a segment that is not {adjective} (flags {:?}){consequence}",
            p.flags_text()
        ),
        None if !checked => return None,
        // (The semaphore's message has always ended there.)
        None if need == Need::Semaphore => "lies outside every loadable segment".to_string(),
        None => format!("lies outside every loadable segment{consequence}"),
    };
    cx.diagnostics
        .push(format!("{provider}:{name}: {what} {address:#x} {problem}"));
    None
}

/// Groups locations by provider and name, keeping first-appearance order.
/// Keys borrow the mapped file, so grouping allocates nothing per note.
#[derive(Default)]
struct ProbeBuilder<'data> {
    probes: Vec<Probe>,
    index: HashMap<(&'data str, &'data str), usize>,
}

impl<'data> ProbeBuilder<'data> {
    fn add(&mut self, raw: note::RawNote<'data>, cx: &mut NoteContext<'_>) {
        // Prelink moves the code but not the note; `.stapsdt.base` moved with
        // the code, so the difference is the displacement to apply.
        let delta = match cx.stapsdt_base {
            Some(base) if raw.base != 0 => base.wrapping_sub(raw.base),
            _ => 0,
        };
        let address = raw.pc.wrapping_add(delta);
        let label = (raw.provider, raw.name);
        // A site must be code: a uprobe elsewhere never fires.
        let file_offset = place(cx, address, Need::Code, label);
        let semaphore = (raw.semaphore != 0).then(|| {
            let address = raw.semaphore.wrapping_add(delta);
            // The kernel raises a semaphore by writing it; one in a
            // read-only segment is a corrupt object, not ours to write.
            let file_offset = place(cx, address, Need::Semaphore, label);
            Semaphore {
                address,
                file_offset,
                runtime_address: None,
            }
        });
        let location = Location {
            address,
            file_offset,
            note_base: raw.base,
            semaphore,
            args_raw: raw.args.to_string(),
            args: parse_args(raw.args, cx.arch),
            runtime_address: None,
            source: None,
        };
        let key = (raw.provider, raw.name);
        match self.index.get(&key) {
            Some(&i) => self.probes[i].locations.push(location),
            None => {
                self.index.insert(key, self.probes.len());
                self.probes.push(Probe {
                    provider: raw.provider.to_string(),
                    name: raw.name.to_string(),
                    locations: vec![location],
                    types: None,
                });
            }
        }
    }
}

/// The suffix of an i386 GOT-relative symbol reference.
const GOTOFF: &str = "@GOTOFF";
/// The symbol at the GOT, which i386 PIC code keeps in a register.
const GOT_SYMBOL: &str = "_GLOBAL_OFFSET_TABLE_";

/// Fill in `symbol_address` (and its file offset) of every `sym(%rip)`-style
/// operand, and the GOT's address for `sym@GOTOFF` ones.
fn resolve_symbols<'data, H: FileHeader<Endian = Endianness>>(
    probes: &mut [Probe],
    sections: &object::read::elf::SectionTable<'data, H, &'data [u8]>,
    segments: &Segments,
    endian: Endianness,
    data: &'data [u8],
) {
    let mut wanted: Vec<String> = Vec::new();
    for_each_symbolic(probes, |symbol| {
        let mut want = |name: &str| {
            if !wanted.iter().any(|w| w == name) {
                wanted.push(name.to_string());
            }
        };
        want(symbol.strip_suffix(GOTOFF).unwrap_or(symbol));
        if symbol.ends_with(GOTOFF) {
            want(GOT_SYMBOL);
        }
    });
    if wanted.is_empty() {
        return;
    }
    let found = symbols::resolve(&wanted, sections, endian, data);
    // A stripped object has no `_GLOBAL_OFFSET_TABLE_`; it is the start of `.got.plt`.
    let got = found.get(GOT_SYMBOL).copied().or_else(|| {
        sections
            .section_by_name(endian, b".got.plt")
            .map(|(_, s)| s.sh_addr(endian).into())
    });
    for probe in probes.iter_mut() {
        for location in &mut probe.locations {
            for arg in &mut location.args {
                let Operand::Memory(mem) = &mut arg.operand else {
                    continue;
                };
                let Some(symbol) = mem.symbol.as_deref() else {
                    continue;
                };
                let got_relative = symbol.ends_with(GOTOFF);
                let Some(value) = found.get(symbol.strip_suffix(GOTOFF).unwrap_or(symbol)) else {
                    continue;
                };
                if got_relative {
                    let Some(got) = got else { continue };
                    mem.got_address = Some(got);
                }
                let address = value.wrapping_add(mem.disp as u64);
                mem.symbol_address = Some(address);
                mem.symbol_file_offset = segments.file_offset(address);
            }
        }
    }
}

fn for_each_symbolic(probes: &[Probe], mut f: impl FnMut(&str)) {
    for location in probes.iter().flat_map(|p| &p.locations) {
        for arg in &location.args {
            if let Operand::Memory(mem) = &arg.operand {
                if let Some(symbol) = &mem.symbol {
                    f(symbol);
                }
            }
        }
    }
}
