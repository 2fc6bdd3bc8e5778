//! The engine attaches at a cheap site's 5-byte nop (the site `sdt.h` emits
//! with STAP_SDT_CHEAP_SITE) and still reads `%rsp`-relative arguments right:
//! at the nop5 `%rsp` is 128 lower than at the note's pc.

mod trace_support;

use test_support::bounded::BoundedOutput;
use test_support::Scratch;
use trace_support::{json_lines, prerequisites, trace};

/// `local` is volatile, so with SystemTap's `nor` constraint it is passed
/// as memory relative to `%rsp` (checked below from the note itself).
const PROGRAM: &str = r#"
#define STAP_SDT_CHEAP_SITE 1
#define STAP_SDT_ARG_CONSTRAINT nor
#include <sys/sdt.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 3;
  for (int i = 0; i < n; i++) {
    volatile int local = i * 7 + 1;
    STAP_PROBE2(cheap, hit, i, local);
  }
  return 0;
}
"#;

/// A stack array indexed: `(%rsp,%reg,4)`, which a BPF program reads,
/// with the same 128-byte correction.
const INDEXED: &str = r#"
#define STAP_SDT_CHEAP_SITE 1
#define STAP_SDT_ARG_CONSTRAINT nor
#include <sys/sdt.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 3;
  volatile int table[4] = {11, 22, 33, 44};
  for (int i = 0; i < n; i++)
    STAP_PROBE2(cheap, hit, i, table[i & 3]);
  return 0;
}
"#;

/// Build `source` with our `sdt.h`, check its note has `operand`, trace
/// `cheap:hit` over 5 hits: the two arguments of each hit.
fn traced_at_cheap_site(test: &str, source: &str, operand: &str) -> Option<Vec<(i64, i64)>> {
    if !prerequisites(test) {
        return None;
    }
    let include = format!("-I{}/sdt-header/include", env!("CARGO_MANIFEST_DIR"));
    let scratch = Scratch::new();
    let program = scratch.compile("gcc", "cheap.c", source, "cheap", &["-O2", &include]);
    let program = program.to_str().unwrap();

    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_stap-sdt"))
        .args(["list", "--json", program])
        .bounded_output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains(operand),
        "the fixture must pass an operand like {operand}: {listed}"
    );

    let (code, out, err) = trace(&[
        "--json",
        "-c",
        &format!("{program} 5"),
        &format!("{program}:cheap:hit"),
    ]);
    assert_eq!(code, Some(0), "{err:?}");
    assert!(
        err.iter()
            .any(|l| l.contains("a cheap site: attached at its 5-byte nop (+6)")),
        "{err:?}"
    );
    Some(
        json_lines(&out)
            .iter()
            .map(|e| {
                (
                    e["args"][0].as_i64().unwrap(),
                    e["args"][1].as_i64().unwrap(),
                )
            })
            .collect(),
    )
}

#[test]
fn cheap_site_is_attached_at_its_nop5_with_rsp_operands_adjusted() {
    let test = "cheap_site_is_attached_at_its_nop5_with_rsp_operands_adjusted";
    let Some(values) = traced_at_cheap_site(test, PROGRAM, "(%rsp)") else {
        return;
    };
    assert_eq!(values, (0..5).map(|i| (i, i * 7 + 1)).collect::<Vec<_>>());
}

#[test]
fn index_form_on_the_stack_at_a_cheap_site() {
    let test = "index_form_on_the_stack_at_a_cheap_site";
    let Some(values) = traced_at_cheap_site(test, INDEXED, "(%rsp,%") else {
        return;
    };
    let table = [11, 22, 33, 44];
    assert_eq!(
        values,
        (0..5)
            .map(|i| (i, table[i as usize & 3]))
            .collect::<Vec<_>>()
    );
}
