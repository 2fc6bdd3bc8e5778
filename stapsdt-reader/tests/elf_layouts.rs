//! The reader on synthetic objects whose every byte the test controls: both
//! classes and byte orders, prelinked notes, and hostile inputs.

mod synthetic;

use stapsdt_reader::{read_bytes, Arch, Endianness, Operand};
use synthetic::{build, note_bytes, raw_note, ElfSpec, NoteSpec};

fn note(pc: u64, semaphore: u64, name: &'static str, args: &'static str) -> NoteSpec {
    NoteSpec {
        pc,
        base: 0x3000,
        semaphore,
        provider: "prov",
        name,
        args,
    }
}

#[test]
fn every_class_and_byte_order() {
    for (is_64, big, machine, arch, args) in [
        (true, false, 62, Arch::X86_64, "-4@%edi 8@8(%rsi)"),
        (false, false, 3, Arch::I386, "-4@%eax 4@8(%esp)"),
        (true, true, 22, Arch::S390x, "-4@%r2 8@160(%r15)"),
        (false, true, 20, Arch::Ppc, "-4@3 4@8(1)"),
    ] {
        let notes = [
            note(0x401100, 0x402000, "first", args),
            note(0x401200, 0, "second", ""),
        ];
        let spec = ElfSpec {
            is_64,
            big_endian: big,
            machine,
            load_vaddr: 0x400000,
            load_flags: 7,
            stapsdt_base: Some(0x3000),
            note_section: notes
                .iter()
                .flat_map(|n| note_bytes(n, is_64, big))
                .collect(),
        };
        let (bytes, _) = build(&spec);
        let object = read_bytes(&bytes, "synthetic").unwrap();
        let what = format!("{arch:?} 64={is_64} big={big}");
        assert_eq!(object.arch, arch, "{what}");
        assert_eq!(object.bits, if is_64 { 64 } else { 32 }, "{what}");
        assert_eq!(
            object.endian,
            if big {
                Endianness::Big
            } else {
                Endianness::Little
            }
        );
        assert_eq!(object.probes.len(), 2, "{what}");
        let first = &object.probes[0].locations[0];
        assert_eq!(first.address, 0x401100, "{what}");
        assert_eq!(first.file_offset, Some(0x1100), "{what}");
        let sem = first.semaphore.as_ref().unwrap();
        assert_eq!(
            (sem.address, sem.file_offset),
            (0x402000, Some(0x2000)),
            "{what}"
        );
        assert_eq!(first.args.len(), 2, "{what}");
        assert!(
            first.args.iter().all(|a| a.is_parsed()),
            "{what}: {:?}",
            first.args
        );
        assert!(object.probes[1].locations[0].semaphore.is_none());
        assert!(
            object.diagnostics.is_empty(),
            "{what}: {:?}",
            object.diagnostics
        );
    }
}

#[test]
fn prelinked_notes_are_moved_with_stapsdt_base() {
    let spec = ElfSpec {
        stapsdt_base: Some(0x5000),
        ..ElfSpec::x86_64(&[note(0x1100, 0x2000, "moved", "8@%rdi")])
    };
    let object = read_bytes(&build(&spec).0, "prelinked").unwrap();
    let loc = &object.probes[0].locations[0];
    assert_eq!(loc.note_base, 0x3000);
    assert_eq!(loc.address, 0x3100);
    assert_eq!(loc.semaphore.as_ref().unwrap().address, 0x4000);
    assert_eq!(object.stapsdt_base, Some(0x5000));
}

#[test]
fn no_stapsdt_base_means_no_adjustment() {
    let spec = ElfSpec {
        stapsdt_base: None,
        ..ElfSpec::x86_64(&[note(0x1100, 0, "plain", "")])
    };
    let object = read_bytes(&build(&spec).0, "nobase").unwrap();
    assert_eq!(object.probes[0].locations[0].address, 0x1100);
}

#[test]
fn several_locations_of_one_probe_are_kept() {
    let spec = ElfSpec::x86_64(&[
        note(0x1100, 0, "tick", "8@%rdi"),
        note(0x1200, 0, "other", ""),
        note(0x1300, 0, "tick", "-4@-20(%rbp)"),
    ]);
    let object = read_bytes(&build(&spec).0, "multi").unwrap();
    assert_eq!(object.probes.len(), 2);
    let tick = &object.probes[0];
    assert_eq!(tick.name, "tick");
    let addrs: Vec<u64> = tick.locations.iter().map(|l| l.address).collect();
    assert_eq!(addrs, [0x1100, 0x1300]);
    assert_eq!(tick.locations[1].args[0].size, 4);
    assert!(matches!(
        tick.locations[1].args[0].operand,
        Operand::Memory(_)
    ));
}

#[test]
fn address_outside_every_segment_is_reported() {
    let spec = ElfSpec::x86_64(&[note(0x900000, 0x910000, "far", "")]);
    let object = read_bytes(&build(&spec).0, "far").unwrap();
    let loc = &object.probes[0].locations[0];
    assert_eq!(loc.file_offset, None);
    assert!(
        object.diagnostics.iter().any(|d| {
            d
            == "prov:far: address 0x900000 lies outside every loadable segment; it cannot be probed"
        }),
        "{:?}",
        object.diagnostics
    );
    assert!(object
        .diagnostics
        .iter()
        .any(|d| d.contains("semaphore 0x910000 lies outside")));
}

