//! Turning command-line inputs (paths, directories, PIDs) into objects.

use stapsdt_reader::process::read_process;
use stapsdt_reader::{file_kind, read_path_with, Error, FileKind, Object, ReadOptions};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Everything read, and everything that could not be.
pub struct Found {
    pub objects: Vec<Object>,
    pub errors: Vec<Error>,
    /// Files named directly on the command line: shown even without probes.
    pub explicit: HashSet<String>,
    /// Whether at least one input could be read.
    pub read_any: bool,
}

/// An argument is a path if it exists; otherwise it is a selector if it looks
/// like one (`:`, `*`, `?`), and a missing path (reported later) if not.
pub fn split_paths_and_selectors(inputs: &[String]) -> (Vec<String>, Vec<String>) {
    let mut paths = Vec::new();
    let mut selectors = Vec::new();
    for input in inputs {
        let exists = Path::new(input).symlink_metadata().is_ok();
        if !exists && input.contains([':', '*', '?']) {
            selectors.push(input.clone());
        } else {
            paths.push(input.clone());
        }
    }
    (paths, selectors)
}

pub fn read_all(paths: &[String], pids: &[u32], options: &ReadOptions) -> Found {
    let mut found = Found {
        objects: Vec::new(),
        errors: Vec::new(),
        explicit: HashSet::new(),
        read_any: false,
    };
    for path in paths {
        let resolved = resolve_name(path, pids.first().copied());
        let p = resolved.as_deref().unwrap_or(Path::new(path));
        if p.is_dir() {
            found.read_any |= walk(p, options, &mut found);
        } else {
            match read_path_with(p, options) {
                Ok(objects) => {
                    found.read_any = true;
                    found
                        .explicit
                        .extend(objects.iter().map(|o| o.path.clone()));
                    found.objects.extend(objects);
                }
                Err(e) => found.errors.push(e),
            }
        }
    }
    for &pid in pids {
        match read_process(pid, options) {
            Ok((objects, errors)) => {
                found.read_any = true;
                found.objects.extend(objects);
                found.errors.extend(errors);
            }
            Err(e) => found.errors.push(e),
        }
    }
    found
}

/// A bare name that is not a file here (`libpython3.11.so`, `python3.11`) is
/// looked up as `stap-sdt trace` does: in the process's maps (with `-p`), the
/// loader cache, the library directories and `PATH`.
fn resolve_name(input: &str, pid: Option<u32>) -> Option<PathBuf> {
    if input.contains('/') || Path::new(input).symlink_metadata().is_ok() {
        return None;
    }
    stapsdt_reader::resolve::object_path(input, pid).ok()
}

/// Read every ELF file and archive below `dir`. Symbolic links are not
/// followed (they would list the same file twice, or loop). Returns whether
/// the directory itself could be read.
fn walk(dir: &Path, options: &ReadOptions, found: &mut Found) -> bool {
    let mut pending: Vec<PathBuf> = vec![dir.to_path_buf()];
    let mut read_root = false;
    while let Some(current) = pending.pop() {
        let entries = match std::fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) => {
                found
                    .errors
                    .push(Error::new(current.display().to_string(), e.to_string()));
                continue;
            }
        };
        read_root = true;
        let mut names: Vec<_> = entries.filter_map(Result::ok).collect();
        names.sort_by_key(|e| e.file_name());
        // Depth-first in name order: push subdirectories in reverse.
        let mut subdirs = Vec::new();
        for entry in names {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                subdirs.push(path);
            } else if kind.is_file() {
                read_file_in_dir(&path, options, found);
            }
        }
        pending.extend(subdirs.into_iter().rev());
    }
    read_root
}

fn read_file_in_dir(path: &Path, options: &ReadOptions, found: &mut Found) {
    match file_kind(path) {
        Ok(FileKind::Elf) | Ok(FileKind::Archive) => match read_path_with(path, options) {
            Ok(objects) => found.objects.extend(objects),
            Err(e) => found.errors.push(e),
        },
        Ok(FileKind::Other) => {}
        // Unreadable files in a tree are worth a line: the scan is incomplete.
        Err(e) => found
            .errors
            .push(Error::new(path.display().to_string(), e.to_string())),
    }
}
