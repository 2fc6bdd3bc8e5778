//! Arguments of every operand form, fetched by the kernel at the hit
//! (by the probe's BPF program, every operand form).

mod trace_support;

use test_support::bounded::BoundedOutput;
use test_support::Scratch;
use trace_support::*;

/// The fixture's `forms` probe has the forms the test claims to cover.
fn operand_kinds(fx: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new(BIN)
        .args(["list", "--json"])
        .arg(fx)
        .arg("fixture:forms")
        .bounded_output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["objects"][0]["probes"][0]["locations"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let op = &a["operand"];
            match op["kind"].as_str().unwrap() {
                "memory" if !op["symbol"].is_null() => "symbol".to_string(),
                "memory" if !op["index"].is_null() => "index".to_string(),
                kind => kind.to_string(),
            }
        })
        .collect()
}

#[test]
fn every_operand_form_is_fetched() {
    if !prerequisites("every_operand_form_is_fetched") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    assert_eq!(
        operand_kinds(&fx),
        [
            "register",
            "register",
            "memory",
            "symbol",
            "index",
            "immediate",
            "memory"
        ],
        "the compiler changed the fixture's operand forms"
    );
    let cmd = format!("echo go | {} forms 3 >/dev/null", fx.display());
    let probe = format!("{}:fixture:forms", fx.display());
    let (code, out, err) = trace(&["--json", "--str", "1,6", "-c", &cmd, &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    // Every form is fetched: nothing is named unfetchable.
    assert!(
        !err.iter().any(|l| l.contains("cannot be fetched")),
        "{err:?}"
    );
    let events = json_lines(&out);
    assert_eq!(events.len(), 3, "{out:?}");
    for (i, e) in events.iter().enumerate() {
        let args = e["args"].as_array().unwrap();
        assert_eq!(args[0], -1000 - i as i64, "negative register value");
        assert_eq!(args[1], "hello probe", "string through a register");
        assert_eq!(args[2], -99, "memory at register + displacement");
        assert_eq!(args[3], -123456, "global through sym(%rip)");
        assert_eq!(args[4], [10, -20, 30][i], "table[i]: base+index*scale");
        assert_eq!(args[5], 42, "constant");
        assert_eq!(args[6], "widget", "string through a pointer in memory");
        assert_eq!(e["probe"], "fixture:forms");
        assert_eq!(e["comm"], "fx");
    }
}

#[test]
fn all_twelve_arguments_arrive() {
    if !prerequisites("all_twelve_arguments_arrive") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let cmd = format!("echo go | {} twelve 2 >/dev/null", fx.display());
    let probe = format!("usdt:{}:fixture:twelve", fx.display());
    let (code, out, err) = trace(&["--json", "-c", &cmd, &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    let events = json_lines(&out);
    assert_eq!(events.len(), 2, "{out:?} {err:?}");
    assert_twelve_arguments(&events);
}

#[test]
fn function_entry_and_return() {
    if !prerequisites("function_entry_and_return") {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let cmd = format!("echo go | {} twelve 2 >/dev/null", fx.display());
    let entry = format!("{}:fn:twelve", fx.display());
    let ret = format!("uretprobe:{}:main", fx.display());
    // Entry and return sites of one file: two links, one ring.
    {
        let extra: Option<&str> = None;
        let (code, out, err) = trace(&["--json", "-c", &cmd, &entry, &ret]);
        assert_eq!(code, Some(0), "{err:?}");
        let events = json_lines(&out);
        let entries: Vec<_> = events.iter().filter(|e| e["probe"] == "twelve").collect();
        assert_eq!(entries.len(), 2, "{extra:?} {out:?}");
        // twelve(long base): the first argument register holds base.
        assert_eq!(entries[0]["args"][0], 0);
        assert_eq!(entries[1]["args"][0], 100);
        assert_eq!(entries[0]["comm"], "fx");
        let returns: Vec<_> = events
            .iter()
            .filter(|e| e["probe"] == "main%return")
            .collect();
        assert_eq!(returns.len(), 1, "{extra:?} {out:?}");
        assert_eq!(returns[0]["args"][0], 0, "main returned 0");
    }
}

/// `source` built by the i386 cross compiler at -O2 with `link` (`-static`,
/// `-static-pie`), or None after a printed skip.
fn build_i386(test: &str, source: &str, link: &str) -> Option<(Scratch, std::path::PathBuf)> {
    if !prerequisites(test) {
        return None;
    }
    let gcc = test_support::require(test, "i686-linux-gnu-gcc")?;
    let scratch = Scratch::new();
    let include = test_support::system_sdt_include().unwrap();
    let program = scratch.compile(
        gcc.to_str().unwrap(),
        "t32.c",
        source,
        "t32",
        &["-O2", link, "-idirafter", include.to_str().unwrap()],
    );
    Some((scratch, program))
}

/// A 32-bit (i386) program on the 64-bit kernel: its registers are the
/// low halves of the saved 64-bit ones.
#[test]
fn i386_program_registers_and_strings() {
    let source = r#"
#include <sys/sdt.h>
int main(void) {
    volatile int n = -5;
    const char *volatile s = "thirty-two";
    /* p is kept in a register, so the kernel can follow it. */
    for (int i = 0; i < 2; i++) {
        int v = n - i;
        const char *p = s;
        __asm__ volatile("" : "+r"(p));
        DTRACE_PROBE2(compat, hit, v, p);
    }
    return 0;
}
"#;
    let Some((_scratch, program)) =
        build_i386("i386_program_registers_and_strings", source, "-static")
    else {
        return;
    };
    let probe = format!("{}:compat:hit", program.display());
    let cmd = program.display().to_string();
    let (code, out, err) = trace(&["--json", "--str", "1", "-c", &cmd, &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    let events = json_lines(&out);
    assert_eq!(events.len(), 2, "{out:?} {err:?}");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["args"][0], -5 - i as i64);
        assert_eq!(e["args"][1], "thirty-two");
    }
}

/// i386 position-independent code reaches globals through the GOT pointer
/// it keeps in a register: `sym@GOTOFF(%reg)` (read at the register plus
/// `sym - GOT`); the string is behind a 32-bit pointer in memory.
#[test]
fn i386_pic_globals_through_the_got() {
    let source = r#"
#include <sys/sdt.h>
volatile int counter = 41;
const char *volatile label = "got-relative";
int main(void) {
    for (int i = 0; i < 2; i++) {
        counter++;
        DTRACE_PROBE2(got, hit, counter, label);
    }
    return 0;
}
"#;
    let Some((_scratch, program)) =
        build_i386("i386_pic_globals_through_the_got", source, "-static-pie")
    else {
        return;
    };
    let probe = format!("{}:got:hit", program.display());
    let cmd = program.display().to_string();
    let (code, out, err) = trace(&["--json", "--str", "1", "-c", &cmd, &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    let events = json_lines(&out);
    assert_eq!(events.len(), 2, "{out:?} {err:?}");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["args"][0], 42 + i as i64);
        assert_eq!(e["args"][1], "got-relative");
    }
}
