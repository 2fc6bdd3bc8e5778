//! The objects written for each architecture, read back by the binutils of
//! that architecture: the fire functions' bytes are what the assembler
//! makes of their instructions and disassemble to them at every probe's
//! symbol, `readelf` reads the notes, headers and dynamic section without
//! a complaint, the linker links a program against it, and
//! `stapsdt-reader` parses every argument operand. On
//! this x86-64 machine the AArch64 object cannot be loaded, only checked
//! (`binutils-aarch64-linux-gnu`, from `gcc-aarch64-linux-gnu`).

use sdt_dynamic::{Arch, ArgKind, Provider};
use std::path::Path;
use std::process::Command;
use test_support::{require, run, Scratch};

fn provider() -> Provider {
    use ArgKind::*;
    let mut p = Provider::new("archdemo").unwrap();
    p.add_probe("ints", &[I8, U16, I32, U64, Pointer]).unwrap();
    p.add_probe(
        "twelve",
        &[I8, U8, I16, U16, I32, U32, I64, U64, F64, Str, Pointer, Str],
    )
    .unwrap();
    p.add_probe("text", &[StrLen, F64]).unwrap();
    p
}

fn tool(test: &str, prefix: &str, name: &str) -> Option<String> {
    let program = format!("{prefix}{name}");
    require(test, &program).map(|_| program)
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "{cmd:?}: {stderr}"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The bytes `as` makes of `source`'s .text.
fn assembled(scratch: &Scratch, prefix: &str, source: &str) -> Vec<u8> {
    let src = scratch.write(&format!("{prefix}site.s"), source);
    let obj = scratch.join(&format!("{prefix}site.o"));
    stdout_of(
        Command::new(format!("{prefix}as"))
            .arg(&src)
            .arg("-o")
            .arg(&obj),
    );
    let bin = scratch.join(&format!("{prefix}site.bin"));
    stdout_of(
        Command::new(format!("{prefix}objcopy"))
            .args(["-O", "binary", "--only-section=.text"])
            .arg(&obj)
            .arg(&bin),
    );
    std::fs::read(bin).unwrap()
}

fn check(arch: Arch, prefix: &str, site_asm: &str, disassembly: &[&str], operand: &str) {
    let test = &format!("arch_sites {arch:?}");
    for name in ["as", "objcopy", "objdump", "readelf"] {
        if tool(test, prefix, name).is_none() {
            return;
        }
    }
    let scratch = Scratch::new();
    assert_eq!(assembled(&scratch, prefix, site_asm), arch.fire_code());

    let p = provider();
    let so = scratch.write("archdemo.so", p.object_bytes(arch));
    let path: &Path = &so;

    // Disassembled at each fire function's symbol.
    let dis = stdout_of(
        Command::new(format!("{prefix}objdump"))
            .args(["-d", "-w"])
            .arg(path),
    );
    for probe in ["ints", "twelve", "text"] {
        let at = dis
            .find(&format!("<archdemo_{probe}>:"))
            .unwrap_or_else(|| panic!("no archdemo_{probe} in\n{dis}"));
        let body: Vec<&str> = dis[at..]
            .lines()
            .skip(1)
            .take(disassembly.len())
            .map(|l| l.split('\t').nth(2).unwrap_or("").trim())
            .collect();
        assert_eq!(body, disassembly, "{dis}");
    }

    // readelf: notes, headers, dynamic section and symbols, no complaint.
    let notes = stdout_of(
        Command::new(format!("{prefix}readelf"))
            .args(["-n", "-W"])
            .arg(path),
    );
    assert_eq!(
        notes
            .matches("NT_STAPSDT (SystemTap probe descriptors)")
            .count(),
        3,
        "{notes}"
    );
    assert!(notes.contains(operand), "{notes}");
    assert!(notes.contains("Semaphore: 0x"), "{notes}");
    let all = stdout_of(
        Command::new(format!("{prefix}readelf"))
            .args(["-h", "-l", "-S", "-d", "--dyn-syms", "-W"])
            .arg(path),
    );
    for expected in [
        "DYN (Shared object file)",
        ".note.stapsdt",
        ".note.stapsdt.types",
        ".stapsdt.base",
        ".probes",
        "GNU_STACK",
        "(SONAME)             Library soname: [libstapsdt-archdemo.so]",
        "archdemo_twelve_semaphore",
    ] {
        assert!(all.contains(expected), "no {expected:?} in\n{all}");
    }

    // The linker takes it as a shared library: a program calling a fire
    // function links against it, its symbols resolved through .hash/.dynsym.
    if let Some(gcc) = tool(test, prefix, "gcc") {
        let main = scratch.write(
            "main.c",
            "extern void archdemo_twelve(const unsigned long *);\n\
             extern unsigned short archdemo_twelve_semaphore;\n\
             int main(void) { unsigned long block[12] = {0};\n\
             if (archdemo_twelve_semaphore) archdemo_twelve(block); return 0; }\n",
        );
        let exe = scratch.join("linked");
        stdout_of(Command::new(gcc).arg(&main).arg(path).arg("-o").arg(&exe));
        let dynamic = stdout_of(Command::new(format!("{prefix}readelf")).arg("-d").arg(&exe));
        assert!(
            dynamic.contains("Shared library: [libstapsdt-archdemo.so]"),
            "{dynamic}"
        );
    }

    // Our reader: every operand parsed, every probe typed.
    let objects = stapsdt_reader::read_path(path).unwrap();
    let object = &objects[0];
    assert_eq!(object.diagnostics, Vec::<String>::new());
    assert_eq!(object.probes.len(), 3);
    for probe in &object.probes {
        let location = &probe.locations[0];
        assert!(probe.types.is_some(), "{}", probe.name);
        for arg in &location.args {
            assert!(
                !matches!(arg.operand, stapsdt_reader::Operand::Unparsed { .. }),
                "{}: {arg:?}",
                probe.name
            );
        }
    }
    assert_eq!(object.probes[1].locations[0].args.len(), 12);
}

#[test]
fn aarch64_object_reads_back_with_the_cross_binutils() {
    check(
        Arch::Aarch64,
        "aarch64-linux-gnu-",
        "nop\nret\n",
        &["nop", "ret"],
        "Arguments: -1@[x0] 1@[x0, 8] -2@[x0, 16] 2@[x0, 24] -4@[x0, 32] 4@[x0, 40] -8@[x0, 48] \
         8@[x0, 56] 8@[x0, 64] 8@[x0, 72] 8@[x0, 80] 8@[x0, 88]",
    );
}

#[test]
fn x86_64_object_reads_back_with_binutils() {
    check(
        Arch::X86_64,
        "",
        // {disp8}: the 5-byte nop, which `as` would shorten to 4 bytes.
        "nop\nlea -128(%rsp),%rsp\n{disp8} nopl 0(%rax,%rax,1)\nlea 128(%rsp),%rsp\nret\n",
        &[
            "nop",
            "lea    -0x80(%rsp),%rsp",
            "nopl   0x0(%rax,%rax,1)",
            "lea    0x80(%rsp),%rsp",
            "ret",
        ],
        "Arguments: -1@0(%rdi) 1@8(%rdi) -2@16(%rdi) 2@24(%rdi) -4@32(%rdi) 4@40(%rdi) \
         -8@48(%rdi) 8@56(%rdi) 8@64(%rdi) 8@72(%rdi) 8@80(%rdi) 8@88(%rdi)",
    );
    // The same bytes as the cheap site the engine recognises, then `ret`.
    let code = Arch::X86_64.fire_code();
    assert!(stapsdt_reader::cheap_site::is_cheap_site(code));
    assert_eq!(&code[stapsdt_reader::cheap_site::BYTES.len()..], [0xc3]);
}
