//! One host through the system's ssh client: its architecture, the copy of
//! this binary it keeps (by checksum), the run, and the clean-up.
//!
//! Every remote step is a POSIX `sh -c` script, so the host's login shell
//! (fish, csh) does not matter, and arguments are quoted once, here.

use super::args::Host;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Sender;

/// The directory a host keeps copies in: private to its user.
const CACHE: &str = r#"d="${XDG_CACHE_HOME:-$HOME/.cache}/stap-sdt/bin""#;

/// What this binary is: its bytes' SHA-256, and the architecture it runs on.
pub struct Local {
    pub sum: String,
    pub binary: std::path::PathBuf,
    /// `uname -m`'s spelling.
    pub machine: String,
}

impl Local {
    pub fn new() -> Result<Local, String> {
        use sha2::Digest;
        let binary = std::env::current_exe().map_err(|e| format!("--remote: this binary: {e}"))?;
        let bytes =
            std::fs::read(&binary).map_err(|e| format!("--remote: {}: {e}", binary.display()))?;
        let sum = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // SAFETY: uname fills the struct it is given.
        let machine = unsafe {
            let mut u: libc::utsname = std::mem::zeroed();
            libc::uname(&mut u);
            std::ffi::CStr::from_ptr(u.machine.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        Ok(Local {
            sum,
            binary,
            machine,
        })
    }
}

/// A word for `sh`: single-quoted.
pub fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// `ssh … HOST 'sh -c SCRIPT stap-sdt ARGS…'`, in a process group of its
/// own: a Ctrl-C at the terminal reaches home only, which then asks each
/// host to stop and still reads what the host prints last.
pub fn command(ssh: &str, host: &Host, script: &str, args: &[OsString]) -> Command {
    let mut remote = format!("sh -c {} stap-sdt", quote(script));
    for a in args {
        remote.push(' ');
        remote.push_str(&quote(&a.to_string_lossy()));
    }
    let mut words: Vec<String> = vec!["-o".into(), "BatchMode=yes".into()];
    if let Some(p) = host.port {
        words.extend(["-p".into(), p.to_string()]);
    }
    words.extend([host.destination.clone(), remote]);
    let mut cmd = Command::new("/bin/sh");
    // As git runs GIT_SSH_COMMAND: through the shell, arguments appended.
    cmd.arg("-c")
        .arg(format!("{ssh} \"$@\""))
        .arg("ssh")
        .args(words)
        .process_group(0);
    cmd
}

/// ssh says 255 when it could not connect or authenticate.
const SSH_FAILED: i32 = 255;

/// Why a step failed, from ssh's status and standard error.
fn failure(status: std::process::ExitStatus, stderr: &[u8], step: &str) -> String {
    let text = String::from_utf8_lossy(stderr);
    let last = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
        .to_string();
    match status.code() {
        Some(SSH_FAILED) => format!("cannot connect: {last}"),
        Some(c) => format!("{step} failed (status {c}): {last}"),
        None => format!("{step}: ssh ended by a signal"),
    }
}

/// Make sure the host has this binary and runs this architecture.
/// Returns whether it was copied.
pub fn prepare(ssh: &str, host: &Host, local: &Local) -> Result<bool, String> {
    let probe = format!(
        "{CACHE}; uname -m; if [ -x \"$d/{0}/stap-sdt\" ]; then echo have; else echo missing; fi",
        local.sum
    );
    let out = command(ssh, host, &probe, &[])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run the ssh command: {e}"))?;
    if !out.status.success() {
        return Err(failure(out.status, &out.stderr, "checking the host"));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let machine = lines.next().unwrap_or("").trim();
    if machine != local.machine {
        return Err(format!(
            "runs {machine}, this stap-sdt is built for {}: not traced (install stap-sdt \
             for {machine} there)",
            local.machine
        ));
    }
    if lines.next() == Some("have") {
        return Ok(false);
    }
    // Written under a temporary name and checked before it is renamed: two
    // runs copying at once, or a broken connection, never leave a bad binary.
    let install = format!(
        "set -e; umask 077; {CACHE}; mkdir -p \"$d/{0}\"; t=\"$d/{0}/.part.$$\"; cat > \"$t\"; \
         if command -v sha256sum >/dev/null; then s=$(sha256sum \"$t\"); \
         if [ \"${{s%% *}}\" != {0} ]; then rm -f \"$t\"; echo 'checksum mismatch after copy' >&2; exit 1; fi; fi; \
         chmod 700 \"$t\"; mv -f \"$t\" \"$d/{0}/stap-sdt\"",
        local.sum
    );
    let mut child = command(ssh, host, &install, &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run the ssh command: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    let binary = local.binary.clone();
    // Fed on a thread: ssh's standard error is read meanwhile.
    let feeder = std::thread::spawn(move || -> std::io::Result<()> {
        let mut file = std::fs::File::open(binary)?;
        std::io::copy(&mut file, &mut stdin)?;
        Ok(())
    });
    let mut stderr = Vec::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_end(&mut stderr);
    }
    let status = child.wait().map_err(|e| format!("waiting for ssh: {e}"))?;
    let fed = feeder.join().unwrap_or(Ok(()));
    if !status.success() {
        return Err(failure(status, &stderr, "copying stap-sdt"));
    }
    fed.map_err(|e| format!("copying stap-sdt: {e}"))?;
    Ok(true)
}

/// What a running host sends home.
pub enum Message {
    Line(usize, String),
    /// The host's standard output ended.
    Eof(usize),
    /// Its standard error ended, with the last line it had.
    LastError(usize, String),
}

/// The run on a host: stap-sdt in the background, stopped with SIGTERM (as
/// a terminal's Ctrl-C would, and passed on to a `-c` command) when home
/// closes its standard input, or when the connection drops.
pub struct Running {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
}

pub fn start(
    ssh: &str,
    host: &Host,
    local: &Local,
    argv: &[OsString],
    index: usize,
    quiet: bool,
    tx: Sender<Message>,
) -> Result<Running, String> {
    // A background job of a non-interactive shell reads /dev/null: the
    // watcher gets the connection's standard input through fd 3.
    let script = format!(
        "{CACHE}; exec 3<&0; \"$d/{}/stap-sdt\" \"$@\" </dev/null 3<&- & p=$!; \
         (while read -r _; do :; done; kill -TERM $p 2>/dev/null) <&3 >/dev/null 2>&1 & w=$!; \
         wait $p; s=$?; kill $w 2>/dev/null; exit $s",
        local.sum
    );
    let mut child = command(ssh, host, &script, argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run the ssh command: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let name = host.name.clone();
    let lines = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(Message::Line(index, line)).is_err() {
                break;
            }
        }
        let _ = lines.send(Message::Eof(index));
    });
    // The host's messages are shown as they come, named; the last one is
    // kept to say why the host failed.
    std::thread::spawn(move || {
        let mut last = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let line = line.strip_prefix("stap-sdt: ").unwrap_or(&line).to_string();
            if !quiet || !line.starts_with("Tracing ") {
                eprintln!("stap-sdt: {name}: {line}");
            }
            last = line;
        }
        let _ = tx.send(Message::LastError(index, last));
    });
    Ok(Running {
        stdin: child.stdin.take(),
        child,
    })
}

/// Why a finished run failed, if it did.
pub fn outcome(status: std::process::ExitStatus) -> Result<(), String> {
    match status.code() {
        Some(0) => Ok(()),
        Some(SSH_FAILED) => Err("the connection failed (ssh status 255)".into()),
        Some(c) => Err(format!("stap-sdt exited with status {c}")),
        None => Err("ssh was ended by a signal".into()),
    }
}

/// Remove every copy of stap-sdt from the host's cache (older versions
/// too: nothing else puts files there).
pub fn clean(ssh: &str, host: &Host) -> Result<(), String> {
    let script = format!("{CACHE}; rm -rf \"$d\"; rmdir \"${{d%/bin}}\" 2>/dev/null; :");
    let out = command(ssh, host, &script, &[])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run the ssh command: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failure(out.status, &out.stderr, "--remote-clean"))
    }
}

/// Close a host's standard input: its stap-sdt is sent SIGTERM.
pub fn stop(running: &mut Running) {
    if let Some(mut stdin) = running.stdin.take() {
        let _ = stdin.flush();
    }
}
