//! `stap-sdt gdb`: start GDB with the stap-sdt plugin loaded.
//!
//! The plugin (`gdb-plugin/stap_sdt.py` and its `stap_sdt/` package) is found
//! by `--plugin`, then `$STAP_SDT_GDB_PLUGIN`, then next to this binary
//! (`stap_sdt.py`, `gdb-plugin/stap_sdt.py`, `../share/stap-sdt/gdb/stap_sdt.py`),
//! then the copy carried inside this binary (`include_str!`), written once
//! to `$XDG_CACHE_HOME/stap-sdt/gdb-<hash>/` (or `~/.cache/…`), so an
//! installed binary needs no source tree. GDB gets
//! `-iex "source PLUGIN"` before the user's arguments, and `$STAP_SDT` names
//! this binary, so the plugin lists probes with the same stap-sdt.

use clap::Args;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[derive(Args, Debug)]
#[command(after_help = "\
Everything after the options (use `--` before GDB options) is passed to GDB, for \
example:\n  stap-sdt gdb -- -q --args ./server --port 8080\n  \
stap-sdt gdb -- -batch -ex 'sdt-break demo:tick' -ex run -ex 'p $_probe_arg0' ./demo\n\n\
The plugin adds sdt-break/sdt-tbreak, $_probe_argc, $_probe_argN, $_probe_str(N), \
$_probe_strn(N, M), info sdt and info probe-args; see docs/gdb.md.")]
pub struct GdbArgs {
    /// The GDB program to run.
    #[arg(long, value_name = "PROGRAM", default_value = "gdb")]
    gdb: PathBuf,

    /// The plugin's entry file (stap_sdt.py) to load instead of the one found automatically.
    #[arg(long, value_name = "FILE")]
    plugin: Option<PathBuf>,

    /// Arguments for GDB.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "GDB-ARGS"
    )]
    args: Vec<OsString>,
}

const ENTRY: &str = "stap_sdt.py";

macro_rules! embedded {
    ($path:literal) => {
        ($path, include_str!(concat!("../gdb-plugin/", $path)))
    };
}

/// The plugin's files (relative path, text), carried in the binary.
const EMBEDDED: &[(&str, &str)] = &[
    embedded!("stap_sdt.py"),
    embedded!("stap_sdt/__init__.py"),
    embedded!("stap_sdt/adopt.py"),
    embedded!("stap_sdt/breakpoints.py"),
    embedded!("stap_sdt/catalog.py"),
    embedded!("stap_sdt/commands.py"),
    embedded!("stap_sdt/convenience.py"),
    embedded!("stap_sdt/info.py"),
    embedded!("stap_sdt/names.py"),
    embedded!("stap_sdt/operands.py"),
    embedded!("stap_sdt/semaphores.py"),
    embedded!("stap_sdt/tool.py"),
];

/// FNV-1a over the embedded files: the cache directory's name, so two
/// versions of stap-sdt never share (or overwrite) each other's copy.
fn embedded_hash() -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (path, text) in EMBEDDED {
        for byte in path.bytes().chain([0]).chain(text.bytes()).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x100_0000_01b3);
        }
    }
    hash
}

/// The cache directory for this binary's plugin copy.
fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| Path::new(d).is_absolute())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(
        base.join("stap-sdt")
            .join(format!("gdb-{:016x}", embedded_hash())),
    )
}

/// Write the embedded plugin under `dir` unless an identical copy is there;
/// returns its entry file. Files are written to a temporary name and renamed,
/// so a concurrent `stap-sdt gdb` never sources a half-written file.
fn unpack_into(dir: &Path) -> std::io::Result<PathBuf> {
    for (path, text) in EMBEDDED {
        let target = dir.join(path);
        if std::fs::read_to_string(&target).is_ok_and(|t| t == *text) {
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let partial = target.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, &target)?;
    }
    Ok(dir.join(ENTRY))
}

/// Where the plugin may be, in the order they are tried.
fn candidates(explicit: Option<&Path>, exe: Option<&Path>) -> Vec<PathBuf> {
    if let Some(path) = explicit {
        return vec![path.to_path_buf()];
    }
    let mut found = Vec::new();
    if let Some(path) = std::env::var_os("STAP_SDT_GDB_PLUGIN") {
        found.push(PathBuf::from(path));
    }
    if let Some(dir) = exe.and_then(Path::parent) {
        found.push(dir.join(ENTRY));
        found.push(dir.join("gdb-plugin").join(ENTRY));
        found.push(dir.join("../share/stap-sdt/gdb").join(ENTRY));
    }
    found
}

fn find_plugin(explicit: Option<&Path>, exe: Option<&Path>) -> Result<PathBuf, String> {
    let tried = candidates(explicit, exe);
    if let Some(found) = tried.iter().find(|path| path.is_file()) {
        return Ok(found.canonicalize().unwrap_or_else(|_| found.clone()));
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    if explicit.is_some() {
        return Err(format!("cannot find the GDB plugin {}", list.join(", ")));
    }
    // The copy in this binary.
    let dir = cache_dir().ok_or("no cache directory for the GDB plugin: set XDG_CACHE_HOME")?;
    unpack_into(&dir).map_err(|e| {
        format!(
            "cannot write the GDB plugin to {}: {e} (tried first: {}). Pass --plugin FILE, \
             set STAP_SDT_GDB_PLUGIN or XDG_CACHE_HOME.",
            dir.display(),
            list.join(", ")
        )
    })
}

/// A GDB command taking a file name: GDB reads the rest of the line as the name.
fn gdb_line(command: &str, path: &Path) -> String {
    format!("{command} {}", path.display())
}

pub fn run(args: GdbArgs) -> Result<ExitCode, String> {
    let exe = std::env::current_exe().ok();
    let plugin = find_plugin(args.plugin.as_deref(), exe.as_deref())?;
    let mut command = Command::new(&args.gdb);
    command
        .arg("-iex")
        .arg(gdb_line("source", &plugin))
        .args(&args.args);
    if let Some(exe) = &exe {
        // The plugin reads $STAP_SDT when `stap-sdt-path` is not set.
        command.env("STAP_SDT", exe);
    }
    // exec: GDB owns the terminal and its signals, and its exit status is ours.
    let error = command.exec();
    Err(format!("cannot run {}: {error}", args.gdb.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_plugin_is_the_only_candidate() {
        let explicit = Path::new("/nowhere/stap_sdt.py");
        assert_eq!(
            candidates(Some(explicit), Some(Path::new("/x/stap-sdt"))),
            vec![explicit.to_path_buf()]
        );
        let err = find_plugin(Some(explicit), None).unwrap_err();
        assert!(err.contains("/nowhere/stap_sdt.py"), "{err}");
    }

    #[test]
    fn embedded_plugin_is_the_source_tree_s() {
        let dir = tempfile::tempdir().unwrap();
        let entry = unpack_into(dir.path()).unwrap();
        assert!(entry.ends_with("stap_sdt.py"));
        // Every file of the source tree's plugin is carried, byte for byte.
        let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("gdb-plugin");
        let mut names = vec![ENTRY.to_string()];
        for e in std::fs::read_dir(tree.join("stap_sdt")).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".py") {
                names.push(format!("stap_sdt/{name}"));
            }
        }
        for name in names {
            assert_eq!(
                std::fs::read(dir.path().join(&name)).unwrap(),
                std::fs::read(tree.join(&name)).unwrap(),
                "{name}"
            );
        }
        // A second unpacking leaves the files as they are.
        assert_eq!(unpack_into(dir.path()).unwrap(), entry);
    }
}
