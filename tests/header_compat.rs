//! Drop-in compatibility of `sdt-header/include/sdt.h` with SystemTap's
//! `<sys/sdt.h>`: one program, built with each header across C and C++
//! standards, optimisation levels, gcc and clang, PIE, shared and static
//! links, must expose the same probes (names, locations, argument sizes,
//! signedness, float flags, semaphores) to `stap-sdt list`.

mod header_support;

use header_support::{list_json, our_include, shapes, Shapes};
use std::path::PathBuf;
use test_support::{require, system_sdt_include, Scratch};

const FIXTURE: &str = include_str!("fixtures/header/compat.c");

/// The probes of the fixture, sorted.
const EXPECTED_PROBES: [&str; 22] = [
    "compat:consts",
    "compat:d0",
    "compat:d12",
    "compat:enum_arg",
    "compat:floats",
    "compat:globals",
    "compat:misc",
    "compat:p0",
    "compat:p1",
    "compat:p10",
    "compat:p11",
    "compat:p12",
    "compat:p2",
    "compat:p3",
    "compat:p4",
    "compat:p5",
    "compat:p6",
    "compat:p7",
    "compat:p8",
    "compat:p9",
    "compat:v0",
    "compat:v3",
];

/// One build configuration of the matrix.
struct Build {
    compiler: &'static str,
    std: &'static str,
    flags: &'static [&'static str],
}

impl Build {
    fn cxx(&self) -> bool {
        self.compiler.ends_with("++")
    }

    fn label(&self) -> String {
        format!(
            "{} -std={} {}",
            self.compiler,
            self.std,
            self.flags.join(" ")
        )
    }

    /// Build the fixture with the system header (`ours == false`) or ours.
    fn build(&self, scratch: &Scratch, ours: bool) -> PathBuf {
        let include = our_include();
        let std = format!("-std={}", self.std);
        let mut args: Vec<&str> = vec![&std, "-DSDT_USE_VARIADIC", "-Wall", "-Wextra"];
        if ours {
            // Ours must not add a single warning to a warning-clean program.
            args.extend(["-Werror", "-I", include.to_str().unwrap()]);
        }
        args.extend(self.flags);
        let source = if self.cxx() { "compat.cc" } else { "compat.c" };
        let output = format!("{}-{}", if ours { "ours" } else { "system" }, self.std);
        scratch.compile(self.compiler, source, FIXTURE, &output, &args)
    }
}

/// Probes whose description differs on purpose (documented in sdt.h).
fn without_known_differences(mut shapes: Shapes, cxx: bool) -> Shapes {
    // SystemTap marks floating point arguments "f", which gdb 13, bcc and
    // bpftrace cannot parse; ours does not unless STAP_SDT_FLOAT_ARGS is
    // defined (checked in `float_marker_is_opt_in`).
    for locations in shapes.values_mut() {
        for loc in locations.iter_mut() {
            for arg in loc.args.iter_mut() {
                arg.float = false;
            }
        }
        locations.sort();
    }
    if cxx {
        // SystemTap describes every C++ enum as unsigned; we use the
        // enum's underlying type (checked in `cxx_enum_is_signed`).
        shapes.remove("compat:enum_arg");
    }
    shapes
}

fn compare(test: &str, matrix: &[(&'static str, &'static str, &'static [&'static str])]) {
    let builds = matrix.iter().map(|&(compiler, std, flags)| Build {
        compiler,
        std,
        flags,
    });
    if system_sdt_include().is_none() {
        test_support::skip(
            test,
            "SystemTap's <sys/sdt.h> is not installed (systemtap-sdt-dev)",
        );
        return;
    }
    for build in builds {
        if require(test, build.compiler).is_none() {
            return;
        }
        let scratch = Scratch::new();
        let system = shapes(&list_json(&build.build(&scratch, false)));
        let ours_json = list_json(&build.build(&scratch, true));
        let ours = shapes(&ours_json);
        let names: Vec<&str> = system.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            EXPECTED_PROBES,
            "{}: the fixture's probes",
            build.label()
        );
        assert_eq!(
            without_known_differences(ours, build.cxx()),
            without_known_differences(system, build.cxx()),
            "{}: probes differ between <sys/sdt.h> and ours",
            build.label()
        );
        // Our notes have their base, and the reader has nothing to say.
        for object in ours_json["objects"].as_array().unwrap() {
            let base = object["stapsdt_base"].as_u64();
            assert!(base.is_some(), "{}: no .stapsdt.base", build.label());
            assert!(
                object["diagnostics"].as_array().unwrap().is_empty(),
                "{}: reader diagnostics {}",
                build.label(),
                object["diagnostics"]
            );
        }
        eprintln!("ok: {}", build.label());
    }
}

