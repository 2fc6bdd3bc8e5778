//! Object names → files: a path as given, a library or program name found
//! in the target's memory map, the loader's cache (`ldconfig -p`), the
//! standard library directories or `PATH`.

use crate::Error;
use std::path::{Path, PathBuf};

const LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

/// The file `name` designates, for a process `pid` when given.
pub fn object_path(name: &str, pid: Option<u32>) -> Result<PathBuf, Error> {
    if name.contains('/') {
        let path = Path::new(name);
        return std::fs::canonicalize(path).map_err(|e| Error::Input(format!("{name}: {e}")));
    }
    if let Some(pid) = pid {
        if let Some(found) = in_maps(name, pid) {
            return Ok(found);
        }
    }
    if let Some(found) = in_loader_cache(name) {
        return Ok(found);
    }
    let path_dirs = std::env::var_os("PATH").unwrap_or_default();
    let dirs = LIBRARY_DIRS
        .iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path_dirs));
    for dir in dirs {
        if let Some(found) = prefixed_file(&dir, name) {
            return Ok(found);
        }
    }
    Err(Error::Input(format!(
        "{name}: no such file, and no library or program of that name {}in the loader cache, \
         the library directories or PATH",
        if pid.is_some() {
            "mapped by the process, "
        } else {
            ""
        }
    )))
}

/// `name` or `name.*` (so `libpython3.11.so` finds `libpython3.11.so.1.0`).
fn matches_name(file_name: &str, name: &str) -> bool {
    file_name == name
        || file_name
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-'))
}

fn in_maps(name: &str, pid: u32) -> Option<PathBuf> {
    let maps = stapsdt_reader::process::maps(pid).ok()?;
    maps.iter()
        .filter(|m| m.path.starts_with('/'))
        .find(|m| {
            Path::new(&m.path)
                .file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| matches_name(f, name))
        })
        .map(|m| {
            // Through the process's root, so a container's file is the one probed.
            let inside = PathBuf::from(format!("/proc/{pid}/root{}", m.path));
            if Path::new(&m.path).exists() {
                PathBuf::from(&m.path)
            } else {
                inside
            }
        })
}

fn in_loader_cache(name: &str) -> Option<PathBuf> {
    let out = std::process::Command::new("ldconfig")
        .arg("-p")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|line| {
            let (lib, path) = line.trim().split_once(" => ")?;
            let lib = lib.split_whitespace().next()?;
            matches_name(lib, name).then(|| PathBuf::from(path))
        })
        .find(|p| p.exists())
}

/// Only ELF files: a `PATH` entry may hold a same-named script (pyenv shims).
fn is_elf(path: &Path) -> bool {
    matches!(
        stapsdt_reader::file_kind(path),
        Ok(stapsdt_reader::FileKind::Elf)
    )
}

fn prefixed_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let exact = dir.join(name);
    if exact.is_file() && is_elf(&exact) {
        return Some(exact);
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|f| matches_name(f, name))
        })
        .map(|e| e.path())
        .filter(|p| p.is_file() && is_elf(p))
        .collect();
    candidates.sort();
    candidates.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_match_versioned_files() {
        assert!(matches_name("libpython3.11.so.1.0", "libpython3.11.so"));
        assert!(matches_name("libc.so.6", "libc.so.6"));
        assert!(!matches_name("libcrypt.so.1", "libc"));
        assert!(!matches_name("libc.so.6", "libc.so.61"));
    }

    #[test]
    fn finds_libc_and_rejects_nonsense() {
        let libc = object_path("libc.so.6", None).unwrap();
        assert!(libc.is_file(), "{libc:?}");
        let own = object_path("libc.so.6", Some(std::process::id())).unwrap();
        assert!(own.is_file());
        let e = object_path("no-such-object-xyz", None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("no-such-object-xyz:"), "{e}");
    }
}
