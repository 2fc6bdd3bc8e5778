//! Waiting for child processes with a limit.
//!
//! A test that waits without a limit turns one lost signal into a CI run
//! that never ends (bpftrace 0.17 sometimes misses a SIGINT that arrives
//! while it enters `epoll_wait`, and waits forever). Every wait here ends:
//! after the limit the child is SIGKILLed and the test panics naming it.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Long enough for any tool run in the suite on a loaded 2-core machine
/// (gdb sessions, compilers, cargo builds of fixtures), short enough that a
/// hang fails the run instead of the CI's own time limit.
pub const TOOL_LIMIT: Duration = Duration::from_secs(600);

/// How long a tracer or target is given to end after it was asked to.
pub const EXIT_LIMIT: Duration = Duration::from_secs(30);

const POLL: Duration = Duration::from_millis(20);

/// Wait for `child` up to `limit`; past it, SIGKILL it and panic with `what`.
pub fn wait_within(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{what} (pid {}) did not end within {limit:?}; killed",
                    child.id()
                );
            }
            Err(e) => panic!("cannot wait for {what}: {e}"),
        }
    }
}

/// Send `signal` to process `pid` (a child of the test, or a process the
/// test started through one). Errors are ignored: a process that already
/// ended is what the caller waits for next.
pub fn signal_pid(pid: u32, signal: i32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(pid as i32, signal) };
}

/// Send `signal` to `child` and wait for it to end, sending it again every
/// second: for third-party tools that can lose a signal (bpftrace). Our own
/// programs get one signal only, through [`wait_within`], so that a tracer
/// that ignores its first SIGINT fails its test.
pub fn signal_until_gone(child: &mut Child, signal: i32, what: &str) -> ExitStatus {
    let deadline = Instant::now() + EXIT_LIMIT;
    let mut next_signal = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        let now = Instant::now();
        if now >= deadline {
            return wait_within(child, Duration::ZERO, what);
        }
        if now >= next_signal {
            signal_pid(child.id(), signal);
            next_signal = now + Duration::from_secs(1);
        }
        std::thread::sleep(POLL);
    }
}

/// What a run that may have been cut short printed.
pub struct Collected {
    pub pid: u32,
    /// `None` when the child was killed at the limit.
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Run `cmd` with stdin closed, collecting stdout and stderr on threads (so
/// a chatty child cannot block on a full pipe while we wait); SIGKILL it at
/// `limit`.
pub fn collect_within(cmd: &mut Command, limit: Duration) -> std::io::Result<Collected> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let collect = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = collect(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = collect(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait()? {
            Some(status) => break Some(status),
            None if Instant::now() < deadline => std::thread::sleep(POLL),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Ok(Collected {
        pid: child.id(),
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// `cmd.output()` with a limit; panics (with what the command printed) when
/// it is reached.
pub fn output_within(cmd: &mut Command, limit: Duration) -> std::io::Result<Output> {
    let run = collect_within(cmd, limit)?;
    let Some(status) = run.status else {
        panic!(
            "{cmd:?} did not end within {limit:?}; killed. It printed:\n{}\n{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
    };
    Ok(Output {
        status,
        stdout: run.stdout,
        stderr: run.stderr,
    })
}

/// `.output()` that cannot hang a test: [`output_within`] with [`TOOL_LIMIT`].
pub trait BoundedOutput {
    fn bounded_output(&mut self) -> std::io::Result<Output>;
}

impl BoundedOutput for Command {
    fn bounded_output(&mut self) -> std::io::Result<Output> {
        output_within(self, TOOL_LIMIT)
    }
}

/// A fixture that prints `ready` and then waits for a line on its stdin
/// before it fires its probes: a tracer attaches in between.
pub struct Held {
    child: Child,
}

impl Held {
    /// Start `cmd` (its stdin and stdout piped) and read its `ready` line.
    pub fn start(cmd: &mut Command) -> Held {
        use std::io::BufRead;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the held fixture");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        out.read_line(&mut line)
            .expect("reading the fixture's ready line");
        assert_eq!(line, "ready\n", "the fixture's first line");
        Held { child }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Let it fire, and wait (up to [`EXIT_LIMIT`]) for it to end well.
    pub fn release(mut self) {
        use std::io::Write;
        writeln!(self.child.stdin.take().expect("piped stdin"), "go")
            .expect("releasing the fixture");
        assert!(wait_within(&mut self.child, EXIT_LIMIT, "held fixture").success());
    }
}