/// libbpf refuses a site outside an executable segment and a semaphore
/// outside a writable one; the reader names both and leaves them out of
/// what can be attached (no file offset), keeping the probe listed.
#[test]
fn sites_must_be_executable_and_semaphores_writable() {
    let object_with = |flags: u32| {
        let spec = ElfSpec {
            load_flags: flags,
            ..ElfSpec::x86_64(&[note(0x1100, 0x2000, "gated", "8@%rdi")])
        };
        read_bytes(&build(&spec).0, "segments").unwrap()
    };

    // R E: code may be probed, but the semaphore cannot be raised.
    let object = object_with(4 | 1);
    let loc = &object.probes[0].locations[0];
    assert_eq!(loc.file_offset, Some(0x1100));
    assert_eq!(loc.semaphore.as_ref().unwrap().file_offset, None);
    assert_eq!(
        object.diagnostics,
        ["prov:gated: semaphore 0x2000 lies in a segment that is not writable (flags \"R E\"); it is left alone"]
    );

    // RW: data, not code; the semaphore is fine.
    let object = object_with(4 | 2);
    let loc = &object.probes[0].locations[0];
    assert_eq!(loc.file_offset, None);
    assert_eq!(loc.semaphore.as_ref().unwrap().file_offset, Some(0x2000));
    assert_eq!(
        object.diagnostics,
        ["prov:gated: address 0x1100 lies in a segment that is not executable (flags \"RW \"); it cannot be probed"]
    );

    // RWX allows both: no diagnostic.
    let object = object_with(7);
    assert!(object.diagnostics.is_empty(), "{:?}", object.diagnostics);
    assert_eq!(object.probes[0].locations[0].file_offset, Some(0x1100));
}

#[test]
fn note_whose_size_lies_keeps_the_notes_before_it() {
    let mut section = note_bytes(&note(0x1100, 0, "good", ""), true, false);
    let mut liar = note_bytes(&note(0x1200, 0, "liar", ""), true, false);
    liar[4..8].copy_from_slice(&0x7fff_0000u32.to_le_bytes()); // descsz far past the end
    section.extend_from_slice(&liar);
    let spec = ElfSpec {
        note_section: section,
        ..ElfSpec::x86_64(&[])
    };
    let object = read_bytes(&build(&spec).0, "liar").unwrap();
    assert_eq!(object.probes.len(), 1);
    assert_eq!(object.probes[0].name, "good");
    assert!(
        object
            .diagnostics
            .iter()
            .any(|d| d.contains("note 1") && d.contains("rest of the section is skipped")),
        "{:?}",
        object.diagnostics
    );
}

#[test]
fn strings_without_nul_are_reported_and_skipped() {
    let mut desc = Vec::new();
    for v in [0x1100u64, 0x3000, 0] {
        desc.extend_from_slice(&v.to_le_bytes());
    }
    desc.extend_from_slice(b"prov\0name-without-nul");
    let mut section = raw_note(b"stapsdt\0", 3, &desc, false);
    section.extend_from_slice(&note_bytes(&note(0x1200, 0, "after", ""), true, false));
    let spec = ElfSpec {
        note_section: section,
        ..ElfSpec::x86_64(&[])
    };
    let object = read_bytes(&build(&spec).0, "nonul").unwrap();
    assert_eq!(object.probes.len(), 1);
    assert_eq!(object.probes[0].name, "after");
    assert_eq!(
        object.diagnostics,
        ["stapsdt note 1 in section 1: probe name is not NUL-terminated"]
    );
}

#[test]
fn other_note_types_are_reported() {
    let mut section = raw_note(b"stapsdt\0", 1, &[0; 24], false);
    section.extend_from_slice(&raw_note(b"GNU\0", 3, &[0xab, 0xcd], false));
    let spec = ElfSpec {
        note_section: section,
        ..ElfSpec::x86_64(&[])
    };
    let object = read_bytes(&build(&spec).0, "types").unwrap();
    assert!(object.probes.is_empty());
    assert_eq!(object.build_id.as_deref(), Some("abcd"));
    assert_eq!(
        object.diagnostics,
        ["stapsdt note 1: type 1 is not 3 (only v3 notes are defined)"]
    );
}

#[test]
fn absurd_section_count_is_an_error_that_names_the_input() {
    let (mut bytes, layout) = build(&ElfSpec::x86_64(&[note(0x1100, 0, "x", "")]));
    bytes[layout.shnum_field..layout.shnum_field + 2].copy_from_slice(&0xfff0u16.to_le_bytes());
    let err = read_bytes(&bytes, "absurd.so").unwrap_err();
    assert!(
        err.to_string().starts_with("absurd.so: bad section table"),
        "{err}"
    );
}

#[test]
fn truncated_files_are_errors_never_panics() {
    let (bytes, layout) = build(&ElfSpec::x86_64(&[note(0x1100, 0, "x", "8@%rdi")]));
    for len in 0..bytes.len() {
        let _ = read_bytes(&bytes[..len], "truncated");
    }
    let err = read_bytes(&bytes[..10], "short.so").unwrap_err();
    assert_eq!(
        err.to_string(),
        "short.so: bad ELF header: Invalid ELF header size or alignment"
    );
    let err = read_bytes(&bytes[..layout.shoff + 10], "cut.so").unwrap_err();
    assert!(
        err.to_string().starts_with("cut.so: bad section table"),
        "{err}"
    );
}

#[test]
fn not_elf_is_a_clear_error() {
    let err = read_bytes(b"#!/bin/sh\necho hi\n", "script.sh").unwrap_err();
    assert_eq!(err.to_string(), "script.sh: not an ELF file");
    let err = read_bytes(b"\x7fELF\x07rest-of-header", "odd").unwrap_err();
    assert_eq!(err.to_string(), "odd: unknown ELF class 7");
}