#[test]
fn gcc_c_standards() {
    compare(
        "gcc_c_standards",
        &[
            ("gcc", "c89", &["-O0"]),
            ("gcc", "gnu99", &["-O1", "-fPIE", "-pie"]),
            ("gcc", "c11", &["-O2", "-fPIC", "-shared"]),
            ("gcc", "c17", &["-O3", "-static"]),
            ("gcc", "c2x", &["-Os", "-D_SDT_HAS_SEMAPHORES"]),
        ],
    );
}

#[test]
fn clang_c_standards() {
    compare(
        "clang_c_standards",
        &[
            ("clang", "c89", &["-O2", "-fPIC", "-shared"]),
            ("clang", "c99", &["-O0", "-D_SDT_HAS_SEMAPHORES"]),
            ("clang", "c11", &["-O3", "-fPIE", "-pie"]),
            ("clang", "c2x", &["-O1"]),
        ],
    );
}

#[test]
fn gxx_cxx_standards() {
    compare(
        "gxx_cxx_standards",
        &[
            ("g++", "c++98", &["-O0"]),
            ("g++", "c++11", &["-O2", "-fPIC", "-shared"]),
            ("g++", "c++14", &["-O1", "-D_SDT_HAS_SEMAPHORES"]),
            ("g++", "c++17", &["-O3"]),
            ("g++", "c++20", &["-O2", "-fPIE", "-pie"]),
            ("g++", "c++23", &["-Os"]),
        ],
    );
}

#[test]
fn clangxx_cxx_standards() {
    compare(
        "clangxx_cxx_standards",
        &[
            ("clang++", "c++98", &["-O2"]),
            ("clang++", "c++11", &["-O0", "-fPIE", "-pie"]),
            (
                "clang++",
                "c++17",
                &["-O3", "-fPIC", "-shared", "-D_SDT_HAS_SEMAPHORES"],
            ),
            ("clang++", "c++20", &["-O1"]),
            ("clang++", "c++2b", &["-O2"]),
        ],
    );
}

/// The one intended difference in argument types: a C++ enum with negative
/// values is described as signed by ours.
#[test]
fn cxx_enum_is_signed() {
    let Some(_) = require("cxx_enum_is_signed", "g++") else {
        return;
    };
    let scratch = Scratch::new();
    let build = Build {
        compiler: "g++",
        std: "c++17",
        flags: &["-O2"],
    };
    let ours = shapes(&list_json(&build.build(&scratch, true)));
    let enum_arg = &ours["compat:enum_arg"];
    assert!(!enum_arg.is_empty());
    for loc in enum_arg {
        assert_eq!(loc.args.len(), 1);
        assert!(loc.args[0].signed, "enum mode is signed: {loc:?}");
        assert_eq!(loc.args[0].size, 4);
    }
}

/// Floating point arguments: plain sized integers by default (readable by
/// every tool), "f"-marked with STAP_SDT_FLOAT_ARGS=1.
#[test]
fn float_marker_is_opt_in() {
    let Some(_) = require("float_marker_is_opt_in", "gcc") else {
        return;
    };
    let scratch = Scratch::new();
    for (flags, marked) in [(&[][..], false), (&["-DSTAP_SDT_FLOAT_ARGS=1"][..], true)] {
        let build = Build {
            compiler: "gcc",
            std: "c11",
            flags,
        };
        let ours = shapes(&list_json(&build.build(&scratch, true)));
        let floats = &ours["compat:floats"];
        assert!(!floats.is_empty());
        for loc in floats {
            let sizes: Vec<i64> = loc.args.iter().map(|a| a.size).collect();
            assert_eq!(sizes, [4, 8, 8, 4], "{flags:?}");
            assert!(
                loc.args.iter().all(|a| a.float == marked && !a.signed),
                "{flags:?}: {loc:?}"
            );
        }
    }
}

