//! Stack symbolization against real processes: the names, files and lines
//! GDB gives for the same addresses, after the process exited, from a
//! deleted binary, and demangled C++ and Rust names.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use test_support::bounded;
use test_support::Scratch;
use uprobe_engine::stacks::{
    folded, truncation, Frame, MappedObject, ProcessMaps, StackSymbolizer,
};
use uprobe_engine::Error;

/// Three calls deep, it waits reading stdin; first it prints the
/// addresses of its functions. One statement per line, so that lines are
/// unambiguous; the line numbers below are checked.
const FIXTURE: &str = r#"#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) int level3(int x)
{
    char c = 0;
    printf("ready\n");
    fflush(stdout);
    if (read(0, &c, 1) < 0)
        return -1;
    return x + c;
}

__attribute__((noinline)) int level2(int x)
{
    int r = level3(x + 1);
    return r + 1;
}

__attribute__((noinline)) int level1(int x)
{
    int r = level2(x + 1);
    return r + 1;
}

int main(void)
{
    printf("%p %p %p %p\n", (void *)level1, (void *)level2, (void *)level3, (void *)main);
    fflush(stdout);
    return level1(1) == 0;
}
"#;

/// A fixture process, blocked until its stdin closes; killed on drop.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The addresses it printed on its first line.
    addresses: Vec<u64>,
}

impl Running {
    /// Start `program`, read the addresses it prints, then wait for the
    /// lines up to `ready` (if `ready`), after which it blocks.
    fn start(program: &Path, ready: bool) -> Running {
        let mut child = Command::new(program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let stdin = child.stdin.take();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addresses = line
            .split_whitespace()
            .map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).unwrap())
            .collect();
        if ready {
            line.clear();
            out.read_line(&mut line).unwrap();
            assert_eq!(line, "ready\n");
        }
        Running {
            child,
            stdin,
            addresses,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Let it return and wait until it is gone.
    fn finish(mut self) {
        self.stdin.take().unwrap().write_all(b"x").unwrap();
        bounded::wait_within(&mut self.child, bounded::EXIT_LIMIT, "fixture");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            bounded::signal_until_gone(&mut self.child, libc::SIGKILL, "fixture");
        }
    }
}

fn build_fixture(test: &str, scratch: &Scratch) -> Option<PathBuf> {
    test_support::require(test, "gcc")?;
    Some(scratch.compile(
        "gcc",
        "fixture.c",
        FIXTURE,
        "fixture",
        &["-g", "-O0", "-fno-omit-frame-pointer"],
    ))
}

/// A frame of GDB's `bt`: address, function, `file:line` if it has one.
#[derive(Debug)]
struct GdbFrame {
    pc: u64,
    function: String,
    location: Option<String>,
}

/// GDB's backtrace of `pid`, with the address of every frame
/// (`-frame-info location-and-address`): the pc of the innermost frame and
/// return addresses for the others, the same as the kernel collects.
fn gdb_backtrace(gdb: &Path, pid: u32) -> Vec<GdbFrame> {
    let output = test_support::run(Command::new(gdb).args([
        "-nx",
        "-batch",
        "-p",
        &pid.to_string(),
        "-ex",
        "bt -frame-info location-and-address",
    ]));
    let text = String::from_utf8_lossy(&output.stdout);
    let frames: Vec<GdbFrame> = text
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|line| {
            // `#1  0x000056530b0e51ac in level3 (x=3) at fixture.c:9`
            let words: Vec<&str> = line.split_whitespace().collect();
            let pc = u64::from_str_radix(words[1].trim_start_matches("0x"), 16)
                .unwrap_or_else(|_| panic!("no address in GDB's {line:?}"));
            assert_eq!(words[2], "in", "{line}");
            let location = words
                .iter()
                .rposition(|w| *w == "at")
                .map(|at| words[at + 1].to_string());
            GdbFrame {
                pc,
                function: words[3].to_string(),
                location,
            }
        })
        .collect();
    assert!(
        !frames.is_empty(),
        "no backtrace from GDB:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    frames
}

fn source_of(frame: &Frame) -> Option<String> {
    let file = frame
        .file
        .as_ref()?
        .file_name()?
        .to_string_lossy()
        .into_owned();
    Some(format!("{file}:{}", frame.line?))
}

