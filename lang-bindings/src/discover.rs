//! Finding the object that carries a runtime's probes: in a live process
//! (its executable or a mapped libpython/libjvm/libperl), for a command
//! about to run, or among the runtimes installed here.

use crate::tapset::Runtime;
use stapsdt_reader::Object;
use std::path::{Path, PathBuf};

const LIBRARY_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/lib/x86_64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
];

/// An object with probes of a runtime's providers.
#[derive(Debug, Clone)]
pub struct RuntimeObject {
    pub runtime: Runtime,
    pub path: PathBuf,
    pub object: Object,
}

impl RuntimeObject {
    /// Probes (provider, name, number of arguments) of the runtime's providers.
    pub fn probes(&self) -> impl Iterator<Item = (&str, &str, usize)> {
        self.object
            .probes
            .iter()
            .filter(|p| self.runtime.providers().contains(&p.provider.as_str()))
            .map(|p| {
                let nargs = p.locations.iter().map(|l| l.args.len()).max().unwrap_or(0);
                (p.provider.as_str(), p.name.as_str(), nargs)
            })
    }
}

fn carries(runtime: Runtime, object: &Object) -> bool {
    object
        .probes
        .iter()
        .any(|p| runtime.providers().contains(&p.provider.as_str()))
}

/// `path` read; `Some` when it carries the runtime's probes.
pub fn object_at(runtime: Runtime, path: &Path) -> Option<RuntimeObject> {
    let path = std::fs::canonicalize(path).ok()?;
    let object = stapsdt_reader::read_path(&path).ok()?.into_iter().next()?;
    carries(runtime, &object).then_some(RuntimeObject {
        runtime,
        path,
        object,
    })
}

/// The objects of process `pid` that carry the runtime's probes.
pub fn in_process(runtime: Runtime, pid: u32) -> Result<Vec<RuntimeObject>, String> {
    let (objects, _unreadable) = stapsdt_reader::process::read_process(pid, &Default::default())
        // The reader's error already names the pid.
        .map_err(|e| e.to_string())?;
    let found: Vec<RuntimeObject> = objects
        .into_iter()
        .filter(|o| carries(runtime, o))
        .map(|object| {
            let mapped = PathBuf::from(&object.path);
            // A file only reachable inside the process's mount namespace.
            let path = if mapped.exists() {
                mapped
            } else {
                PathBuf::from(format!("/proc/{pid}/root{}", object.path))
            };
            RuntimeObject {
                runtime,
                path,
                object,
            }
        })
        .collect();
    if found.is_empty() {
        return Err(format!(
            "pid {pid}: maps no object with {runtime} probes (providers {}); is it a {runtime} \
             process, and was its runtime built with SDT probes?",
            runtime.providers().join(", ")
        ));
    }
    Ok(found)
}

/// The programs a shell command may run, in order: each word that is not
/// a `VAR=value` assignment, through `PATH`, symlinks resolved, wrappers
/// that are not ELF files (pyenv shims and the like) skipped. The first is
/// the command's own program; later ones catch `sh -c '... python3 x.py'`.
pub fn command_programs(command: &str) -> Vec<PathBuf> {
    command
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '\'' || c == '"' || c == '(' || c == ')'))
        .filter(|w| {
            let assignment = w.contains('=') && !w.starts_with('/');
            !w.is_empty() && !assignment && !w.starts_with('-')
        })
        .filter_map(program)
        .collect()
}

