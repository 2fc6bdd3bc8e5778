//! The floor for `benches/trace_bench.sh`: a 2-instruction BPF program
//! (`r0 = 0; exit`) on one `uprobe_multi` link over the given file offsets.
//! Whatever a tracer does on top of what the kernel must do to run a BPF
//! program at a uprobe shows as its distance from this.
//!
//! ```sh
//! # hold the link on every process until SIGINT/SIGTERM (or SECONDS):
//! uprobe_floor [-p PID] [-d SECONDS] FILE OFFSET[:SEMAPHORE_OFFSET]...
//! # attach with the link's pid filter on a command held until attached:
//! uprobe_floor -c 'CMD ARGS' FILE OFFSET...
//! ```
//! (as root). Offsets are file offsets, decimal or `0x` hex. On stderr:
//! `floor: attached N sites` once the link exists, then how long loading
//! and attaching, and detaching (closing the link) took.
//!
//! With `-r ringbuf` or `-r perfbuf` the program builds and sends the
//! record `stap-sdt trace --json` sends for two integers instead, through
//! that transport, and a reader thread takes the records ([`records`]);
//! at the end: `floor: N records read, M lost`.

mod records;

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use uprobe_engine::bpf::insn;
use uprobe_engine::bpf::sys::{Link, LinkSite, Program, ProgramKind};

fn number(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|_| format!("not a number: {s}"))
}

struct Args {
    records: Option<records::Transport>,
    pid: Option<u32>,
    command: Option<String>,
    seconds: Option<f64>,
    file: PathBuf,
    sites: Vec<LinkSite>,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut pid, mut command, mut seconds, mut rest) = (None, None, None, Vec::new());
    let mut records = None;
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "-p" => pid = Some(value()?.parse().map_err(|_| "bad pid")?),
            "-c" => command = Some(value()?),
            "-d" => seconds = Some(value()?.parse().map_err(|_| "bad seconds")?),
            "-r" => records = Some(records::Transport::parse(&value()?)?),
            _ => rest.push(a),
        }
    }
    let (file, offsets) = rest.split_first().ok_or("no file")?;
    if offsets.is_empty() {
        return Err("no offset".into());
    }
    let sites = offsets
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let (offset, semaphore) = o.split_once(':').unwrap_or((o, "0"));
            Ok(LinkSite {
                offset: number(offset)?,
                ref_ctr_offset: number(semaphore)?,
                cookie: i as u64,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Args {
        records,
        pid,
        command,
        seconds,
        file: PathBuf::from(file),
        sites,
    })
}

/// Fork `/bin/sh -c 'exec CMD'`, held on a pipe until [`release`] (as
/// `stap-sdt trace -c` does).
fn spawn_held(command: &str) -> std::io::Result<(libc::pid_t, OwnedFd)> {
    let argv: Vec<CString> = ["sh", "-c", &format!("exec {command}")]
        .iter()
        .map(|s| CString::new(*s).expect("no NUL in the command"))
        .collect();
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the child only calls async-signal-safe functions (read,
    // execv, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the child: async-signal-safe calls only, on a live
        // local and an argv array built before the fork.
        unsafe {
            libc::close(fds[1]);
            let mut byte = 0u8;
            libc::read(fds[0], (&mut byte as *mut u8).cast(), 1);
            libc::execv(c"/bin/sh".as_ptr(), argv_ptrs.as_ptr());
            libc::_exit(127);
        }
    }
    // SAFETY: both descriptors are ours; the parent keeps the write end.
    unsafe {
        libc::close(fds[0]);
        Ok((pid, OwnedFd::from_raw_fd(fds[1])))
    }
}

fn release(hold: OwnedFd) {
    drop(hold); // end of file: the child's read returns and it execs
}

/// Wait for SIGINT or SIGTERM (blocked, so they end the wait instead of
/// the process), or `seconds`.
fn wait_for_signal(seconds: Option<f64>) {
    // SAFETY: plain signal-set calls on a set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        match seconds {
            Some(s) => {
                let d = Duration::from_secs_f64(s);
                let ts = libc::timespec {
                    tv_sec: d.as_secs() as libc::time_t,
                    tv_nsec: d.subsec_nanos() as libc::c_long,
                };
                libc::sigtimedwait(&set, std::ptr::null_mut(), &ts);
            }
            None => {
                let mut sig = 0;
                libc::sigwait(&set, &mut sig);
            }
        }
    }
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("uprobe_floor: {e}");
            eprintln!(
                "usage: uprobe_floor [-p PID | -c CMD] [-d SECONDS] [-r ringbuf|perfbuf] FILE OFFSET[:SEMAPHORE]..."
            );
            std::process::exit(2);
        }
    };
    let fail = |e: &dyn std::fmt::Display| -> ! {
        eprintln!("uprobe_floor: {e}");
        std::process::exit(1)
    };
    let held = args
        .command
        .as_deref()
        .map(|c| spawn_held(c).unwrap_or_else(|e| fail(&e)));
    let pid = held.as_ref().map(|(pid, _)| *pid as u32).or(args.pid);
    let start = Instant::now();
    let records = args
        .records
        .map(|t| records::Records::new(t).unwrap_or_else(|e| fail(&e)));
    // The floor: the program does nothing and returns 0 (or only sends
    // the record).
    let nothing = [insn::mov_imm(insn::R0, 0), insn::exit()];
    let program = Program::load(
        records.as_ref().map_or(&nothing[..], |r| r.program()),
        ProgramKind::UprobeMulti { sleepable: false },
        "floor",
    )
    .unwrap_or_else(|e| fail(&e));
    let link = Link::uprobe_multi(&program, &args.file, &args.sites, false, pid)
        .unwrap_or_else(|e| fail(&e));
    let attached = start.elapsed();
    eprintln!("floor: attached {} sites", args.sites.len());
    let mut code = 0;
    match held {
        Some((child, hold)) => {
            release(hold);
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(child, &mut status, 0) };
            code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
        }
        None => wait_for_signal(args.seconds),
    }
    let detach = Instant::now();
    drop(link);
    let detached = detach.elapsed();
    drop(program);
    if let Some(records) = records {
        let (read, lost) = records.finish();
        eprintln!("floor: {read} records read, {lost} lost");
    }
    eprintln!(
        "floor: load+attach {:.1} ms, detach {:.1} ms",
        attached.as_secs_f64() * 1e3,
        detached.as_secs_f64() * 1e3
    );
    std::process::exit(code);
}