#[test]
fn same_names_and_lines_as_gdb_three_calls_deep() {
    let test = "same_names_and_lines_as_gdb_three_calls_deep";
    let scratch = Scratch::new();
    let Some(program) = build_fixture(test, &scratch) else {
        return;
    };
    let Some(gdb) = test_support::require(test, "gdb") else {
        return;
    };
    let running = Running::start(&program, true);
    let gdb_frames = gdb_backtrace(&gdb, running.pid());
    let ips: Vec<u64> = gdb_frames.iter().map(|f| f.pc).collect();

    let mut symbolizer = StackSymbolizer::new();
    let frames = symbolizer.symbolize(running.pid(), &ips).unwrap();
    let shown: String = frames.iter().map(|f| format!("{f}\n")).collect();
    assert_eq!(frames.len(), gdb_frames.len(), "{shown}");

    // GDB's frames in the fixture: names and lines the same. Its libc
    // frames carry names of its own choosing (`__GI___libc_read`).
    let in_fixture: Vec<(&GdbFrame, &Frame)> = gdb_frames
        .iter()
        .zip(&frames)
        .filter(|(_, f)| f.module.as_deref() == Some(program.as_path()))
        .collect();
    let names: Vec<&str> = in_fixture
        .iter()
        .map(|(_, f)| f.symbol.as_deref().unwrap_or("??"))
        .collect();
    assert_eq!(names, ["level3", "level2", "level1", "main"], "{shown}");
    for (gdb_frame, frame) in &in_fixture {
        assert_eq!(Some(&gdb_frame.function), frame.symbol.as_ref(), "{shown}");
        // GDB names the file as the compiler was given it (a full path).
        let gdb_location = gdb_frame
            .location
            .as_deref()
            .map(|l| l.rsplit('/').next().unwrap());
        assert_eq!(gdb_location, source_of(frame).as_deref(), "{shown}");
        assert_eq!(
            frame.file.as_deref(),
            Some(scratch.join("fixture.c").as_path()),
            "{shown}"
        );
    }
    // The lines of the calls (the return addresses are after them).
    let lines: Vec<Option<u32>> = in_fixture.iter().map(|(_, f)| f.line).collect();
    assert_eq!(lines, [Some(9), Some(16), Some(22), Some(30)], "{shown}");

    // The innermost frame is in libc's read.
    let libc = frames[0].module.as_ref().expect("libc frame has a module");
    assert!(
        libc.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("libc.so"),
        "{shown}"
    );
    assert!(
        frames[0].symbol.as_deref().unwrap_or("").contains("read"),
        "{shown}"
    );

    // A return address shows its own offset: main's frame is where GDB
    // says, and the offset counts from main's address the fixture printed.
    let main_address = running.addresses[3];
    let main_frame = frames
        .iter()
        .find(|f| f.symbol.as_deref() == Some("main"))
        .unwrap();
    assert_eq!(main_frame.offset_in_symbol, main_frame.ip - main_address);

    assert_eq!(folded(&frames[1..]), "main;level1;level2;level3", "{shown}");
    // Reaches main: whole.
    assert_eq!(truncation(&frames, 127), None, "{shown}");
    // Without main, it is not.
    let why = truncation(&frames[..3], 127)
        .expect("cut short")
        .to_string();
    assert!(
        why.contains("level2") && why.contains("-fno-omit-frame-pointer"),
        "{why}"
    );
    running.finish();
}

