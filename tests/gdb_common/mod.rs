//! Shared by the `tests/gdb_*.rs` tests: build a fixture, run the real GDB
//! with the plugin (through `stap-sdt gdb`), and read back what it printed.
#![allow(dead_code)] // each test file uses a different part

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use test_support::Scratch;

pub const STAP_SDT: &str = env!("CARGO_BIN_EXE_stap-sdt");

/// The plugin's entry file in this checkout.
pub fn plugin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("gdb-plugin/stap_sdt.py")
}

/// `gdb`, or a printed skip.
pub fn have_gdb(test: &str) -> bool {
    test_support::require(test, "gdb").is_some()
}

/// For a test that needs GDB and one C fixture: a scratch directory with the
/// fixture compiled in it, or None (and a printed skip) without GDB.
pub fn c_fixture(test: &str, name: &str, source: &str) -> Option<(Scratch, PathBuf)> {
    if !have_gdb(test) {
        return None;
    }
    let scratch = Scratch::new();
    let program = compile_c(&scratch, name, source, &[]);
    Some((scratch, program))
}

/// Compile a C fixture at -O0 -g.
pub fn compile_c(scratch: &Scratch, name: &str, source: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["-O0", "-g"];
    args.extend_from_slice(extra);
    scratch.compile("cc", &format!("{name}.c"), source, name, &args)
}

/// GDB commands that print `@@NAME=VALUE@@` for `EXPR`, for [`marked`].
pub fn show(name: &str, expr: &str) -> Vec<String> {
    vec![
        format!("echo @@{name}="),
        format!("output {expr}"),
        "echo @@\\n".to_string(),
    ]
}

/// Everything printed as `@@NAME=VALUE@@` (the last one wins).
pub fn marked(output: &str) -> HashMap<String, String> {
    let mut values = HashMap::new();
    let mut rest = output;
    while let Some(start) = rest.find("@@") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("@@") else { break };
        if let Some((name, value)) = after[..end].split_once('=') {
            values.insert(name.to_string(), value.to_string());
        }
        rest = &after[end + 2..];
    }
    values
}

/// The value of `@@NAME=...@@`, or a panic that shows the whole session.
pub fn value<'a>(values: &'a HashMap<String, String>, name: &str, output: &str) -> &'a str {
    values
        .get(name)
        .unwrap_or_else(|| panic!("GDB printed no value for {name}:\n{output}"))
}

/// `stap-sdt gdb -- -nx -batch -ex CMD...`: GDB with our plugin, no init
/// file, running `commands` one `-ex` each; the caller adds what to debug.
pub fn gdb_batch(commands: &[String]) -> Command {
    let mut command = Command::new(STAP_SDT);
    command
        .args([
            "gdb",
            "--",
            "-nx",
            "-batch",
            "-iex",
            "set debuginfod enabled off",
        ])
        .args(commands.iter().flat_map(|c| ["-ex", c.as_str()]));
    command
}

/// Run `stap-sdt gdb -- -nx -batch -ex CMD... --args PROGRAM ARGS...` and return
/// GDB's and the program's output, interleaved as they were written. Each
/// command is its own `-ex`, so one failing command does not stop the rest.
pub fn run_gdb(scratch: &Scratch, commands: &[String], program: &Path, args: &[&str]) -> String {
    let mut command = gdb_batch(commands);
    command.arg("--args").arg(program).args(args);
    logged(scratch, command)
}

/// Like [`run_gdb`] but plain `gdb`, sourcing the plugin with `-ex` (no
/// `stap-sdt gdb`, no $STAP_SDT): for the tests of how the plugin finds stap-sdt.
pub fn run_plain_gdb(scratch: &Scratch, commands: &[String], program: &Path) -> String {
    let mut command = Command::new("gdb");
    command
        .args(["-nx", "-batch", "-iex", "set debuginfod enabled off", "-ex"])
        .arg(format!("source {}", plugin().display()))
        .args(commands.iter().flat_map(|c| ["-ex", c.as_str()]))
        .arg(program)
        .env_remove("STAP_SDT");
    logged(scratch, command)
}

