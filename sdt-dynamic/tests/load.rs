//! The Rust API end to end, in this process: the object is loaded from a
//! memfd (or a directory), `stapsdt-reader` reads back exactly the probes,
//! arguments, types, sites and semaphores defined, from the object itself
//! and through this process's maps (what `stap-sdt list -p` does), firing
//! works untraced, and unloading leaves nothing behind.

use sdt_dynamic::{Arg, ArgKind, Placement, Provider};
use stapsdt_reader::{cheap_site, ArgType};

fn maps() -> String {
    std::fs::read_to_string("/proc/self/maps").unwrap()
}

fn every_kind(provider: &str) -> Provider {
    use ArgKind::*;
    let mut p = Provider::new(provider).unwrap();
    p.add_probe("ints", &[I8, U8, I16, U16, I32, U32, I64, U64, Pointer])
        .unwrap();
    p.add_probe("strings", &[Str, StrLen, F64]).unwrap();
    p.add_probe("none", &[]).unwrap();
    p
}

fn check_object(object: &stapsdt_reader::Object, provider: &str) {
    assert_eq!(object.diagnostics, Vec::<String>::new());
    assert_eq!(object.elf_type, "dyn");
    let names: Vec<_> = object
        .probes
        .iter()
        .map(|p| format!("{}:{}", p.provider, p.name))
        .collect();
    assert_eq!(
        names,
        [
            format!("{provider}:ints"),
            format!("{provider}:strings"),
            format!("{provider}:none")
        ]
    );
    let ints = &object.probes[0];
    let loc = &ints.locations[0];
    assert_eq!(
        loc.args_raw,
        "-1@0(%rdi) 1@8(%rdi) -2@16(%rdi) 2@24(%rdi) -4@32(%rdi) 4@40(%rdi) -8@48(%rdi) \
         8@56(%rdi) 8@64(%rdi)"
    );
    assert_eq!(loc.args.len(), 9);
    assert!(loc.semaphore.as_ref().unwrap().file_offset.is_some());
    assert_eq!(ints.types.as_deref(), Some(&[ArgType::Int; 9][..]));
    let strings = &object.probes[1];
    assert_eq!(
        strings.types.as_deref(),
        Some(
            &[
                ArgType::Str,
                ArgType::StrPtr,
                ArgType::StrLen,
                ArgType::Float
            ][..]
        )
    );
    assert_eq!(
        strings.locations[0].args_raw,
        "8@0(%rdi) 8@8(%rdi) 8@16(%rdi) 8@24(%rdi)"
    );
    assert_eq!(object.probes[2].locations[0].args.len(), 0);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn memfd_object_reads_back_as_defined() {
    let mut p = every_kind("dynread");
    p.set_placement(Placement::Memfd);
    p.load().unwrap();
    let path = p.object_path().unwrap().to_path_buf();
    assert!(path.starts_with(format!("/proc/{}/fd", std::process::id())));
    assert!(
        maps().contains("/memfd:stapsdt:dynread (deleted)"),
        "{}",
        maps()
    );

    // The object itself.
    let objects = stapsdt_reader::read_path(&path).unwrap();
    check_object(&objects[0], "dynread");
    // Each site is the cheap site the engine recognises.
    let file = std::fs::File::open(&path).unwrap();
    for probe in &objects[0].probes {
        let offset = probe.locations[0].file_offset.unwrap();
        assert!(
            cheap_site::file_has_cheap_site(&file, offset),
            "{}",
            probe.name
        );
    }
    // Through the process's maps, as `stap-sdt list -p` reads it.
    let (found, _) =
        stapsdt_reader::process::read_process(std::process::id(), &Default::default()).unwrap();
    let ours = found
        .iter()
        .find(|o| o.path == "/memfd:stapsdt:dynread")
        .expect("the memfd object is among the process's objects");
    check_object(ours, "dynread");
    // The notes' addresses, placed in the process, are where `dlsym` found
    // the fire functions and semaphores.
    for (i, listed) in ours.probes.iter().enumerate() {
        let probe = p.probe(i).unwrap();
        assert_eq!(probe.name(), listed.name);
        let location = &listed.locations[0];
        assert_eq!(location.runtime_address, Some(probe.site_address() as u64));
        let sem = location.semaphore.as_ref().unwrap();
        assert_eq!(sem.runtime_address, Some(probe.semaphore_address() as u64));
    }
    let ints = p.probe(0).unwrap();

    // Untraced: not enabled; firing returns.
    assert!(!ints.enabled());
    ints.fire(&[
        Arg::Int(-1),
        Arg::UInt(2),
        Arg::Int(-3),
        Arg::UInt(4),
        Arg::Int(-5),
        Arg::UInt(6),
        Arg::Int(-7),
        Arg::UInt(8),
        Arg::UInt(0x1000),
    ])
    .unwrap();
    let strings = p.probe(1).unwrap();
    strings
        .fire(&[
            Arg::Str(c"hello"),
            Arg::Bytes(b"pointer+length"),
            Arg::F64(2.5),
        ])
        .unwrap();
    let err = strings.fire(&[Arg::Int(1)]).unwrap_err().to_string();
    assert!(
        err.contains("dynread:strings: fired with 1 arguments"),
        "{err}"
    );

    p.unload();
    assert!(!maps().contains("stapsdt:dynread"), "{}", maps());
    assert!(
        std::fs::symlink_metadata(&path).is_err(),
        "{path:?} still open"
    );
    // And again: a provider can be loaded after an unload.
    p.load().unwrap();
    assert!(maps().contains("/memfd:stapsdt:dynread (deleted)"));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn directory_object_is_removed_at_unload() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = every_kind("dyndir");
    p.set_placement(Placement::Directory(dir.path().to_path_buf()));
    p.load().unwrap();
    let path = p.object_path().unwrap().to_path_buf();
    assert!(path.starts_with(dir.path()), "{path:?}");
    assert!(maps().contains(path.to_str().unwrap()));
    let objects = stapsdt_reader::read_path(&path).unwrap();
    check_object(&objects[0], "dyndir");
    drop(p);
    assert!(!path.exists());
    assert!(!maps().contains(path.to_str().unwrap()));
    let mut bad = every_kind("dynbad");
    bad.set_placement(Placement::Directory("/nonexistent/dir".into()));
    let err = bad.load().unwrap_err().to_string();
    assert!(
        err.contains("provider `dynbad`: cannot write its object in /nonexistent/dir"),
        "{err}"
    );
}