#[test]
fn function_addresses_give_names_files_and_lines() {
    let test = "function_addresses_give_names_files_and_lines";
    let scratch = Scratch::new();
    let Some(program) = build_fixture(test, &scratch) else {
        return;
    };
    let running = Running::start(&program, true);
    let [level1, level2, level3, main] = running.addresses[..] else {
        panic!("fixture printed {:?}", running.addresses);
    };
    let mut symbolizer = StackSymbolizer::new();
    // A first frame is an exact address (the probed instruction), so the
    // function's first byte is the function itself, at its opening line.
    let frames = symbolizer
        .symbolize(running.pid(), &[level3, level2 + 4, level1 + 1, main + 1])
        .unwrap();
    let got: Vec<(Option<&str>, u64, Option<u32>)> = frames
        .iter()
        .map(|f| (f.symbol.as_deref(), f.offset_in_symbol, f.line))
        .collect();
    // Frames after the first are return addresses: +4 and +1 are looked
    // up at +3 and +0, but their offsets are those of the addresses given.
    assert_eq!(
        got,
        [
            (Some("level3"), 0, Some(5)),
            (Some("level2"), 4, Some(15)),
            (Some("level1"), 1, Some(21)),
            (Some("main"), 1, Some(27)),
        ]
    );
    // A return address at a function's first byte follows a call that
    // ended the function before (one that does not return): it belongs
    // to the function before, at its last line.
    let frames = symbolizer
        .symbolize(running.pid(), &[level3, main])
        .unwrap();
    assert_eq!(frames[1].symbol.as_deref(), Some("level1"));
    assert_eq!(frames[1].line, Some(24));
    for frame in &frames {
        assert_eq!(frame.module.as_deref(), Some(program.as_path()));
        assert_eq!(
            frame.file.as_deref(),
            Some(scratch.join("fixture.c").as_path())
        );
    }
    assert_eq!(
        frames[0].to_string(),
        format!(
            "  0x{level3:x} level3+0x0 ({}) [fixture.c:5]",
            program.display()
        )
    );

    // Without source lines: names only.
    let mut names_only = StackSymbolizer::with_source_lines(false);
    let frames = names_only.symbolize(running.pid(), &[level2 + 4]).unwrap();
    assert_eq!(frames[0].symbol.as_deref(), Some("level2"));
    assert_eq!((frames[0].file.as_ref(), frames[0].line), (None, None));

    // An address in no mapping: known by its address only.
    let frames = symbolizer.symbolize(running.pid(), &[8]).unwrap();
    assert_eq!(frames, [Frame::unknown(8)]);
    running.finish();
}

#[test]
fn exited_process_still_symbolizes_after_remember() {
    let test = "exited_process_still_symbolizes_after_remember";
    let scratch = Scratch::new();
    let Some(program) = build_fixture(test, &scratch) else {
        return;
    };
    let running = Running::start(&program, true);
    let pid = running.pid();
    let level2 = running.addresses[1];
    let mut symbolizer = StackSymbolizer::new();
    symbolizer.remember(pid).unwrap();
    running.finish();
    assert!(!Path::new(&format!("/proc/{pid}")).exists());

    let frames = symbolizer.symbolize(pid, &[level2 + 2]).unwrap();
    assert_eq!(frames[0].symbol.as_deref(), Some("level2"));
    assert_eq!(frames[0].line, Some(15));

    // Never remembered and gone: a clear error, and forgetting works.
    symbolizer.forget(pid);
    let error = symbolizer.symbolize(pid, &[level2]).unwrap_err();
    assert!(matches!(error, Error::Input(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&format!("no process {pid}")), "{message}");
}

#[test]
fn bad_pid_is_an_error() {
    let mut symbolizer = StackSymbolizer::new();
    // Above the kernel's pid_max limit (4M): never a process.
    let error = symbolizer.remember(u32::MAX).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "no process {} (it may have exited): cannot read its memory map for stacks",
            u32::MAX
        )
    );
    assert!(symbolizer.symbolize(u32::MAX, &[1, 2]).is_err());
}

#[test]
fn deleted_binary_symbolizes_after_exit() {
    let test = "deleted_binary_symbolizes_after_exit";
    if !test_support::is_root() {
        // /proc/PID/map_files can be opened with CAP_SYS_ADMIN only.
        test_support::skip(test, "opening a deleted binary through /proc needs root");
        return;
    }
    let scratch = Scratch::new();
    let Some(program) = build_fixture(test, &scratch) else {
        return;
    };
    let running = Running::start(&program, true);
    std::fs::remove_file(&program).unwrap();
    let level3 = running.addresses[2];
    let mut symbolizer = StackSymbolizer::new();
    symbolizer.remember(running.pid()).unwrap();
    let pid = running.pid();
    running.finish();

    let frames = symbolizer.symbolize(pid, &[level3 + 8]).unwrap();
    assert_eq!(frames[0].symbol.as_deref(), Some("level3"), "{}", frames[0]);
    // Named by the path it had.
    assert_eq!(frames[0].module.as_deref(), Some(program.as_path()));
}

