//! Which JDK a libjvm.so belongs to, and the flags that wake its gated
//! probes: `-XX:+ExtendedDTraceProbes` turned all of them on up to JDK 19
//! (it was deprecated then and later removed: JDK 25 refuses to start with
//! it); `-XX:+DTraceMethodProbes`, `-XX:+DTraceAllocProbes` and
//! `-XX:+DTraceMonitorProbes` work on every version here.

use crate::tapset::Gate;
use std::path::{Path, PathBuf};

/// The last major version that accepts `-XX:+ExtendedDTraceProbes`.
const LAST_WITH_EXTENDED: u32 = 19;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jdk {
    /// `JAVA_HOME`: the directory above `lib/server/libjvm.so`.
    pub home: PathBuf,
    /// Major version from `release` (`JAVA_VERSION="17.0.15"`), else from the path.
    pub major: Option<u32>,
}

impl Jdk {
    pub fn for_libjvm(libjvm: &Path) -> Jdk {
        let home = libjvm
            .ancestors()
            .nth(3)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let major = std::fs::read_to_string(home.join("release"))
            .ok()
            .and_then(|text| release_major(&text))
            .or_else(|| path_major(&home));
        Jdk { home, major }
    }

    /// The flag a JVM of this version needs for `gate` probes to fire.
    pub fn flag(&self, gate: Gate) -> String {
        let specific = match gate {
            Gate::JavaMethods => "-XX:+DTraceMethodProbes",
            Gate::JavaAlloc => "-XX:+DTraceAllocProbes",
            Gate::JavaMonitors => "-XX:+DTraceMonitorProbes",
        };
        match self.major {
            Some(m) if m <= LAST_WITH_EXTENDED => {
                format!("-XX:+ExtendedDTraceProbes (or {specific})")
            }
            _ => specific.to_string(),
        }
    }

    /// Whether `command_line` (a command, or `/proc/PID/cmdline` and the
    /// JVM option variables joined) turns `gate` probes on.
    pub fn enabled_by(&self, command_line: &str, gate: Gate) -> bool {
        let specific = self.flag(gate);
        let specific = specific
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .trim_end_matches(')');
        command_line.contains(specific)
            || (self.major.is_none_or(|m| m <= LAST_WITH_EXTENDED)
                && command_line.contains("-XX:+ExtendedDTraceProbes"))
    }

    pub fn describe(&self) -> String {
        match self.major {
            Some(m) => format!("JDK {m} ({})", self.home.display()),
            None => format!("a JDK of unknown version ({})", self.home.display()),
        }
    }
}

/// A process's command line and JVM option variables, for [`Jdk::enabled_by`].
pub fn process_options(pid: u32) -> String {
    let mut text = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    for var in environ.split(|&b| b == 0) {
        if [
            &b"JAVA_TOOL_OPTIONS="[..],
            b"JDK_JAVA_OPTIONS=",
            b"_JAVA_OPTIONS=",
        ]
        .iter()
        .any(|p| var.starts_with(p))
        {
            text.push(b' ');
            text.extend_from_slice(var);
        }
    }
    String::from_utf8_lossy(&text).replace('\0', " ")
}

fn release_major(text: &str) -> Option<u32> {
    let line = text.lines().find(|l| l.starts_with("JAVA_VERSION="))?;
    let version = line.split_once('=')?.1.trim_matches('"');
    let mut parts = version.split(['.', '_', '+', '-']);
    let first: u32 = parts.next()?.parse().ok()?;
    // "1.8.0_392" is JDK 8.
    if first == 1 {
        parts.next()?.parse().ok()
    } else {
        Some(first)
    }
}

/// `java-17-openjdk-amd64`, `temurin-25-jdk-amd64`, `jdk-21.0.2`.
fn path_major(home: &Path) -> Option<u32> {
    let name = home.file_name()?.to_str()?;
    name.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_release_and_path() {
        assert_eq!(release_major("X=1\nJAVA_VERSION=\"17.0.15\"\n"), Some(17));
        assert_eq!(release_major("JAVA_VERSION=\"1.8.0_392\""), Some(8));
        assert_eq!(release_major("JAVA_VERSION=\"25\""), Some(25));
        assert_eq!(
            path_major(Path::new("/usr/lib/jvm/temurin-25-jdk-amd64")),
            Some(25)
        );
        assert_eq!(path_major(Path::new("/opt/jdk")), None);
    }

    #[test]
    fn flags_per_version() {
        let jdk = |major| Jdk {
            home: PathBuf::from("/x"),
            major: Some(major),
        };
        assert!(jdk(17)
            .flag(Gate::JavaMethods)
            .starts_with("-XX:+ExtendedDTraceProbes"));
        assert_eq!(jdk(25).flag(Gate::JavaAlloc), "-XX:+DTraceAllocProbes");
        assert!(jdk(17).enabled_by("java -XX:+ExtendedDTraceProbes X", Gate::JavaMonitors));
        assert!(jdk(17).enabled_by("java -XX:+DTraceMethodProbes X", Gate::JavaMethods));
        assert!(!jdk(25).enabled_by("java -XX:+ExtendedDTraceProbes X", Gate::JavaMethods));
        assert!(!jdk(25).enabled_by("java -XX:+DTraceAllocProbes X", Gate::JavaMethods));
    }

    #[test]
    fn installed_jdks() {
        for (dir, major) in [
            ("/usr/lib/jvm/java-17-openjdk-amd64", 17),
            ("/usr/lib/jvm/temurin-25-jdk-amd64", 25),
        ] {
            let libjvm = Path::new(dir).join("lib/server/libjvm.so");
            if libjvm.exists() {
                assert_eq!(Jdk::for_libjvm(&libjvm).major, Some(major));
            }
        }
    }
}
