//! A probe in a shared library: named by its file name (resolved through
//! the process's maps), used by two processes of which -p sees one, and
//! loaded with dlopen after a `-c` command started.

mod trace_support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use test_support::Scratch;
use trace_support::*;

const LIBRARY: &str = r#"
#include <sys/sdt.h>
void libfx_call(long n) { DTRACE_PROBE1(libfx, call, n); }
"#;

const PROGRAM: &str = r#"
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char line[16];
    printf("ready\n");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) return 1;
    /* Loaded only now, after the tracer attached. */
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 2; }
    void (*call)(long) = (void (*)(long))dlsym(lib, "libfx_call");
    /* "slow": about 5 s of calls, so a tracer attached meanwhile sees some. */
    long n = argc > 2 ? 5000 : 100;
    for (long i = 0; i < n; i++) { call(getpid() * 10000L + i); if (argc > 2) usleep(1000); }
    return 0;
}
"#;

fn build(scratch: &Scratch) -> (PathBuf, PathBuf) {
    let include = format!(
        "-I{}",
        test_support::system_sdt_include().unwrap().display()
    );
    let lib = scratch.compile(
        "gcc",
        "libfx.c",
        LIBRARY,
        "libfxprobe.so.1",
        &["-O2", "-shared", "-fPIC", &include],
    );
    let program = scratch.compile("gcc", "main.c", PROGRAM, "user", &["-O2", "-ldl"]);
    (lib, program)
}

#[test]
fn library_probe_seen_in_the_traced_process_only() {
    if !prerequisites("library_probe_seen_in_the_traced_process_only") {
        return;
    }
    let scratch = Scratch::new();
    let (lib, program) = build(&scratch);
    let lib_arg = lib.display().to_string();
    let mut a = Target::spawn(&program, &[&lib_arg, "slow"]);
    let mut b = Target::spawn(&program, &[&lib_arg, "slow"]);
    a.stdout.wait_for("ready");
    b.stdout.wait_for("ready");
    // Both load the library; then trace A by the library's name only.
    a.send("go");
    b.send("go");
    // Wait until A has mapped the library, then attach by its short name.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(format!("/proc/{}/maps", a.pid()))
        .unwrap()
        .contains("libfxprobe.so.1")
    {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let pid = a.pid().to_string();
    let mut tracer = Tracer::start(&["--json", "-p", &pid, "libfxprobe.so:libfx:call"]);
    // Without a path: every object the process maps is searched.
    let mut anywhere = Tracer::start(&["--json", "-p", &pid, "libfx:call"]);
    tracer.stdout.wait_for("libfx:call");
    anywhere.stdout.wait_for(&format!("\"pid\":{pid}"));
    anywhere.interrupt();
    let (code, out, err) = tracer.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let events = json_lines(&out);
    let pids: BTreeSet<u64> = events.iter().map(|e| e["pid"].as_u64().unwrap()).collect();
    assert_eq!(
        pids,
        BTreeSet::from([a.pid() as u64]),
        "B uses the library too"
    );
    for e in &events {
        assert_eq!(e["args"][0].as_i64().unwrap() / 10000, a.pid() as i64);
        assert_eq!(e["path"], lib.canonicalize().unwrap().display().to_string());
    }
}

#[test]
fn command_sees_probes_of_a_library_it_dlopens_later() {
    if !prerequisites("command_sees_probes_of_a_library_it_dlopens_later") {
        return;
    }
    let scratch = Scratch::new();
    let (lib, program) = build(&scratch);
    let cmd = format!(
        "echo go | {} {} >/dev/null",
        program.display(),
        lib.display()
    );
    let probe = format!("{}:libfx:call", lib.display());
    let (code, out, err) = trace(&["--count", "-c", &cmd, &probe]);
    assert_eq!(code, Some(0), "{err:?}");
    assert_eq!(out, ["@count[libfx:call]: 100"]);
}
