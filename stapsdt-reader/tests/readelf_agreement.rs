//! On the real SDT-carrying binaries of this machine, the reader agrees with
//! `readelf -n` note by note: provider, name, pc, base, semaphore, arguments.

use stapsdt_reader::{read_path, Object, Operand};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use test_support::bounded::BoundedOutput;
use test_support::readelf::{readelf_notes, NoteKey};
use test_support::{require, skip};

const REAL_BINARIES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0",
    "/usr/bin/python3.11",
    "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so",
    "/usr/lib/jvm/temurin-25-jdk-amd64/lib/server/libjvm.so",
    "/usr/lib/postgresql/15/bin/postgres",
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
];

fn our_notes(object: &Object) -> BTreeMap<NoteKey, usize> {
    let mut notes = BTreeMap::new();
    for probe in &object.probes {
        for loc in &probe.locations {
            // Undo the prelink adjustment to compare with the raw note.
            let delta = object
                .stapsdt_base
                .map_or(0, |b| b.wrapping_sub(loc.note_base));
            let pc = loc.address.wrapping_sub(delta);
            let sem = loc
                .semaphore
                .as_ref()
                .map_or(0, |s| s.address.wrapping_sub(delta));
            let key = (
                probe.provider.clone(),
                probe.name.clone(),
                pc,
                loc.note_base,
                sem,
                loc.args_raw.clone(),
            );
            *notes.entry(key).or_insert(0) += 1;
        }
    }
    notes
}

#[test]
fn real_binaries_agree_with_readelf() {
    if require("real_binaries_agree_with_readelf", "readelf").is_none() {
        return;
    }
    let mut checked = 0;
    for path in REAL_BINARIES {
        if !Path::new(path).exists() {
            skip(
                "real_binaries_agree_with_readelf",
                &format!("{path} is not installed"),
            );
            continue;
        }
        let objects = read_path(Path::new(path)).unwrap();
        assert_eq!(objects.len(), 1);
        let object = &objects[0];
        assert!(
            object.diagnostics.is_empty(),
            "{path}: {:?}",
            object.diagnostics
        );
        let theirs = readelf_notes(path);
        let ours = our_notes(object);
        assert!(!theirs.is_empty(), "{path}: readelf found no notes");
        assert_eq!(ours, theirs, "{path}: notes differ from readelf -n");
        // Every argument of every real binary decodes.
        for probe in &object.probes {
            for loc in &probe.locations {
                assert_eq!(loc.args.len(), loc.args_raw.split_whitespace().count());
                for arg in &loc.args {
                    assert!(
                        arg.is_parsed(),
                        "{path} {}:{}: {:?}",
                        probe.provider,
                        probe.name,
                        arg
                    );
                    assert!(loc.file_offset.is_some(), "{path}: no file offset");
                }
            }
        }
        checked += 1;
    }
    eprintln!("checked {checked} real binaries against readelf -n");
}

#[test]
fn libjvm_probes_with_several_locations_show_every_one() {
    let path = "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so";
    if !Path::new(path).exists() {
        skip(
            "libjvm_probes_with_several_locations_show_every_one",
            "OpenJDK 17 is not installed",
        );
        return;
    }
    let object = &read_path(Path::new(path)).unwrap()[0];
    let multi: Vec<_> = object
        .probes
        .iter()
        .filter(|p| p.locations.len() > 1)
        .collect();
    let differing = multi
        .iter()
        .filter(|p| {
            p.locations
                .iter()
                .any(|l| l.args_raw != p.locations[0].args_raw)
        })
        .count();
    assert_eq!((multi.len(), differing), (13, 8));
}

#[test]
fn postgres_symbolic_arguments_resolve_to_their_symbols() {
    let path = "/usr/lib/postgresql/15/bin/postgres";
    if !Path::new(path).exists() {
        skip(
            "postgres_symbolic_arguments_resolve_to_their_symbols",
            "PostgreSQL 15 is not installed",
        );
        return;
    }
    let object = &read_path(Path::new(path)).unwrap()[0];
    let done = object
        .probes
        .iter()
        .find(|p| p.name == "buffer__sync__done")
        .expect("postgres has buffer__sync__done");
    let Operand::Memory(mem) = &done.locations[0].args[0].operand else {
        panic!("NBuffers is a memory operand");
    };
    assert_eq!(mem.symbol.as_deref(), Some("NBuffers"));
    // The same address `nm` gives for the symbol.
    let nm = Command::new("nm")
        .args(["-D", "--defined-only", path])
        .bounded_output();
    let expected = nm.ok().and_then(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find(|l| l.ends_with(" NBuffers"))
            .map(|l| u64::from_str_radix(l.split(' ').next().unwrap(), 16).unwrap())
    });
    match expected {
        Some(addr) => assert_eq!(mem.symbol_address, Some(addr)),
        None => assert!(mem.symbol_address.is_some()),
    }
    // Every symbolic operand in postgres resolves.
    for probe in &object.probes {
        for arg in probe.locations.iter().flat_map(|l| &l.args) {
            if let Operand::Memory(m) = &arg.operand {
                if m.symbol.is_some() {
                    assert!(m.symbol_address.is_some(), "{}: {}", probe.name, arg.raw);
                }
            }
        }
    }
}
