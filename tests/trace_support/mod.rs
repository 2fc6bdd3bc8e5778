//! Shared by the `trace_*` tests: build the C fixture (each test its own
//! copy, since uprobes are keyed by inode), run targets and tracers, and
//! check that no kernel state of ours is left.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};
use test_support::bounded::BoundedOutput;
use test_support::bounded::{wait_within, EXIT_LIMIT};
use test_support::Scratch;

pub const BIN: &str = env!("CARGO_BIN_EXE_stap-sdt");
const FIXTURE: &str = include_str!("../fixtures/trace_fixture.c");

/// Root and a compiler, or a printed skip.
pub fn prerequisites(test: &str) -> bool {
    if !test_support::is_root() {
        test_support::skip(test, "attaching uprobes needs root (CI runs as root)");
        return false;
    }
    test_support::require(test, "gcc").is_some() && test_support::system_sdt_include().is_some()
}

/// Compile the fixture into `scratch`.
pub fn fixture(scratch: &Scratch) -> PathBuf {
    let include = test_support::system_sdt_include().expect("sys/sdt.h");
    let include = format!("-I{}", include.display());
    scratch.compile(
        "gcc",
        "trace_fixture.c",
        FIXTURE,
        "fx",
        &["-O2", "-g", "-pthread", &include],
    )
}

/// Lines of a child's pipe, read on a thread so nothing blocks.
pub struct Lines {
    rx: Receiver<String>,
    pub seen: Vec<String>,
    /// Lines before this index were consumed by an earlier `wait_for`.
    next: usize,
}

impl Lines {
    pub fn new(pipe: impl std::io::Read + Send + 'static) -> Lines {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
            next: 0,
        }
    }

    /// Wait (up to 20 s) for a line after the last one returned that
    /// contains `needle`; returns it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        if let Some(at) = self.seen[self.next..]
            .iter()
            .position(|l| l.contains(needle))
        {
            self.next += at + 1;
            return self.seen[self.next - 1].clone();
        }
        self.next = self.seen.len();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    self.next = self.seen.len();
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no line containing {needle:?}; saw {:#?}", self.seen);
    }

    /// Everything until the pipe closes.
    /// Whether a line after the last one returned contains `needle`
    /// within `limit` (consumed if so).
    pub fn try_wait_for(&mut self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(at) = self.seen[self.next..]
                .iter()
                .position(|l| l.contains(needle))
            {
                self.next += at + 1;
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            match self.rx.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => return false,
            }
        }
    }

    pub fn rest(mut self) -> Vec<String> {
        while let Ok(line) = self.rx.recv_timeout(Duration::from_secs(20)) {
            self.seen.push(line);
        }
        self.seen
    }
}

/// A fixture process waiting for "go" (or other lines) on stdin.
pub struct Target {
    pub child: Child,
    stdin: Option<ChildStdin>,
    pub stdout: Lines,
}

impl Target {
    pub fn spawn(fx: &Path, args: &[&str]) -> Target {
        let mut command = Command::new(fx);
        command.args(args);
        Target::spawn_command(command)
    }

