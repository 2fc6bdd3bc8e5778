//! What a `-c` command really runs, compared with what the probes are in.
//!
//! A `-c 'python3.11 app.py'` under a pyenv shim runs a bash script that
//! execs another python: probes attached to `/usr/bin/python3.11` then see
//! nothing, silently. [`CommandWatch`] says so twice: before the start (the
//! command's first word, found through `PATH` as the shell finds it, is a
//! script or another program than the one probed), and at the end of a run
//! without hits (the command's processes never mapped the probed files,
//! seen by reading `/proc/PID/maps` of the command while it runs).

use super::child::is_simple;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use uprobe_engine::Selector;

/// The program a `-c` command starts, and what its processes mapped.
pub struct CommandWatch {
    /// The first word as found (`/root/.pyenv/shims/python3.11`).
    program: Option<PathBuf>,
    /// Its `#!` line when it is a script (`#!/usr/bin/env bash`), or a
    /// description when it is neither ELF nor `#!`.
    script: Option<String>,
    /// The probed files (canonical).
    traced: Vec<PathBuf>,
    /// Every file the command's processes were seen mapping (canonical).
    mapped: HashSet<PathBuf>,
    /// Paths of `maps` already canonicalized.
    looked_at: HashSet<String>,
    /// The executable of the command's process when last seen.
    last_exe: Option<PathBuf>,
}

impl CommandWatch {
    /// Find the program `command` starts, as `/bin/sh -c` would.
    pub fn new(command: &str) -> CommandWatch {
        let program = first_program(command);
        let script = program.as_deref().and_then(script_line);
        CommandWatch {
            program,
            script,
            traced: Vec::new(),
            mapped: HashSet::new(),
            looked_at: HashSet::new(),
            last_exe: None,
        }
    }

    /// The ELF program the command runs first, when it is one.
    pub fn elf_program(&self) -> Option<&Path> {
        self.program.as_deref().filter(|_| self.script.is_none())
    }

    /// Rewrite a selector without an object (`PROVIDER:NAME`): a held child
    /// has not exec'd yet, so its maps are ours, not the command's. It
    /// becomes one selector per object of the command that has a matching
    /// probe: the program and the libraries it needs (`DT_NEEDED`). Other
    /// selectors are returned as they are.
    pub fn bind(&self, selector: Selector) -> Result<Vec<Selector>, String> {
        let Selector::Usdt {
            path: None,
            provider,
            name,
        } = &selector
        else {
            return Ok(vec![selector]);
        };
        let Some(program) = self.elf_program() else {
            let why = match (&self.program, &self.script) {
                (Some(p), Some(s)) => format!(
                    "the command runs {}, a script ({s}), whose objects are not known before it runs",
                    p.display()
                ),
                _ => "the command's program cannot be found before it runs (not a simple \
                      command, or not on PATH)"
                    .to_string(),
            };
            return Err(format!(
                "`{}:{}` with -c: {why}; name the object (PATH:{0}:{1})",
                provider.as_str(),
                name.as_str(),
            ));
        };
        let objects = command_objects(program);
        let mut paths: Vec<&Path> = objects
            .iter()
            .filter(|(_, objs)| {
                objs.iter()
                    .flat_map(|o| &o.probes)
                    .any(|p| provider.matches(&p.provider) && name.matches(&p.name))
            })
            .map(|(path, _)| path.as_path())
            .collect();
        if paths.is_empty() {
            // The program's own selector: the engine's error names where it looked.
            paths.push(program);
        }
        Ok(paths
            .into_iter()
            .map(|path| Selector::Usdt {
                path: Some(path.display().to_string()),
                provider: provider.clone(),
                name: name.clone(),
            })
            .collect())
    }

    /// Remember the probed files, and print one warning when the command
    /// starts a script, or a program that is not one of them while they
    /// include a program (libraries may be loaded by any program).
    pub fn check_start(&mut self, traced: &[PathBuf]) {
        self.traced = traced
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .collect();
        self.traced.sort();
        self.traced.dedup();
        if let Some(line) = self.start_warning() {
            eprintln!("stap-sdt: {line}");
        }
    }

    fn start_warning(&self) -> Option<String> {
        let program = self.program.as_deref()?;
        let probed = self
            .traced
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        if probed.is_empty() {
            return None;
        }
        if let Some(script) = &self.script {
            return Some(format!(
                "-c runs {}, a script ({script}); the probes are in {probed} and are seen only \
                 if it runs that program",
                program.display()
            ));
        }
        let canonical = std::fs::canonicalize(program).ok()?;
        if self.traced.contains(&canonical) || !self.traced.iter().any(|t| is_program(t)) {
            return None;
        }
        let needed = needed_paths(&canonical);
        if self.traced.iter().any(|t| needed.contains(t)) {
            return None;
        }
        Some(format!(
            "-c runs {}, a different file; the probes are in {probed} and are seen only if it \
             runs that program",
            program.display()
        ))
    }