#[test]
fn cpp_names_are_demangled() {
    let test = "cpp_names_are_demangled";
    let scratch = Scratch::new();
    let Some(_) = test_support::require(test, "g++") else {
        return;
    };
    let source = r#"#include <cstdio>
#include <unistd.h>
namespace ns {
struct Widget {
    __attribute__((noinline)) static int poke(int x) { char c = 0; return read(0, &c, 1) + x; }
};
template <typename T> __attribute__((noinline)) T twice(T v) { return v * 2; }
}
int main() {
    std::printf("%p %p\n", (void *)&ns::Widget::poke, (void *)&ns::twice<long>);
    std::fflush(stdout);
    return ns::Widget::poke((int)ns::twice<long>(1)) < 0;
}
"#;
    for flags in [&["-g", "-O0"][..], &["-O0"][..]] {
        let program = scratch.compile("g++", "widget.cc", source, "widget", flags);
        let running = Running::start(&program, false);
        let mut symbolizer = StackSymbolizer::new();
        // Each address as a stack of its own: a first frame is exact, the
        // others would be looked up one byte before.
        let frames: Vec<Frame> = running
            .addresses
            .iter()
            .flat_map(|&a| symbolizer.symbolize(running.pid(), &[a]).unwrap())
            .collect();
        let names: Vec<&str> = frames
            .iter()
            .map(|f| f.symbol.as_deref().unwrap_or("??"))
            .collect();
        assert_eq!(
            names,
            ["ns::Widget::poke(int)", "long ns::twice<long>(long)"],
            "with {flags:?}"
        );
        running.finish();
    }
}

#[test]
fn rust_names_are_demangled() {
    let test = "rust_names_are_demangled";
    let scratch = Scratch::new();
    let Some(rustc) = test_support::require(test, "rustc") else {
        return;
    };
    let source = r#"
mod deep {
    #[inline(never)]
    pub fn level_rust(x: u8) -> u8 {
        let mut c = [0u8; 1];
        let _ = std::io::Read::read(&mut std::io::stdin(), &mut c);
        x.wrapping_add(c[0])
    }
}
fn main() {
    println!("{:p}", deep::level_rust as fn(u8) -> u8);
    std::process::exit(deep::level_rust(1) as i32);
}
"#;
    let program = scratch.compile(
        rustc.to_str().unwrap(),
        "rfix.rs",
        source,
        "rfix",
        &["-g", "-C", "force-frame-pointers=yes"],
    );
    let running = Running::start(&program, false);
    let mut symbolizer = StackSymbolizer::new();
    let frames = symbolizer
        .symbolize(running.pid(), &running.addresses)
        .unwrap();
    assert_eq!(
        frames[0].symbol.as_deref(),
        Some("rfix::deep::level_rust"),
        "{}",
        frames[0]
    );
    assert_eq!(frames[0].line, Some(4));
    running.finish();
}

#[test]
fn vdso_frames_are_named() {
    let me = std::process::id();
    let maps = ProcessMaps::read(me).unwrap();
    let Some(vdso) = maps
        .mappings()
        .iter()
        .find(|m| m.object == MappedObject::Vdso)
    else {
        test_support::skip("vdso_frames_are_named", "this process has no vDSO");
        return;
    };
    // Every 16 bytes of the vDSO: its clock_gettime is somewhere.
    let ips: Vec<u64> = (vdso.start..vdso.end).step_by(16).collect();
    let mut symbolizer = StackSymbolizer::new();
    let frames = symbolizer.symbolize(me, &ips).unwrap();
    assert!(frames
        .iter()
        .all(|f| f.module.as_deref() == Some(Path::new("[vdso]"))));
    let names: Vec<&str> = frames.iter().filter_map(|f| f.symbol.as_deref()).collect();
    assert!(
        names.iter().any(|n| n.contains("clock_gettime")),
        "vDSO names: {names:?}"
    );
}

