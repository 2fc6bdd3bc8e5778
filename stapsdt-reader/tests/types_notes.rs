//! Types notes (`.note.stapsdt.types`, owner `stap-sdt`, type 0x7473) in
//! objects whose every byte the test controls: a good note types its
//! probe; a hostile one (truncated, unterminated, unknown words, the wrong
//! number of words, two notes that disagree) is a diagnostic on the object
//! and leaves the probe untyped, never a panic or a lost probe.

mod synthetic;

use stapsdt_reader::types::note::{encode, NT_STAPSDT_TYPES};
use stapsdt_reader::{read_bytes, ArgType, Object};
use synthetic::{build, notes_bytes, raw_note, ElfSpec, NoteSpec};
use ArgType::*;

const NOTES: [NoteSpec; 2] = [
    NoteSpec {
        pc: 0x1100,
        base: 0x3000,
        semaphore: 0,
        provider: "p",
        name: "a",
        args: "8@%rdi 8@%rsi 8f@%rdx",
    },
    NoteSpec {
        pc: 0x1200,
        base: 0x3000,
        semaphore: 0,
        provider: "p",
        name: "b",
        args: "-4@%eax",
    },
];

fn types_note(desc: &[u8]) -> Vec<u8> {
    raw_note(b"stap-sdt\0", NT_STAPSDT_TYPES, desc, false)
}

/// The two probes, then `extra` notes in the same note section.
fn object_with(extra: &[Vec<u8>]) -> Object {
    let mut spec = ElfSpec::x86_64(&NOTES);
    for note in extra {
        spec.note_section.extend_from_slice(note);
    }
    let (bytes, _) = build(&spec);
    let object = read_bytes(&bytes, "synthetic").expect("readable");
    assert_eq!(object.probes.len(), 2, "both probes are kept: {object:?}");
    object
}

fn types_of<'a>(object: &'a Object, name: &str) -> Option<&'a [ArgType]> {
    let probe = object.probes.iter().find(|p| p.name == name).unwrap();
    probe.types.as_deref()
}

#[test]
fn a_types_note_types_its_probe() {
    let object = object_with(&[
        types_note(&encode("p", "a", &[StrPtr, StrLen, Float])),
        // A second, identical copy (another compilation unit): merged.
        types_note(&encode("p", "a", &[StrPtr, StrLen, Float])),
        // A probe whose site the linker dropped: ignored.
        types_note(&encode("p", "gone", &[Int])),
    ]);
    assert_eq!(object.diagnostics, Vec::<String>::new());
    assert_eq!(types_of(&object, "a"), Some(&[StrPtr, StrLen, Float][..]));
    assert_eq!(types_of(&object, "b"), None);
    let json = serde_json::to_value(&object).unwrap();
    assert_eq!(
        json["probes"][0]["types"],
        serde_json::json!(["strptr", "strlen", "float"])
    );
    assert!(json["probes"][1].get("types").is_none(), "{json}");
}

#[test]
fn notes_without_types_notes_are_unchanged() {
    let (bytes, _) = build(&ElfSpec::x86_64(&NOTES));
    let object = read_bytes(&bytes, "synthetic").unwrap();
    assert!(object.probes.iter().all(|p| p.types.is_none()));
    assert!(object.diagnostics.is_empty());
}

#[test]
fn hostile_types_notes_are_diagnostics() {
    let cases: [(&[u8], &str); 7] = [
        (b"", "provider is not NUL-terminated"),
        (b"p", "provider is not NUL-terminated"),
        (b"p\0b", "probe name is not NUL-terminated"),
        (b"p\0b\0int", "type list is not NUL-terminated"),
        (b"p\0b\0integer\0", "unknown argument type `integer`"),
        (b"p\0b\0int\0garbage", "not padding"),
        (b"p\0b\0strlen\0", "does not follow a `strptr`"),
    ];
    for (desc, expected) in cases {
        let object = object_with(&[types_note(desc)]);
        assert_eq!(types_of(&object, "b"), None, "{desc:?}");
        assert!(
            object.diagnostics.iter().any(|d| d.contains(expected)),
            "{desc:?}: {:?}",
            object.diagnostics
        );
    }
}

#[test]
fn a_wrong_count_leaves_the_probe_untyped() {
    for types in [&[Int, Int][..], &[][..]] {
        let object = object_with(&[types_note(&encode("p", "b", types))]);
        assert_eq!(types_of(&object, "b"), None);
        assert!(
            object.diagnostics.iter().any(|d| d.contains("p:b")
                && d.contains(&format!("names {} argument types", types.len()))
                && d.contains("a location has 1 arguments")),
            "{:?}",
            object.diagnostics
        );
    }
}

#[test]
fn disagreeing_notes_leave_the_probe_untyped() {
    let object = object_with(&[
        types_note(&encode("p", "b", &[Int])),
        types_note(&encode("p", "b", &[Float])),
        types_note(&encode("p", "b", &[Int])),
    ]);
    assert_eq!(types_of(&object, "b"), None);
    let disagreements: Vec<_> = object
        .diagnostics
        .iter()
        .filter(|d| d.contains("types notes disagree"))
        .collect();
    assert_eq!(disagreements.len(), 1, "{:?}", object.diagnostics);
}

/// A types note with a truncated declared size (the note header lies):
/// the note walk reports it, the probes before it are kept.
#[test]
fn a_truncated_note_header_is_a_diagnostic() {
    let mut note = types_note(&encode("p", "a", &[StrPtr, StrLen, Float]));
    // descsz far beyond the section.
    note[4..8].copy_from_slice(&4000u32.to_le_bytes());
    let mut spec = ElfSpec::x86_64(&NOTES);
    spec.note_section = notes_bytes(&NOTES, true, false);
    spec.note_section.extend_from_slice(&note);
    let (bytes, _) = build(&spec);
    let object = read_bytes(&bytes, "synthetic").unwrap();
    assert_eq!(object.probes.len(), 2);
    assert!(object.probes.iter().all(|p| p.types.is_none()));
    assert!(!object.diagnostics.is_empty());
}

/// The built-in table types PostgreSQL's probes when no note does, only
/// when the argument count matches, and a note wins over the table.
#[test]
fn known_providers_are_typed_by_the_table() {
    let notes = [
        NoteSpec {
            pc: 0x1100,
            base: 0x3000,
            semaphore: 0,
            provider: "postgresql",
            name: "query__start",
            args: "8@%rbx",
        },
        NoteSpec {
            pc: 0x1200,
            base: 0x3000,
            semaphore: 0,
            provider: "postgresql",
            // PostgreSQL 9.6's three arguments: not the table's two.
            name: "lwlock__acquire",
            args: "8@%rax -4@%edx -4@%ecx",
        },
        NoteSpec {
            pc: 0x1300,
            base: 0x3000,
            semaphore: 0,
            provider: "postgresql",
            name: "query__done",
            args: "8@%rbx",
        },
    ];
    let mut spec = ElfSpec::x86_64(&notes);
    spec.note_section
        .extend_from_slice(&types_note(&encode("postgresql", "query__done", &[Int])));
    let (bytes, _) = build(&spec);
    let object = read_bytes(&bytes, "synthetic").unwrap();
    assert!(object.diagnostics.is_empty(), "{:?}", object.diagnostics);
    assert_eq!(types_of(&object, "query__start"), Some(&[Str][..]));
    assert_eq!(types_of(&object, "lwlock__acquire"), None);
    assert_eq!(types_of(&object, "query__done"), Some(&[Int][..]));
}