/// Ours adds no warning under `-pedantic -Werror` (it declares itself a
/// system header, as <sys/sdt.h> is by its install location). clang's C89
/// mode is left out: it rejects any asm string over 509 characters, which
/// <sys/sdt.h> exceeds too.
#[test]
fn pedantic_clean() {
    let include = our_include();
    let include = include.to_str().unwrap();
    let cases = [
        ("gcc", "c89"),
        ("gcc", "c99"),
        ("gcc", "c2x"),
        ("clang", "c99"),
        ("clang", "c2x"),
        ("g++", "c++98"),
        ("g++", "c++20"),
        ("clang++", "c++98"),
        ("clang++", "c++17"),
    ];
    let scratch = Scratch::new();
    for (compiler, std) in cases {
        if require("pedantic_clean", compiler).is_none() {
            continue;
        }
        let source = if compiler.ends_with("++") {
            "compat.cc"
        } else {
            "compat.c"
        };
        let std = format!("-std={std}");
        let args = [
            &std,
            "-pedantic",
            "-Werror",
            "-Wall",
            "-Wextra",
            "-O2",
            "-c",
            "-I",
            include,
        ];
        scratch.compile(compiler, source, FIXTURE, "compat.o", &args);
    }
}

/// The same comparison on the other architectures whose cross compilers CI
/// installs (SystemTap's header is copied next to the build, since it is
/// only installed for the host): the notes of ours and of <sys/sdt.h>
/// describe the same probes on aarch64, arm, s390x, ppc64le, riscv64 and
/// i686, and our reader decodes every operand.
#[test]
fn cross_architectures() {
    let Some(system) = system_sdt_include() else {
        test_support::skip(
            "cross_architectures",
            "SystemTap's <sys/sdt.h> is not installed",
        );
        return;
    };
    let targets = [
        "aarch64-linux-gnu",
        "arm-linux-gnueabihf",
        "s390x-linux-gnu",
        "powerpc64le-linux-gnu",
        "riscv64-linux-gnu",
        "i686-linux-gnu",
    ];
    let scratch = Scratch::new();
    let copied = scratch.join("systemtap");
    std::fs::create_dir_all(copied.join("sys")).unwrap();
    for header in ["sdt.h", "sdt-config.h"] {
        std::fs::copy(
            system.join("sys").join(header),
            copied.join("sys").join(header),
        )
        .unwrap();
    }
    let include = our_include();
    for target in targets {
        let compiler = format!("{target}-gcc");
        if require("cross_architectures", &compiler).is_none() {
            continue;
        }
        let build = |dir: &PathBuf, name: &str| {
            let dir = format!("-I{}", dir.display());
            let args = ["-O2", "-DSDT_USE_VARIADIC", &dir];
            scratch.compile(
                &compiler,
                "compat.c",
                FIXTURE,
                &format!("{name}-{target}"),
                &args,
            )
        };
        let theirs = shapes(&list_json(&build(&copied, "system")));
        let ours_json = list_json(&build(&include, "ours"));
        assert_eq!(
            without_known_differences(shapes(&ours_json), false),
            without_known_differences(theirs, false),
            "{target}: probes differ between <sys/sdt.h> and ours"
        );
        let unparsed: Vec<_> = header_support::operand_kinds(&ours_json)
            .into_iter()
            .filter(|k| k == "unparsed")
            .collect();
        assert!(unparsed.is_empty(), "{target}: unparsed operands");
        eprintln!("ok: {target}");
    }
}

/// The assembler forms: STAP_PROBEn in a `.S` file and STAP_PROBE_ASM (raw
/// descriptions and STAP_PROBE_ASM_TEMPLATE/OPERANDS) in a C asm statement
/// give the same notes, argument text included, as <sys/sdt.h>.
#[test]
fn assembler_forms() {
    if system_sdt_include().is_none() {
        test_support::skip(
            "assembler_forms",
            "SystemTap's <sys/sdt.h> is not installed",
        );
        return;
    }
    let scratch = Scratch::new();
    let assembly = scratch.write("asm_probes.S", include_str!("fixtures/header/asm_probes.S"));
    let include = format!("-I{}", our_include().display());
    let listing = |json: serde_json::Value| -> Vec<(String, String, bool)> {
        let mut all: Vec<_> = header_support::locations(&json)
            .into_iter()
            .map(|(probe, loc)| {
                let mut args = loc["args_raw"].as_str().unwrap().to_string();
                if probe == "inl:templ" {
                    // Described by the compiler: operands differ by design
                    // (our "nr" constraint), sizes and signs must not.
                    let sizes: Vec<&str> = args
                        .split(' ')
                        .map(|a| a.split('@').next().unwrap())
                        .collect();
                    args = sizes.join(" ");
                }
                (probe, args, loc["semaphore"].is_null())
            })
            .collect();
        all.sort();
        all
    };
    for compiler in ["gcc", "clang"] {
        if require("assembler_forms", compiler).is_none() {
            continue;
        }
        let source = include_str!("fixtures/header/asm_inline.c");
        let assembly = assembly.to_str().unwrap();
        let system = scratch.compile(
            compiler,
            "asm_inline.c",
            source,
            "system",
            &["-O2", "-DSDT_USE_VARIADIC", assembly],
        );
        let ours = scratch.compile(
            compiler,
            "asm_inline.c",
            source,
            "ours",
            &["-O2", &include, assembly],
        );
        let theirs = listing(list_json(&system));
        assert_eq!(theirs.len(), 5, "{compiler}: {theirs:?}");
        assert_eq!(listing(list_json(&ours)), theirs, "{compiler}");
    }
}