#[test]
fn jit_code_named_by_perf_map_mapped_after_remember() {
    let me = std::process::id();
    let mut symbolizer = StackSymbolizer::new();
    symbolizer.remember(me).unwrap();
    // "JIT code", mapped after the snapshot, as a runtime does.
    let size = 4096;
    // SAFETY: a fresh anonymous mapping, unmapped below, never accessed.
    let code = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(code, libc::MAP_FAILED);
    let start = code as u64;
    let perf_map = PathBuf::from(format!("/tmp/perf-{me}.map"));
    std::fs::write(&perf_map, format!("{start:x} 40 Interpreted:jitted_fn\n")).unwrap();
    let frames = symbolizer.symbolize(me, &[start + 4, start + 0x41]);
    let _ = std::fs::remove_file(&perf_map);
    // SAFETY: the mapping made above.
    unsafe { libc::munmap(code, size) };
    let frames = frames.unwrap();
    assert_eq!(frames[0].symbol.as_deref(), Some("Interpreted:jitted_fn"));
    assert_eq!(frames[0].offset_in_symbol, 4);
    // Return address 0x41 is looked up at 0x40, past the function.
    assert_eq!(frames[1].symbol, None);
}

#[test]
fn library_mapped_after_remember_is_found() {
    let test = "library_mapped_after_remember_is_found";
    let scratch = Scratch::new();
    let Some(program) = build_fixture(test, &scratch) else {
        return;
    };
    // Where level3 is in the file, from a run of the fixture.
    let running = Running::start(&program, true);
    let maps = ProcessMaps::read(running.pid()).unwrap();
    let (path, level3_offset) = maps.file_offset(running.addresses[2]).unwrap();
    assert_eq!(path, program);
    running.finish();

    let me = std::process::id();
    let mut symbolizer = StackSymbolizer::new();
    symbolizer.remember(me).unwrap();
    // Map the fixture into this process afterwards, as dlopen would.
    let file = std::fs::File::open(&program).unwrap();
    let size = file.metadata().unwrap().len() as usize;
    // SAFETY: a fresh private mapping of a file, unmapped below, never
    // accessed.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_PRIVATE,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED);
    let frames = symbolizer.symbolize(me, &[base as u64 + level3_offset]);
    // SAFETY: the mapping made above.
    unsafe { libc::munmap(base, size) };
    let frames = frames.unwrap();
    assert_eq!(frames[0].symbol.as_deref(), Some("level3"), "{}", frames[0]);
    assert_eq!(frames[0].module.as_deref(), Some(program.as_path()));
}

#[test]
fn binary_only_in_another_mount_namespace() {
    let test = "binary_only_in_another_mount_namespace";
    if !test_support::is_root() {
        test_support::skip(test, "a mount namespace and /proc/PID/map_files need root");
        return;
    }
    let Some(unshare) = test_support::require(test, "unshare") else {
        return;
    };
    let scratch = Scratch::new();
    let Some(program) = build_fixture(test, &scratch) else {
        return;
    };
    // As in a container: the binary exists only in the process's own
    // mount namespace, on a tmpfs mounted there.
    let hidden = scratch.join("ns");
    std::fs::create_dir(&hidden).unwrap();
    let inside = hidden.join("fixture");
    let script = format!(
        "mount -t tmpfs none {dir} && cp {program} {inside} && exec {inside}",
        dir = hidden.display(),
        program = program.display(),
        inside = inside.display()
    );
    let wrapper = scratch.write(
        "in-namespace.sh",
        format!(
            "#!/bin/sh\nexec {} --mount --propagation private sh -c '{script}'\n",
            unshare.display()
        ),
    );
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let running = Running::start(&wrapper, true);
    assert!(
        !inside.exists(),
        "the tmpfs is visible outside its namespace"
    );
    let pid = running.pid();
    let level3 = running.addresses[2];
    let mut symbolizer = StackSymbolizer::new();
    symbolizer.remember(pid).unwrap();
    running.finish();

    let frames = symbolizer.symbolize(pid, &[level3 + 8]).unwrap();
    assert_eq!(frames[0].symbol.as_deref(), Some("level3"), "{}", frames[0]);
    assert_eq!(frames[0].module.as_deref(), Some(inside.as_path()));
}