    /// Like [`Target::spawn`], for a command with its own environment.
    pub fn spawn_command(mut command: Command) -> Target {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start fixture");
        let stdout = Lines::new(child.stdout.take().unwrap());
        Target {
            stdin: child.stdin.take(),
            child,
            stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to fixture");
        stdin.flush().unwrap();
    }

    /// Close stdin and wait.
    pub fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        wait_within(&mut self.child, EXIT_LIMIT, "fixture")
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `stap-sdt trace`, started once it says it is tracing.
pub struct Tracer {
    pub child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Tracer {
    pub fn start(args: &[&str]) -> Tracer {
        Tracer::start_subcommand("trace", args)
    }

    /// `stap-sdt SUBCOMMAND ARGS` (`latency`, …), once it says it is tracing.
    pub fn start_subcommand(subcommand: &str, args: &[&str]) -> Tracer {
        let mut child = Command::new(BIN)
            .arg(subcommand)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stap-sdt trace");
        let stdout = Lines::new(child.stdout.take().unwrap());
        let mut stderr = Lines::new(child.stderr.take().unwrap());
        stderr.wait_for("Tracing ");
        Tracer {
            child,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: i32) {
        test_support::bounded::signal_pid(self.child.id(), signal);
    }

    /// Wait for the tracer to end; (exit code, stdout lines, stderr lines).
    pub fn wait(mut self) -> (Option<i32>, Vec<String>, Vec<String>) {
        let status = wait_within(&mut self.child, EXIT_LIMIT, "stap-sdt trace");
        let out = std::mem::replace(&mut self.stdout, Lines::new(std::io::empty())).rest();
        let err = std::mem::replace(&mut self.stderr, Lines::new(std::io::empty())).rest();
        (status.code(), out, err)
    }

    pub fn interrupt(self) -> (Option<i32>, Vec<String>, Vec<String>) {
        self.signal(libc::SIGINT);
        self.wait()
    }
}

impl Drop for Tracer {
    /// A failing test still detaches cleanly (SIGTERM, not SIGKILL).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal(libc::SIGTERM);
            if !std::thread::panicking() {
                wait_within(&mut self.child, EXIT_LIMIT, "stap-sdt trace after SIGTERM");
            } else {
                // Already failing: end it without a second panic.
                let deadline = Instant::now() + EXIT_LIMIT;
                while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Run `stap-sdt trace ARGS` to completion (for `-c` runs).
pub fn trace(args: &[&str]) -> (Option<i32>, Vec<String>, Vec<String>) {
    run_subcommand("trace", args)
}

/// Run `stap-sdt SUBCOMMAND ARGS` to completion.
pub fn run_subcommand(subcommand: &str, args: &[&str]) -> (Option<i32>, Vec<String>, Vec<String>) {
    let out = Command::new(BIN)
        .arg(subcommand)
        .args(args)
        .stdin(Stdio::null())
        .bounded_output()
        .expect("run stap-sdt trace");
    let lines = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .map(String::from)
            .collect()
    };
    (out.status.code(), lines(&out.stdout), lines(&out.stderr))
}

/// The uprobe_events lines of the tracer with this pid.
pub fn events_of(tracer_pid: u32) -> Vec<String> {
    let mut held = test_support::uprobe_multi_links(tracer_pid);
    held.extend(test_support::tracer_uprobe_events(tracer_pid));
    held
}

/// Parse `--json` lines.
/// The fixture's `twelve` probe, fired for rounds 0, 1, …: round r's
/// arguments are r*100+1 … r*100+12, and every one of them arrived.
pub fn assert_twelve_arguments(events: &[serde_json::Value]) {
    for (round, e) in events.iter().enumerate() {
        let expected: Vec<i64> = (1..=12).map(|k| round as i64 * 100 + k).collect();
        let got: Vec<i64> = e["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(got, expected, "round {round}");
    }
}

pub fn json_lines(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// The fixture in `guarded` mode, having printed `enabled=0`, and the
/// run-time address of its semaphore (checked to be 0).
pub fn guarded_target(fx: &std::path::Path) -> (Target, u64) {
    let mut target = Target::spawn(fx, &["guarded"]);
    target.stdout.wait_for("enabled=0");
    let address = semaphore_address(target.pid(), "fixture", "guarded");
    assert_eq!(read_u16(target.pid(), address), 0);
    (target, address)
}

/// The run-time address of a probe's semaphore in `pid`, from `stap-sdt list -p`.
pub fn semaphore_address(pid: u32, provider: &str, name: &str) -> u64 {
    let out = Command::new(BIN)
        .args([
            "list",
            "--json",
            "-p",
            &pid.to_string(),
            &format!("{provider}:{name}"),
        ])
        .bounded_output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["probes"].as_array().unwrap().iter())
        .flat_map(|p| p["locations"].as_array().unwrap().iter())
        .find_map(|l| l["semaphore"]["runtime_address"].as_u64())
        .expect("semaphore with a run-time address")
}

/// Read a `u16` from another process's memory.
pub fn read_u16(pid: u32, address: u64) -> u16 {
    use std::os::unix::fs::FileExt;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut buf = [0u8; 2];
    mem.read_exact_at(&mut buf, address).unwrap();
    u16::from_ne_bytes(buf)
}
