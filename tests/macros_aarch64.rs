//! sdt-macros on AArch64, as far as this x86-64 machine allows: no AArch64
//! Rust standard library can be installed here, so rustc cannot compile
//! for the target. Instead the AArch64 assembler text the macros produce
//! is rendered (with the operands substituted as rustc would: `x1`, `w9`,
//! the `const` values), assembled by LLVM's assembler (the one rustc uses)
//! and by GNU as, linked with the cross toolchain, and listed.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use test_support::{require, run, Scratch};

/// `demo:args(i32, f64, u8)` in x1, x2, x3.
const ARGS_PROBE: &str = sdt_macros::__sdt_probe_template!(
    __sdt_aarch64_site_insns __sdt_aarch64_operand_asm demo args
    [(v0 T0 s0 w0 f0)] [(v1 T1 s1 w1 f1) (v2 T2 s2 w2 f2)]
);
const EMPTY_PROBE: &str = sdt_macros::__sdt_probe_template!(__sdt_aarch64_site_insns __sdt_aarch64_operand_asm demo empty [] []);
const ENABLED: &str = sdt_macros::__sdt_aarch64_enabled_template!(demo args);

/// What rustc substitutes for the operands of `demo:args` on AArch64.
fn render(template: &str) -> String {
    [
        ("{s0}", "-4"),
        ("{w0}", "4"),
        ("{f0}", "0"),
        ("{v0}", "x1"),
        ("{s1}", "8"),
        ("{w1}", "8"),
        ("{f1}", "1"),
        ("{v1}", "x2"),
        ("{s2}", "1"),
        ("{w2}", "1"),
        ("{f2}", "0"),
        ("{v2}", "x3"),
        ("{0:w}", "w9"),
        ("{0}", "x9"),
    ]
    .iter()
    .fold(template.to_string(), |text, (from, to)| {
        text.replace(from, to)
    })
}

/// Three functions: one firing both probes, one reading the semaphore,
/// and one with a probe that nothing calls (for `--gc-sections`).
fn assembly() -> String {
    let function = |name: &str, body: &str| {
        format!(
            ".section .text.{name},\"ax\",%progbits\n.globl {name}\n.type {name}, %function\n\
             {name}:\n{body}\nret\n.size {name}, .-{name}\n"
        )
    };
    [
        function("fire", &format!("{}\n{}", render(ARGS_PROBE), EMPTY_PROBE)),
        function("enabled", &format!("{}\nmov w0, w9", render(ENABLED))),
        function("unused", &render(ARGS_PROBE)),
    ]
    .concat()
}

const MAIN: &str = "int fire(void); int enabled(void);\n\
                    int main(void) { fire(); return enabled(); }\n";

fn list_json(path: &Path) -> Value {
    let out = run(Command::new(env!("CARGO_BIN_EXE_stap-sdt"))
        .args(["list", "--json"])
        .arg(path));
    assert!(out.status.success(), "stap-sdt list {path:?}: {out:?}");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn llvm_assembles_the_aarch64_text() {
    let Some(llvm_mc) = require("llvm_assembles_the_aarch64_text", "llvm-mc") else {
        return;
    };
    let scratch = Scratch::new();
    let source = scratch.write("probes.s", assembly());
    let out = run(Command::new(llvm_mc)
        .args(["-triple=aarch64-linux-gnu", "-filetype=obj", "-o"])
        .arg(scratch.join("probes.o"))
        .arg(&source));
    assert!(
        out.status.success(),
        "llvm-mc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn aarch64_probes_link_and_list() {
    let test = "aarch64_probes_link_and_list";
    let Some(gcc) = require(test, "aarch64-linux-gnu-gcc") else {
        return;
    };
    let scratch = Scratch::new();
    scratch.write("probes.s", assembly());
    let gcc = gcc.to_str().unwrap();
    let probes = scratch.join("probes.s");
    let binary = scratch.compile(
        gcc,
        "main.c",
        MAIN,
        "demo-aarch64",
        &["-O2", "-Wl,--gc-sections", probes.to_str().unwrap()],
    );
    let listing = list_json(&binary);
    let object = &listing["objects"][0];
    assert_eq!(object["arch"], "aarch64", "{object}");
    let probes = object["probes"].as_array().unwrap();
    let find = |name: &str| {
        probes
            .iter()
            .find(|p| p["provider"] == "demo" && p["name"] == name)
            .unwrap_or_else(|| panic!("no demo:{name} in {object}"))
    };
    let args = &find("args")["locations"];
    // The `unused` function's site went with it: one location, not two.
    assert_eq!(args.as_array().unwrap().len(), 1, "{args}");
    let location = &args[0];
    assert_eq!(location["args_raw"], "-4@x1 8f@x2 1@x3");
    let parsed: Vec<(u64, bool, bool)> = location["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["size"].as_u64().unwrap(),
                a["signed"].as_bool().unwrap(),
                a["float"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        parsed,
        [(4, true, false), (8, false, true), (1, false, false)]
    );
    assert!(location["semaphore"]["address"].as_u64().unwrap() > 0);
    assert_eq!(location["note_base"], object["stapsdt_base"]);
    let empty = &find("empty")["locations"][0];
    assert_eq!(empty["args_raw"], "");
    assert_ne!(
        empty["semaphore"]["address"], location["semaphore"]["address"],
        "one semaphore per probe"
    );
}
