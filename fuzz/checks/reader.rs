//! Properties of the reader's parsers, shared by the fuzz targets
//! (`fuzz/fuzz_targets/*.rs`) and the regression tests that replay the
//! corpus in `cargo test` (`stapsdt-reader/tests/fuzz_regressions.rs`), so
//! that both check exactly the same thing. Each function panics when a
//! property fails; libFuzzer records the input as a crash.

use object::read::elf::{FileHeader, SectionHeader};
use object::{elf, Endianness};
use stapsdt_reader::args::parse_arg;
use stapsdt_reader::types::{self, note as types_note};
use stapsdt_reader::{parse_args, Arch, Arg, Memory, Operand, Register};

/// Every architecture with an operand grammar, and Unknown. The args
/// target picks one with the input's first byte.
pub const ARCHES: [Arch; 10] = [
    Arch::X86_64,
    Arch::I386,
    Arch::Aarch64,
    Arch::Arm,
    Arch::S390x,
    Arch::Ppc64,
    Arch::Ppc,
    Arch::Riscv64,
    Arch::Riscv32,
    Arch::Unknown,
];

/// One ELF object from untrusted bytes.
///
/// - an error names the input;
/// - every `stapsdt` v3 note that `object`'s own note iterator yields is
///   either a location or a diagnostic, never silently dropped, and the
///   count of locations equals the count of well-formed notes (judged here
///   independently of the reader's decoder);
/// - probes are unique by provider and name and each has a location;
/// - types, when present, match every location's argument count;
/// - every argument satisfies [`arg_string`]'s properties.
pub fn elf_object(data: &[u8]) {
    let object = match stapsdt_reader::read_bytes(data, "fuzzed") {
        Ok(object) => object,
        Err(e) => {
            assert!(e.to_string().starts_with("fuzzed: "), "unnamed error: {e}");
            return;
        }
    };
    let locations: usize = object.probes.iter().map(|p| p.locations.len()).sum();
    if let Some(expected) = expected_locations(data) {
        assert_eq!(
            locations, expected.well_formed,
            "the reader found {locations} locations, object's note iterator {} well-formed stapsdt notes",
            expected.well_formed
        );
        let skipped = object
            .diagnostics
            .iter()
            // Descriptors that do not decode; notes of another type are
            // reported too, but are not counted above.
            .filter(|d| d.starts_with("stapsdt note ") && d.contains(" in section "))
            .count();
        assert_eq!(
            skipped,
            expected.all - expected.well_formed,
            "malformed stapsdt notes without a diagnostic: {:?}",
            object.diagnostics
        );
    }
    let mut seen = std::collections::HashSet::new();
    for probe in &object.probes {
        assert!(
            seen.insert((&probe.provider, &probe.name)),
            "probe {}:{} listed twice",
            probe.provider,
            probe.name
        );
        assert!(!probe.locations.is_empty());
        assert!(!probe.provider.is_empty() && !probe.name.is_empty());
        for location in &probe.locations {
            if let Some(types) = &probe.types {
                assert_eq!(types.len(), location.args.len(), "types of {}", probe.name);
            }
            let reparsed = parse_args(&location.args_raw, object.arch);
            assert_eq!(reparsed.len(), location.args.len());
            arg_string(&location.args_raw, object.arch);
        }
    }
}

/// A static archive (or an ELF file) through the reader's byte entry point:
/// an error names the input; otherwise one object per ELF member that
/// `object`'s archive parser finds, each named `archive(member)`.
pub fn archive(data: &[u8]) {
    let objects = match stapsdt_reader::read_objects(data, "fuzzed.a") {
        Ok(objects) => objects,
        Err(e) => {
            assert!(
                e.to_string().starts_with("fuzzed.a: "),
                "unnamed error: {e}"
            );
            return;
        }
    };
    if !data.starts_with(b"!<arch>\n") && !data.starts_with(b"!<thin>\n") {
        assert_eq!(objects.len(), 1, "an ELF file is one object");
        return;
    }
    let archive = object::read::archive::ArchiveFile::parse(data).expect("the reader parsed it");
    let mut members = 0;
    for member in archive.members() {
        // The reader stops at the first broken member header with an error,
        // so reaching here means every header parsed.
        let member = member.expect("the reader read every member");
        if member
            .data(data)
            .is_ok_and(|bytes| bytes.starts_with(b"\x7fELF"))
        {
            members += 1;
        }
    }
    assert_eq!(objects.len(), members, "one object per ELF member");
    for object in &objects {
        assert!(
            object.path.starts_with("fuzzed.a(") && object.path.ends_with(')'),
            "{}",
            object.path
        );
    }
}

struct Expected {
    /// stapsdt-owned notes of type 3, as object's iterator yields them.
    all: usize,
    /// Those whose descriptor is well formed.
    well_formed: usize,
}