fn program(word: &str) -> Option<PathBuf> {
    if word.contains('/') {
        let real = std::fs::canonicalize(word).ok()?;
        return is_elf(&real).then_some(real);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(word))
        .filter(|p| p.is_file())
        .find_map(|p| {
            let real = std::fs::canonicalize(&p).ok()?;
            is_elf(&real).then_some(real)
        })
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// The objects with the runtime's probes that `command` will load: the
/// program itself, or the runtime library that goes with it.
pub fn for_command(runtime: Runtime, command: &str) -> Result<Vec<RuntimeObject>, String> {
    let programs = command_programs(command);
    if programs.is_empty() {
        return Err(format!(
            "`{command}`: cannot find the program it runs (give its full path)"
        ));
    }
    let mut looked = Vec::new();
    for program in &programs {
        for candidate in runtime_candidates(runtime, program) {
            if let Some(found) = object_at(runtime, &candidate) {
                return Ok(vec![found]);
            }
            looked.push(candidate.display().to_string());
        }
    }
    looked.dedup();
    Err(format!(
        "`{command}`: carries no {runtime} probes (looked at {})",
        looked.join(", ")
    ))
}

/// The files that carry a runtime's probes for `program`: the program
/// itself, or the runtime library that goes with it.
fn runtime_candidates(runtime: Runtime, program: &Path) -> Vec<PathBuf> {
    let mut candidates = vec![program.to_path_buf()];
    match runtime {
        Runtime::Java => {
            // bin/java → lib/server/libjvm.so of the same JDK (loaded with dlopen).
            if let Some(home) = program.parent().and_then(Path::parent) {
                candidates.push(home.join("lib/server/libjvm.so"));
            }
        }
        Runtime::Python => {
            let name = program.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Some(version) = name.strip_prefix("python") {
                candidates.extend(libraries(&format!("libpython{version}.so")));
            }
        }
        Runtime::Perl => {
            let name = program.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("perl") {
                candidates.extend(libraries("libperl.so"));
            }
        }
    }
    candidates
}

/// Files `PREFIX*` in the library directories.
fn libraries(prefix: &str) -> Vec<PathBuf> {
    files_with_prefix(LIBRARY_DIRS, prefix)
}

fn files_with_prefix(dirs: &[&str], prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut here: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        here.sort();
        out.extend(here);
    }
    out
}

/// An installed runtime: a candidate file and what it carries.
#[derive(Debug)]
pub struct Installed {
    pub path: PathBuf,
    /// `None`: an ELF file of this runtime built without probes.
    pub object: Option<RuntimeObject>,
}

/// The runtimes installed in the usual places, one entry per real file.
pub fn installed(runtime: Runtime) -> Vec<Installed> {
    let candidates = match runtime {
        Runtime::Python => {
            let mut v = files_with_prefix(&["/usr/bin", "/usr/local/bin"], "python3");
            v.extend(libraries("libpython3"));
            v
        }
        Runtime::Java => {
            let mut homes: Vec<PathBuf> = std::fs::read_dir("/usr/lib/jvm")
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                .unwrap_or_default();
            homes.extend(std::env::var_os("JAVA_HOME").map(PathBuf::from));
            homes.sort();
            homes
                .into_iter()
                .map(|h| h.join("lib/server/libjvm.so"))
                .collect()
        }
        Runtime::Perl => {
            let mut v = files_with_prefix(&["/usr/bin", "/usr/local/bin"], "perl");
            v.extend(libraries("libperl.so"));
            v
        }
    };
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for candidate in candidates {
        let Ok(real) = std::fs::canonicalize(&candidate) else {
            continue;
        };
        if seen.contains(&real) || !is_elf(&real) {
            continue;
        }
        seen.push(real.clone());
        out.push(Installed {
            object: object_at(runtime, &real),
            path: real,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_their_programs() {
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        assert_eq!(command_programs("/bin/sh -c true")[0], sh);
        assert_eq!(command_programs("A=1 /bin/sh x")[0], sh);
        assert!(command_programs("no-such-program-xyz").is_empty());
        let nested = command_programs("sh -c 'echo | /bin/true x'");
        assert_eq!(
            nested.last(),
            std::fs::canonicalize("/bin/true").ok().as_ref()
        );
    }

    #[test]
    fn finds_installed_runtimes() {
        let python = Path::new("/usr/bin/python3.11");
        if python.exists() {
            let found = installed(Runtime::Python);
            let entry = found.iter().find(|i| i.path == python).expect("python3.11");
            assert!(entry.object.is_some());
            let from_command = for_command(Runtime::Python, "/usr/bin/python3.11 -c pass").unwrap();
            assert_eq!(from_command[0].path, python);
        }
        let jvm = Path::new("/usr/lib/jvm/java-17-openjdk-amd64/bin/java");
        if jvm.exists() {
            let found = for_command(Runtime::Java, &format!("{} -version", jvm.display())).unwrap();
            assert!(found[0].path.ends_with("lib/server/libjvm.so"));
            assert!(found[0]
                .probes()
                .any(|(_, n, k)| n == "method__entry" && k == 7));
        }
        let e = for_command(Runtime::Perl, "/bin/true").unwrap_err();
        assert!(
            e.contains("/bin/true") && e.contains("no perl probes"),
            "{e}"
        );
    }
}
