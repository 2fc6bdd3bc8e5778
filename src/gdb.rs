//! `stap-sdt gdb`: start GDB with the stap-sdt plugin loaded.
//!
//! The plugin (`gdb-plugin/stap_sdt.py` and its `stap_sdt/` package) is found
//! by `--plugin`, then `$STAP_SDT_GDB_PLUGIN`, then next to this binary
//! (`stap_sdt.py`, `gdb-plugin/stap_sdt.py`, `../share/stap-sdt/gdb/stap_sdt.py`),
//! then in the source tree this binary was built from. GDB gets
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
    found.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("gdb-plugin")
            .join(ENTRY),
    );
    found
}

fn find_plugin(explicit: Option<&Path>, exe: Option<&Path>) -> Result<PathBuf, String> {
    let tried = candidates(explicit, exe);
    tried
        .iter()
        .find(|path| path.is_file())
        .map(|path| path.canonicalize().unwrap_or_else(|_| path.clone()))
        .ok_or_else(|| {
            let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
            format!(
                "cannot find the GDB plugin {ENTRY}; tried: {}. Pass --plugin FILE or set \
                 STAP_SDT_GDB_PLUGIN.",
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
    fn source_tree_plugin_is_found() {
        let found = find_plugin(None, Some(Path::new("/nonexistent/bin/stap-sdt"))).unwrap();
        assert!(found.ends_with("gdb-plugin/stap_sdt.py"), "{found:?}");
    }
}