/// Count stapsdt notes with `object`'s section table and note iterator,
/// stopping in a section where the iterator stops (as the reader does).
/// `None` when object cannot read the headers (the reader then fails too,
/// or the counts are not comparable).
fn expected_locations(data: &[u8]) -> Option<Expected> {
    // Aligned storage, as the reader makes for itself.
    let mut words = vec![0u64; data.len().div_ceil(8)];
    let bytes: &mut [u8] = bytemuck_bytes(&mut words, data.len());
    bytes.copy_from_slice(data);
    let data: &[u8] = bytes;
    match data.get(4) {
        Some(&elf::ELFCLASS64) => count::<elf::FileHeader64<Endianness>>(data, 8),
        Some(&elf::ELFCLASS32) => count::<elf::FileHeader32<Endianness>>(data, 4),
        _ => None,
    }
}

fn bytemuck_bytes(words: &mut [u64], len: usize) -> &mut [u8] {
    // SAFETY: `words` owns at least `len` initialised bytes (len <= 8 *
    // words.len()), u8 has alignment 1 and every bit pattern is valid; the
    // returned slice borrows `words` mutably, so nothing else aliases it.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) }
}

fn count<H: FileHeader<Endian = Endianness>>(data: &[u8], word: usize) -> Option<Expected> {
    let header = H::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let sections = header.sections(endian, data).ok()?;
    let mut expected = Expected {
        all: 0,
        well_formed: 0,
    };
    for section in sections.iter() {
        if section.sh_type(endian) != elf::SHT_NOTE {
            continue;
        }
        let Ok(Some(mut notes)) = section.notes(endian, data) else {
            continue;
        };
        while let Ok(Some(note)) = notes.next() {
            if note.name() != b"stapsdt" || note.n_type(endian) != 3 {
                continue;
            }
            expected.all += 1;
            if well_formed(note.desc(), word) {
                expected.well_formed += 1;
            }
        }
    }
    Some(expected)
}

/// Three address words, then non-empty provider and name and an optional
/// argument string, each NUL-terminated UTF-8.
fn well_formed(desc: &[u8], word: usize) -> bool {
    let Some(strings) = desc.get(3 * word..) else {
        return false;
    };
    let mut parts = strings.split(|&b| b == 0);
    let (Some(provider), Some(name)) = (parts.next(), parts.next()) else {
        return false;
    };
    // split() yields a last part after the final NUL: a terminated string
    // leaves a tail, an unterminated one does not.
    let terminated = |part: &[u8]| {
        part.as_ptr() as usize + part.len() < strings.as_ptr() as usize + strings.len()
    };
    if !terminated(provider) || !terminated(name) || provider.is_empty() || name.is_empty() {
        return false;
    }
    let after_name = name.as_ptr() as usize + name.len() + 1 - strings.as_ptr() as usize;
    let args = &strings[after_name..];
    let args_ok = args.is_empty()
        || args
            .iter()
            .position(|&b| b == 0)
            .is_some_and(|end| std::str::from_utf8(&args[..end]).is_ok());
    args_ok && std::str::from_utf8(provider).is_ok() && std::str::from_utf8(name).is_ok()
}

/// An argument string of `arch`:
/// - nothing is dropped: one argument per spec, each keeping its text;
/// - every parsed argument prints back (in the assembler syntax of
///   `arch`) to a spec that parses to the same size, sign, float flag and
///   operand, alone and in a string of all of them.
pub fn arg_string(text: &str, arch: Arch) {
    let args = parse_args(text, arch);
    assert!(args.len() <= text.split_whitespace().count(), "{text:?}");
    for arg in &args {
        assert!(!arg.raw.is_empty(), "{text:?}");
        assert!(text.contains(&arg.raw), "{:?} not in {text:?}", arg.raw);
        if let Operand::Unparsed { reason } = &arg.operand {
            assert!(reason.contains(&arg.raw), "{reason}");
        }
    }
    let parsed: Vec<&Arg> = args.iter().filter(|a| a.is_parsed()).collect();
    let mut printed = Vec::new();
    for arg in &parsed {
        let spec = print_arg(arg, arch);
        let again = parse_arg(&spec, arch);
        assert_eq!(
            (again.size, again.signed, again.float, &again.operand),
            (arg.size, arg.signed, arg.float, &arg.operand),
            "{:?} printed as {spec:?} ({arch:?})",
            arg.raw
        );
        printed.push(spec);
    }
    let joined = parse_args(&printed.join(" "), arch);
    assert_eq!(joined.len(), parsed.len(), "{printed:?}");
    for (a, b) in joined.iter().zip(&parsed) {
        assert_eq!(a.operand, b.operand, "{printed:?}");
    }
}

