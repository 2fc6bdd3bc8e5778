use std::fmt;

/// Why attaching or tracing failed. Each message names what it is about.
#[derive(Debug)]
pub enum Error {
    /// The caller lacks the privileges for tracefs and perf events.
    Privileges,
    /// A system call failed.
    Os { what: String, error: std::io::Error },
    /// The kernel refused something, with its reason.
    Kernel(String),
    /// Something this kernel or this crate cannot do.
    Unsupported(String),
    /// Bad input (a selector, a path, a process).
    Input(String),
    /// [`Session::stop_attaching_when`](crate::Session::stop_attaching_when)'s
    /// check said stop, after this many locations of the selector.
    Interrupted { attached: usize, of: usize },
}

impl Error {
    /// A failed system call; permission errors become [`Error::Privileges`].
    pub fn os(what: &str, error: std::io::Error) -> Error {
        match error.raw_os_error() {
            Some(libc::EACCES | libc::EPERM) => Error::Privileges,
            _ => Error::Os {
                what: what.to_string(),
                error,
            },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Privileges => write!(
                f,
                "tracing needs root, or the CAP_PERFMON and CAP_SYS_ADMIN capabilities \
                 (to load BPF programs and attach uprobes)"
            ),
            Error::Os { what, error } => write!(f, "{what}: {error}"),
            Error::Kernel(m) | Error::Unsupported(m) | Error::Input(m) => f.write_str(m),
            Error::Interrupted { attached, of } => write!(
                f,
                "interrupted while attaching, after {attached} of {of} locations; \
                 all detached again"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Os { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<stapsdt_reader::Error> for Error {
    fn from(e: stapsdt_reader::Error) -> Error {
        Error::Input(e.to_string())
    }
}