    /// Look at the command's process and its descendants: what they map,
    /// what they run. Cheap enough for every poll (one read of `maps` each).
    pub fn observe(&mut self, pid: u32) {
        let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
            return;
        };
        // Not exec'd yet: its maps are still ours.
        if std::env::current_exe().is_ok_and(|own| own == exe) {
            return;
        }
        self.last_exe = Some(exe);
        let mut pending = vec![pid];
        let mut seen = HashSet::new();
        while let Some(pid) = pending.pop() {
            if !seen.insert(pid) || seen.len() > 256 {
                continue;
            }
            if let Ok(maps) = stapsdt_reader::process::maps(pid) {
                for m in maps {
                    if m.path.starts_with('/') && self.looked_at.insert(m.path.clone()) {
                        let path = PathBuf::from(&m.path);
                        self.mapped
                            .insert(std::fs::canonicalize(&path).unwrap_or(path));
                    }
                }
            }
            pending.extend(children(pid));
        }
    }

    /// At the end of a run without hits: one line when no probed file was
    /// ever mapped by the command (and it was seen running at all).
    pub fn report_no_hits(&self) {
        if let Some(line) = self.no_hits_line() {
            eprintln!("stap-sdt: {line}");
        }
    }

    fn no_hits_line(&self) -> Option<String> {
        let exe = self.last_exe.as_ref()?;
        if self.traced.is_empty() || self.traced.iter().any(|t| self.mapped.contains(t)) {
            return None;
        }
        let probed = self
            .traced
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Some(format!(
            "no hits: the command never mapped {probed} (it ran {})",
            exe.display()
        ))
    }
}

/// The children of every thread of `pid` (`/proc/PID/task/TID/children`).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// The program `/bin/sh -c 'exec CMD'` runs first, for a simple command:
/// the first word after `NAME=value` assignments, through `PATH` unless it
/// holds a `/`. `None` when the shell would do more than that (expansions,
/// quoting beyond whole-word quotes, a builtin) or nothing is found.
pub fn first_program(command: &str) -> Option<PathBuf> {
    if !is_simple(command) {
        return None;
    }
    let mut words = command.split_whitespace().skip_while(|w| {
        w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    });
    let mut word = words.next()?;
    if word == "exec" {
        word = words.next()?;
    }
    let word = unquote(word)?;
    if word.contains(['$', '*', '?', '[', '~', '\\', '{']) {
        return None;
    }
    if word.contains('/') {
        let path = std::path::absolute(word).ok()?;
        return path.is_file().then_some(path);
    }
    if is_builtin(word) {
        return None;
    }
    let path_var = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path_var)
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                PathBuf::from(word)
            } else {
                dir.join(word)
            }
        })
        .find(|p| is_executable_file(p))
}

fn unquote(word: &str) -> Option<&str> {
    for q in ['\'', '"'] {
        if let Some(inner) = word.strip_prefix(q) {
            return inner.strip_suffix(q).filter(|i| !i.contains(q));
        }
    }
    (!word.contains(['\'', '"'])).then_some(word)
}

/// Shell builtins and keywords that `exec` cannot run as programs anyway.
fn is_builtin(word: &str) -> bool {
    matches!(
        word,
        "cd" | "exit"
            | "set"
            | "export"
            | "."
            | ":"
            | "true"
            | "false"
            | "eval"
            | "if"
            | "for"
            | "while"
            | "case"
            | "until"
            | "echo"
            | "printf"
            | "read"
            | "test"
            | "["
    )
}

fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `#!...` (the first line, shortened) for a script; a description for an
/// executable that is neither ELF nor `#!` (sh runs it as a script); `None`
/// for ELF files and what cannot be read.
fn script_line(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let mut file = std::fs::File::open(path).ok()?;
    let mut len = 0;
    while len < head.len() {
        match file.read(&mut head[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    let head = &head[..len];
    if head.starts_with(b"\x7fELF") {
        return None;
    }
    if head.starts_with(b"#!") {
        let line = head.split(|&b| b == b'\n').next().unwrap_or(head);
        return Some(String::from_utf8_lossy(line).trim_end().to_string());
    }
    Some("not an ELF program: sh runs it as a script".to_string())
}

/// An ELF file that is a program (ET_EXEC, or a PIE: ET_DYN with an
/// interpreter), as opposed to a library.
fn is_program(path: &Path) -> bool {
    stapsdt_reader::read_path(path).is_ok_and(|objects| {
        objects.iter().any(|o| {
            o.elf_type == "exec"
                || (o.elf_type == "dyn"
                    && !path
                        .file_name()
                        .and_then(|f| f.to_str())
                        .is_some_and(|f| f.contains(".so")))
        })
    })
}

/// The files of the libraries `program` needs, as the loader would find
/// them (canonical).
fn needed_paths(program: &Path) -> Vec<PathBuf> {
    stapsdt_reader::needed_libraries(program)
        .unwrap_or_default()
        .iter()
        .filter_map(|lib| stapsdt_reader::resolve::object_path(lib, None).ok())
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .collect()
}

/// The program and its needed libraries, each with its objects (probes).
fn command_objects(program: &Path) -> Vec<(PathBuf, Vec<stapsdt_reader::Object>)> {
    let program = std::fs::canonicalize(program).unwrap_or_else(|_| program.to_path_buf());
    let mut paths = vec![program.clone()];
    paths.extend(needed_paths(&program));
    paths
        .into_iter()
        .filter_map(|p| {
            let objects = stapsdt_reader::read_path(&p).ok()?;
            Some((p, objects))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_words_as_the_shell_finds_them() {
        assert!(first_program("sh -c true").is_some_and(|p| p.ends_with("sh")));
        assert!(first_program("FOO=1 'sh' x").is_some_and(|p| p.ends_with("sh")));
        assert!(first_program("exec sh").is_some_and(|p| p.ends_with("sh")));
        assert_eq!(first_program("/bin/sh x"), Some(PathBuf::from("/bin/sh")));
        assert_eq!(first_program("echo x | cat"), None);
        assert_eq!(first_program("$SHELL"), None);
        assert_eq!(first_program("cd /"), None);
        assert_eq!(first_program("no-such-program-xyz"), None);
    }
}