/// The canonical spec of a parsed argument: `[-]SIZE[f]@OPERAND`.
pub fn print_arg(arg: &Arg, arch: Arch) -> String {
    let sign = if arg.signed { "-" } else { "" };
    let float = if arg.float { "f" } else { "" };
    format!(
        "{sign}{}{float}@{}",
        arg.size,
        print_operand(&arg.operand, arch)
    )
}

fn reg(r: &Register, arch: Arch) -> String {
    match arch {
        Arch::X86_64 | Arch::I386 | Arch::S390x => format!("%{}", r.name),
        _ => r.name.to_string(),
    }
}

/// A signed number as GAS writes it, `-N` for negatives; i64::MIN's
/// magnitude is 2^63, which the reader reads back by wrapping.
fn num(v: i64) -> String {
    if v < 0 {
        format!("-{}", v.unsigned_abs())
    } else {
        v.to_string()
    }
}

fn print_operand(operand: &Operand, arch: Arch) -> String {
    match operand {
        Operand::Register { register } => reg(register, arch),
        Operand::Immediate { value } => match arch {
            Arch::X86_64 | Arch::I386 => format!("${}", num(*value)),
            Arch::Arm | Arch::Aarch64 => format!("#{}", num(*value)),
            Arch::Ppc64 | Arch::Ppc => format!("i{}", num(*value)),
            _ => num(*value),
        },
        Operand::Memory(m) => print_memory(m, arch),
        Operand::Unparsed { .. } => unreachable!("only parsed operands are printed"),
    }
}

fn print_memory(m: &Memory, arch: Arch) -> String {
    let base = m.base.as_ref().map(|r| reg(r, arch));
    let index = m.index.as_ref().map(|r| reg(r, arch));
    match arch {
        Arch::X86_64 | Arch::I386 => {
            let mut disp = m.symbol.clone().unwrap_or_default();
            if m.disp != 0 || (m.symbol.is_none() && base.is_none() && index.is_none()) {
                if m.symbol.is_some() && m.disp >= 0 {
                    disp.push('+');
                }
                disp.push_str(&num(m.disp));
            }
            if base.is_none() && index.is_none() {
                return disp;
            }
            let mut regs = base.unwrap_or_default();
            if let Some(index) = index {
                regs = format!("{regs},{index},{}", m.scale);
            }
            format!("{disp}({regs})")
        }
        Arch::Aarch64 => match (base, index) {
            (Some(b), Some(i)) => format!("[{b}, {i}]"),
            (Some(b), None) if m.disp != 0 => format!("[{b}, #{}]", num(m.disp)),
            (Some(b), None) => format!("[{b}]"),
            other => panic!("aarch64 memory without a base: {other:?}"),
        },
        Arch::Arm => match (base, index) {
            (Some(b), Some(i)) if m.scale != 1 => {
                format!("[{b}, {i}, lsl #{}]", m.scale.trailing_zeros())
            }
            (Some(b), Some(i)) => format!("[{b}, {i}]"),
            (Some(b), None) if m.disp != 0 => format!("[{b}, #{}]", num(m.disp)),
            (Some(b), None) => format!("[{b}]"),
            other => panic!("arm memory without a base: {other:?}"),
        },
        Arch::Ppc64 | Arch::Ppc => match (base, index) {
            (Some(b), Some(i)) => format!("{b},{i}"),
            (Some(b), None) => format!("{}({b})", num(m.disp)),
            other => panic!("ppc memory without a base: {other:?}"),
        },
        Arch::S390x => match (base, index) {
            (Some(b), Some(i)) => format!("{}({i},{b})", num(m.disp)),
            (Some(b), None) => format!("{}({b})", num(m.disp)),
            other => panic!("s390x memory without a base: {other:?}"),
        },
        Arch::Riscv64 | Arch::Riscv32 => match (base, index) {
            (Some(b), None) => format!("{}({b})", num(m.disp)),
            other => panic!("riscv memory: {other:?}"),
        },
        Arch::Unknown => panic!("an Unknown operand parsed"),
    }
}

/// The args target's input: the first byte picks the architecture, the
/// rest is the argument string.
pub fn arg_input(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    arg_string(text, ARCHES[selector as usize % ARCHES.len()]);
}

/// A types note descriptor: decoded notes encode back to a descriptor
/// that decodes to the same note; a type list prints back to itself.
pub fn types_note(data: &[u8]) {
    if let Ok(note) = types_note::decode(data) {
        let encoded = types_note::encode(note.provider, note.name, &note.types);
        assert_eq!(types_note::decode(&encoded).as_ref(), Ok(&note));
        assert!(data.starts_with(&encoded[..note.provider.len() + note.name.len() + 2]));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(list) = types::parse_type_list(text) {
            let printed = types::to_text(&list);
            assert_eq!(types::parse_type_list(&printed), Ok(list.clone()));
            assert_eq!(
                printed.split(' ').filter(|w| !w.is_empty()).count(),
                list.len()
            );
        }
    }
}
