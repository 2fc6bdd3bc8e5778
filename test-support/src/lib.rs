//! Helpers shared by the workspace's tests.
//!
//! Uprobes are keyed by inode, and tests run in parallel: every test that
//! attaches builds its own copy of its fixture in a private [`Scratch`]
//! directory and never shares it.

pub mod bounded;
pub mod fuzz;
pub mod readelf;

use bounded::BoundedOutput;
pub mod tracefs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The absolute path of a program on `PATH`, if it is there.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Say loudly why a test does not run, in a form `grep SKIPPED` finds.
pub fn skip(test: &str, reason: &str) {
    eprintln!("SKIPPED {test}: {reason}");
}

/// `which(program)`, or a printed skip. Use as
/// `let Some(gdb) = require("my_test", "gdb") else { return };`.
pub fn require(test: &str, program: &str) -> Option<PathBuf> {
    let found = which(program);
    if found.is_none() {
        skip(
            test,
            &format!("`{program}` is not installed (.ci/run installs it)"),
        );
    }
    found
}

pub fn is_root() -> bool {
    // SAFETY-free: reading our own effective uid from procfs.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A private temporary directory for one test's fixtures.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("stap-sdt-test-")
            .tempdir()
            .expect("create a temp dir");
        // World-readable so that processes of other users (postgres) can run fixtures.
        let _ = std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        );
        Scratch { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, contents).expect("write fixture file");
        path
    }

    /// Compile `source` (C, or C++ when `compiler` is a C++ driver) into
    /// `output` in this directory with `compiler args...`. Panics with the
    /// compiler's message on failure: a fixture that does not build is a
    /// broken test, not a skip.
    pub fn compile(
        &self,
        compiler: &str,
        source_name: &str,
        source: &str,
        output: &str,
        args: &[&str],
    ) -> PathBuf {
        let src = self.write(source_name, source);
        let out = self.join(output);
        let result = Command::new(compiler)
            .args(args)
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .bounded_output()
            .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
        assert!(
            result.status.success(),
            "{compiler} {args:?} {source_name} failed:\n{}",
            String::from_utf8_lossy(&result.stderr)
        );
        out
    }
}

/// Run a command and return its output; panics if it cannot be started or
/// does not end within [`bounded::TOOL_LIMIT`].
pub fn run(cmd: &mut Command) -> Output {
    bounded::output_within(cmd, bounded::TOOL_LIMIT)
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// The contents of tracefs `uprobe_events` (empty when tracefs is not mounted).
pub fn uprobe_events() -> String {
    [
        "/sys/kernel/tracing/uprobe_events",
        "/sys/kernel/debug/tracing/uprobe_events",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .unwrap_or_default()
}

/// The uprobe events of a `stap-sdt` tracer's sessions: groups
/// `stapsdt_<pid>` and `stapsdt_<pid>_<n>` (lines look like
/// `p:GROUP/EVENT PATH:OFFSET ...`).
pub fn tracer_uprobe_events(tracer_pid: u32) -> Vec<String> {
    let first = format!("stapsdt_{tracer_pid}");
    let further = format!("stapsdt_{tracer_pid}_");
    uprobe_events()
        .lines()
        .filter(|l| {
            let group = l
                .split_once(':')
                .and_then(|(_, rest)| rest.split_once('/'))
                .map_or("", |(group, _)| group);
            group == first || group.starts_with(&further)
        })
        .map(String::from)
        .collect()
}

/// The directory holding the system's `sys/sdt.h`, if systemtap-sdt-dev is installed.
pub fn system_sdt_include() -> Option<PathBuf> {
    ["/usr/include", "/usr/include/x86_64-linux-gnu"]
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("sys/sdt.h").is_file())
}

/// Build workspace packages with the cargo running the tests (`$CARGO`),
/// into `target_dir` (keep it persistent, e.g. `CARGO_TARGET_TMPDIR`, so
/// reruns are incremental), and return the profile's output directory.
/// For fixtures that must be real cargo builds (Rust programs with
/// probes); `features` as for `cargo build --features`. Panics with
/// cargo's message when the build fails.
/// The directory of a `libsdt_dynamic.so` (the C ABI of probes defined at
/// run time) built for the tests under `target_tmp` (`CARGO_TARGET_TMPDIR`),
/// shared by the tests that link C programs against it.
pub fn sdt_dynamic_library(workspace: &Path, target_tmp: &Path) -> PathBuf {
    let dir = cargo_build(
        workspace,
        &["sdt-dynamic"],
        &[],
        &target_tmp.join("cabi"),
        false,
    );
    assert!(dir.join("libsdt_dynamic.so").is_file(), "{}", dir.display());
    dir
}

pub fn cargo_build(
    workspace: &Path,
    packages: &[&str],
    features: &[&str],
    target_dir: &Path,
    release: bool,
) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace)
        .args(["build", "--quiet", "--target-dir"])
        .arg(target_dir);
    if release {
        cmd.arg("--release");
    }
    for package in packages {
        cmd.args(["-p", package]);
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let result = run(&mut cmd);
    assert!(
        result.status.success(),
        "cargo build {packages:?} failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    target_dir.join(if release { "release" } else { "debug" })
}

/// The `uprobe_multi` BPF links a process holds, as the kernel describes
/// them in `/proc/PID/fdinfo` (path, offsets, semaphore offsets, cookies):
/// what a `stap-sdt` tracer has attached. Empty once it has detached, or
/// when the process is gone.
pub fn uprobe_multi_links(pid: u32) -> Vec<String> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.filter_map(|fd| {
        let fd = fd.ok()?;
        let target = std::fs::read_link(fd.path()).ok()?;
        if target.to_str()? != "anon_inode:bpf_link" {
            return None;
        }
        let info =
            std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_str()?))
                .ok()?;
        info.contains("uprobe_multi").then_some(info)
    })
    .collect()
}

/// Build a one-file Rust program (`main_rs`) that depends on the
/// workspace's `sdt-macros` by path, as a cargo project of its own under
/// `target_tmp/name` (kept between runs, so rebuilds are incremental), and
/// return the debug binary. `workspace` is the workspace root.
pub fn sdt_macros_program(
    workspace: &Path,
    target_tmp: &Path,
    name: &str,
    main_rs: &str,
) -> PathBuf {
    let root = target_tmp.join(name);
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            "[package]\nname = {name:?}\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nsdt-macros = {{ path = {:?} }}\n\n[workspace]\n",
            workspace.join("sdt-macros").display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(root.join("src/main.rs"), main_rs).unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = run(Command::new(cargo).current_dir(&root).args([
        "build",
        "--quiet",
        "--offline",
        "--target-dir",
        "target",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    root.join("target/debug").join(name)
}

/// The in-process agent (`libstap_sdt_agent.so`) beside the `stap-sdt`
/// binary `bin`, built there first (a no-op when it is up to date): the
/// tracer looks for it next to itself. `workspace` is the manifest's
/// directory.
pub fn in_process_agent(bin: &Path, workspace: &Path) -> PathBuf {
    let dir = bin.parent().expect("the binary's directory");
    let target = dir.parent().expect("the target directory");
    let release = dir.file_name().is_some_and(|n| n == "release");
    let out = cargo_build(workspace, &["inproc-agent"], &[], target, release);
    out.join("libstap_sdt_agent.so")
}