/// Probes in C++ inline functions and templates used by two translation
/// units: one location per kept COMDAT copy (the notes of discarded copies
/// are discarded with them, as with <sys/sdt.h>). Ours is included inside
/// `extern "C"`, which <sys/sdt.h> rejects.
#[test]
fn cxx_comdat_notes_follow_their_code() {
    let scratch = Scratch::new();
    scratch.write("cxx_comdat.h", include_str!("fixtures/header/cxx_comdat.h"));
    let b = scratch.write(
        "cxx_comdat_b.cc",
        include_str!("fixtures/header/cxx_comdat_b.cc"),
    );
    let include = format!("-I{}", our_include().display());
    let dir = format!("-I{}", scratch.path().display());
    for compiler in ["g++", "clang++"] {
        if require("cxx_comdat_notes_follow_their_code", compiler).is_none() {
            continue;
        }
        let mut counts = Vec::new();
        for (name, extra) in [
            ("system", vec![]),
            ("ours", vec![include.as_str(), "-DINCLUDE_IN_EXTERN_C"]),
        ] {
            let mut args = vec!["-O0", dir.as_str(), b.to_str().unwrap()];
            args.extend(extra);
            let exe = scratch.compile(
                compiler,
                "cxx_comdat_a.cc",
                include_str!("fixtures/header/cxx_comdat_a.cc"),
                name,
                &args,
            );
            let json = list_json(&exe);
            let all = header_support::locations(&json);
            let count = |p: &str| all.iter().filter(|(probe, _)| probe == p).count();
            // hot<>: one copy; twice<int> and twice<long>: one each.
            counts.push((count("cxx:inline_hot"), count("cxx:template_twice")));
            for (probe, loc) in &all {
                assert_ne!(
                    loc["address"].as_u64(),
                    Some(0),
                    "{compiler} {name} {probe}: note of discarded code"
                );
            }
        }
        assert_eq!(counts[1], (1, 2), "{compiler}: ours");
        assert_eq!(counts[0], counts[1], "{compiler}: same as <sys/sdt.h>");
    }
}

/// Under every warning the compilers have (`clang -Weverything`, gcc's
/// strict set), no diagnostic comes from our header (the fixture's own
/// warnings are not its business).
#[test]
fn no_warning_from_the_header() {
    let include = format!("-I{}", our_include().display());
    let scratch = Scratch::new();
    let gcc_strict = [
        "-Wall",
        "-Wextra",
        "-Wundef",
        "-Wshadow",
        "-Wconversion",
        "-Wsign-conversion",
        "-Wcast-qual",
    ];
    let cases: [(&str, &str, Vec<&str>); 4] = [
        ("clang", "compat.c", vec!["-std=c11", "-Weverything"]),
        ("clang++", "compat.cc", vec!["-std=c++17", "-Weverything"]),
        ("gcc", "compat.c", [&["-std=c11"][..], &gcc_strict].concat()),
        (
            "g++",
            "compat.cc",
            [
                &["-std=c++17", "-Wold-style-cast", "-Wuseless-cast"][..],
                &gcc_strict,
            ]
            .concat(),
        ),
    ];
    for (compiler, source, flags) in cases {
        if require("no_warning_from_the_header", compiler).is_none() {
            continue;
        }
        let path = scratch.write(source, FIXTURE);
        let out = test_support::run(
            std::process::Command::new(compiler)
                .args(&flags)
                .args(["-O2", "-c", &include])
                .arg(&path)
                .arg("-o")
                .arg(scratch.join("compat.o")),
        );
        assert!(
            out.status.success(),
            "{compiler}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("sdt.h")).collect();
        assert!(
            ours.is_empty(),
            "{compiler} {flags:?}: warnings from sdt.h:\n{}",
            ours.join("\n")
        );
    }
}
