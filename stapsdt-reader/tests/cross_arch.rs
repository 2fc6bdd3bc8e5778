//! Objects built by Debian's cross compilers with `<sys/sdt.h>`: every
//! argument of every architecture decodes, and the notes agree with readelf.

use stapsdt_reader::{read_path, Arch, Operand};
use test_support::bounded::BoundedOutput;
use test_support::readelf::readelf_notes;
use test_support::{require, skip, system_sdt_include, Scratch};

/// Probes whose arguments exercise registers, memory (stack, pointer, indexed),
/// immediates, globals, floats and narrow types under optimisation.
const SOURCE: &str = r#"
#include <sys/sdt.h>
long g; int arr[10];
static int sarr[4] = {1, 2, 3, 4};
struct s { int a; long b; };
int f(int a, long b, char c, struct s *p, int i, double d, float fl) {
  volatile int local = a * 3;
  STAP_PROBE8(t, p1, a, b, c, p->b, arr[i], local, 5, g);
  STAP_PROBE3(t, p2, d, fl, -7);
  STAP_PROBE2(t, p3, (short)a, (unsigned char)c);
  STAP_PROBE1(t, p4, sarr[i & 3]);
  return a;
}
"#;

/// Symbol values as `readelf -s` prints them.
fn symbol_values(path: &std::path::Path) -> std::collections::HashMap<String, u64> {
    let out = test_support::run(std::process::Command::new("readelf").arg("-sW").arg(path));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let value = u64::from_str_radix(fields.get(1)?, 16).ok()?;
            Some((fields.get(7)?.to_string(), value))
        })
        .collect()
}

#[test]
fn cross_compiled_objects_decode_fully() {
    let test = "cross_compiled_objects_decode_fully";
    let Some(include) = system_sdt_include() else {
        skip(test, "sys/sdt.h is not installed (systemtap-sdt-dev)");
        return;
    };
    if require(test, "readelf").is_none() {
        return;
    }
    let include = format!("-I{}", include.display());
    let scratch = Scratch::new();
    let mut built = 0;
    for (compiler, arch, bits) in [
        ("gcc", Arch::X86_64, 64),
        ("i686-linux-gnu-gcc", Arch::I386, 32),
        ("aarch64-linux-gnu-gcc", Arch::Aarch64, 64),
        ("arm-linux-gnueabihf-gcc", Arch::Arm, 32),
        ("s390x-linux-gnu-gcc", Arch::S390x, 64),
        ("powerpc64le-linux-gnu-gcc", Arch::Ppc64, 64),
        ("riscv64-linux-gnu-gcc", Arch::Riscv64, 64),
    ] {
        if require(test, compiler).is_none() {
            continue;
        }
        for opt in ["-O0", "-O2"] {
            let out = format!("{compiler}{opt}.so");
            let path = scratch.compile(
                compiler,
                "t.c",
                SOURCE,
                &out,
                &[opt, "-shared", "-fPIC", "-nostdlib", &include],
            );
            let what = format!("{compiler} {opt}");
            let object = &read_path(&path).unwrap()[0];
            assert_eq!((object.arch, object.bits), (arch, bits), "{what}");
            assert!(
                object.diagnostics.is_empty(),
                "{what}: {:?}",
                object.diagnostics
            );
            let names: Vec<&str> = object.probes.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names, ["p1", "p2", "p3", "p4"], "{what}");
            let mut ours = std::collections::BTreeMap::new();
            for probe in &object.probes {
                for loc in &probe.locations {
                    for arg in &loc.args {
                        assert!(arg.is_parsed(), "{what}: {:?}", arg);
                    }
                    let key = (
                        probe.provider.clone(),
                        probe.name.clone(),
                        loc.address,
                        loc.note_base,
                        0,
                        loc.args_raw.clone(),
                    );
                    *ours.entry(key).or_insert(0) += 1;
                }
            }
            assert_eq!(ours, readelf_notes(path.to_str().unwrap()), "{what}");
            // The constants 5 and -7 decode as immediates on every architecture.
            let p1 = &object.probes[0].locations[0].args;
            assert_eq!(p1[6].operand, Operand::Immediate { value: 5 }, "{what}");
            let p2 = &object.probes[1].locations[0].args;
            assert_eq!(p2[2].operand, Operand::Immediate { value: -7 }, "{what}");
            assert!(p2[0].float && p2[0].size == 8, "{what}: {:?}", p2[0]);
            assert!(p2[1].float && p2[1].size == 4, "{what}: {:?}", p2[1]);
            // i386 PIC reaches the static array through its GOT pointer:
            // `sarr@GOTOFF(%reg,%reg,4)`, resolved with the GOT's address.
            if (arch, opt) == (Arch::I386, "-O2") {
                let Operand::Memory(m) = &object.probes[3].locations[0].args[0].operand else {
                    panic!("{what}: p4 is not in memory");
                };
                assert_eq!(m.symbol.as_deref(), Some("sarr@GOTOFF"), "{what}");
                let symbols = symbol_values(&path);
                assert_eq!(m.symbol_address, symbols.get("sarr").copied(), "{what}");
                assert_eq!(
                    m.got_address,
                    symbols.get("_GLOBAL_OFFSET_TABLE_").copied(),
                    "{what}"
                );
            }
            built += 1;
        }
    }
    eprintln!("{built} cross-compiled objects checked");
}

#[test]
fn static_archive_members_are_named_like_readelf() {
    let test = "static_archive_members_are_named_like_readelf";
    if system_sdt_include().is_none()
        || require(test, "ar").is_none()
        || require(test, "gcc").is_none()
    {
        skip(test, "needs gcc, ar and sys/sdt.h");
        return;
    }
    let scratch = Scratch::new();
    let a = scratch.compile(
        "gcc",
        "a.c",
        "#include <sys/sdt.h>\nvoid a(int x){STAP_PROBE1(arch,in_a,x);}\n",
        "a.o",
        &["-c", "-O2"],
    );
    let b = scratch.compile(
        "gcc",
        "b.c",
        "#include <sys/sdt.h>\nvoid b(long y){STAP_PROBE1(arch,in_b,y);}\n",
        "b.o",
        &["-c", "-O2"],
    );
    scratch.write("notes.txt", "not an object, skipped\n");
    let lib = scratch.join("libab.a");
    let status = std::process::Command::new("ar")
        .arg("rcs")
        .arg(&lib)
        .args([&a, &b, &scratch.join("notes.txt")])
        .status()
        .unwrap();
    assert!(status.success());
    let objects = read_path(&lib).unwrap();
    let shown: Vec<(String, String)> = objects
        .iter()
        .map(|o| (o.path.clone(), o.probes[0].name.clone()))
        .collect();
    let lib = lib.display().to_string();
    assert_eq!(
        shown,
        [
            (format!("{lib}(a.o)"), "in_a".to_string()),
            (format!("{lib}(b.o)"), "in_b".to_string())
        ]
    );
    let readelf = std::process::Command::new("readelf")
        .args(["-n", &lib])
        .bounded_output()
        .unwrap();
    let text = String::from_utf8_lossy(&readelf.stdout);
    assert!(text.contains(&format!("File: {lib}(a.o)")), "{text}");
    assert_eq!(objects[0].elf_type, "rel");
    assert!(
        objects[0].diagnostics.is_empty(),
        "{:?}",
        objects[0].diagnostics
    );
}