/// Run a GDB command file (written to the scratch directory, read with
/// `source`) under [`run_gdb`]: for `commands ... end`, which `-ex` cannot give.
pub fn run_gdb_script(scratch: &Scratch, script: &str, program: &Path, args: &[&str]) -> String {
    let path = scratch.write(&format!("commands-{}.gdb", unique()), script);
    run_gdb(
        scratch,
        &[format!("source {}", path.display())],
        program,
        args,
    )
}

/// `python3`, or a printed skip (the pty driver is a Python script).
pub fn have_python3(test: &str) -> bool {
    test_support::require(test, "python3").is_some()
}

/// Run `stap-sdt gdb -- -nx -q PROGRAM` on a pseudo-terminal, as a user at the
/// keyboard: for each `(wait_for, send)` step, wait until GDB has printed
/// `wait_for`, then type `send` and Enter (tests/gdb_common/pty_session.py).
/// Returns the transcript; panics with it when a step never comes.
pub fn run_gdb_pty(scratch: &Scratch, steps: &[(&str, &str)], program: &Path) -> String {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gdb_common/pty_session.py");
    let steps: Vec<[&str; 2]> = steps.iter().map(|(w, s)| [*w, *s]).collect();
    let steps = serde_json::to_string(&steps).expect("steps as JSON");
    let mut command = Command::new("python3");
    command
        .arg(driver)
        .arg("60")
        .arg(steps)
        .arg(STAP_SDT)
        .args(["gdb", "--", "-nx", "-q"])
        // A terminal makes GDB page, colour and wrap; none of that is tested here.
        .args(["-iex", "set pagination off", "-iex", "set width 0"])
        .args(["-iex", "set style enabled off"])
        .args(["-iex", "set debuginfod enabled off"])
        .arg(program);
    let output = logged(scratch, command);
    assert!(
        !output.contains("[pty_session: timed out"),
        "the GDB session did not go as planned:\n{output}"
    );
    output
}

/// Run COMMAND in the scratch directory with stdout and stderr going to one
/// log file (so their order is kept), at most two minutes; return the log.
fn logged(scratch: &Scratch, mut command: Command) -> String {
    let log_path = scratch.join(&format!("gdb-{}.log", unique()));
    let log = std::fs::File::create(&log_path).expect("create the GDB log");
    command
        .current_dir(scratch.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup the log"))
        .stderr(log);
    wait_bounded(command, Duration::from_secs(120));
    std::fs::read_to_string(&log_path).expect("read the GDB log")
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn wait_bounded(mut command: Command, limit: Duration) {
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    test_support::bounded::wait_within(&mut child, limit, &format!("GDB ({command:?})"));
}

/// Commands from a mix of single commands and `show` groups.
#[macro_export]
macro_rules! commands {
    ($($item:expr),* $(,)?) => {{
        let mut all: Vec<String> = Vec::new();
        $( $crate::gdb_common::Extend::extend_into($item, &mut all); )*
        all
    }};
}

pub trait Extend {
    fn extend_into(self, all: &mut Vec<String>);
}

impl Extend for &str {
    fn extend_into(self, all: &mut Vec<String>) {
        all.push(self.to_string());
    }
}

impl Extend for String {
    fn extend_into(self, all: &mut Vec<String>) {
        all.push(self);
    }
}

impl Extend for Vec<String> {
    fn extend_into(self, all: &mut Vec<String>) {
        all.extend(self);
    }
}

/// Lines the program printed that start with `prefix`, in order.
pub fn lines_starting<'a>(output: &'a str, prefix: &str) -> Vec<&'a str> {
    output.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// How many times GDB reported a stop at a breakpoint
/// (`Breakpoint 2, main () at ...`, `Temporary breakpoint 1, ...`).
pub fn stops(output: &str) -> usize {
    output
        .lines()
        .filter(|line| {
            let rest = line
                .strip_prefix("Breakpoint ")
                .or_else(|| line.strip_prefix("Temporary breakpoint "));
            rest.is_some_and(|r| {
                let digits = r.chars().take_while(char::is_ascii_digit).count();
                digits > 0 && r[digits..].starts_with(", ")
            })
        })
        .count()
}
