//! Where a provider's object lives while it is loaded, and the loading.
//!
//! By default in a memfd (`memfd_create`): nothing on disk, nothing to
//! clean up after a crash. The loader opens it as `/proc/PID/fd/N`, which
//! is also the name the process's link map gives debuggers; the
//! descriptor stays open while the object is loaded, so that name keeps
//! working. With a directory (the API's [`Placement::Directory`], or
//! `$STAP_SDT_DYNAMIC_DIR`) the object is a file there, for tools that
//! only read objects through their path in `/proc/PID/maps`; it is removed
//! at unload.

use crate::Error;
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming a directory to write objects to
/// instead of memfds.
pub const DIR_ENV: &str = "STAP_SDT_DYNAMIC_DIR";

/// Where to put a provider's object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Placement {
    /// `$STAP_SDT_DYNAMIC_DIR` when set, else a memfd.
    #[default]
    Default,
    /// A memfd (an error where the kernel has none).
    Memfd,
    /// A file in this directory, removed at unload.
    Directory(PathBuf),
}

impl Placement {
    fn resolve(&self) -> Placement {
        match self {
            Placement::Default => match std::env::var_os(DIR_ENV) {
                Some(dir) if !dir.is_empty() => Placement::Directory(dir.into()),
                _ => Placement::Memfd,
            },
            other => other.clone(),
        }
    }
}

/// What holds the object's bytes.
#[derive(Debug)]
enum Backing {
    /// Held open while loaded: `/proc/PID/fd/N` names the object.
    Memfd {
        _open: OwnedFd,
    },
    File(PathBuf),
}

/// A loaded object: `dlclose`d, then its backing released, on drop.
#[derive(Debug)]
pub(crate) struct Loaded {
    handle: *mut libc::c_void,
    backing: Backing,
    /// The name the loader knows it by.
    pub path: PathBuf,
    /// The same, for the C ABI.
    pub c_path: CString,
}

// SAFETY: `handle` is an opaque dlopen handle; dlsym and dlclose may be
// called on it from any thread, and nothing else reads through it.
unsafe impl Send for Loaded {}
// SAFETY: as for Send: no interior state is touched through `&Loaded`
// except by dlsym, which is thread-safe.
unsafe impl Sync for Loaded {}

fn last_dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string owned by the
    // C library, valid until the next dl* call on this thread; copied at once.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        return "unknown dynamic loader error".to_string();
    }
    // SAFETY: non-NULL, NUL-terminated (see above).
    unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned()
}

fn memfd(name: &str, bytes: &[u8]) -> std::io::Result<OwnedFd> {
    let cname = CString::new(format!("stapsdt:{name}")).expect("provider names have no NUL");
    // MFD_EXEC (Linux 6.3): say the memfd will be mapped executable, so a
    // `vm.memfd_noexec` default of "no exec" does not apply to it. Older
    // kernels reject the flag; they have no such policy.
    const MFD_EXEC: libc::c_uint = 0x10;
    let mut fd = -1;
    for flags in [libc::MFD_CLOEXEC | MFD_EXEC, libc::MFD_CLOEXEC] {
        // SAFETY: `cname` is a valid NUL-terminated string; flags are plain bits.
        fd = unsafe { libc::memfd_create(cname.as_ptr(), flags) };
        if fd >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            break;
        }
    }
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(owned);
    std::io::Write::write_all(&mut file, bytes)?;
    Ok(OwnedFd::from(file))
}

fn file_in(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let path = dir.join(format!(
        "stapsdt-{name}-{}-{}.so",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&path)?;
    if let Err(e) = file.write_all(bytes) {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

impl Loaded {
    /// Put `bytes` where `placement` says and `dlopen` them.
    pub fn load(provider: &str, bytes: &[u8], placement: &Placement) -> Result<Loaded, Error> {
        let (backing, path) = match placement.resolve() {
            Placement::Directory(dir) => {
                let path = file_in(&dir, provider, bytes).map_err(|e| {
                    Error::new(format!(
                        "provider `{provider}`: cannot write its object in {}: {e}",
                        dir.display()
                    ))
                })?;
                (Backing::File(path.clone()), path)
            }
            _ => {
                let fd = memfd(provider, bytes).map_err(|e| {
                    Error::new(format!(
                        "provider `{provider}`: cannot create a memfd for its object: {e} \
                         (set {DIR_ENV} to write it to a directory)"
                    ))
                })?;
                // The pid, not `self`: the path is also what debuggers
                // attached from other processes read from the link map.
                let path = PathBuf::from(format!(
                    "/proc/{}/fd/{}",
                    std::process::id(),
                    fd.as_raw_fd()
                ));
                (Backing::Memfd { _open: fd }, path)
            }
        };
        let cpath = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::new(format!("provider `{provider}`: path {path:?} has a NUL")))?;
        // SAFETY: `cpath` is NUL-terminated; the object has no constructors
        // (no DT_INIT, no DT_NEEDED), so loading runs none of our code.
        let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            let why = last_dl_error();
            if let Backing::File(p) = &backing {
                let _ = std::fs::remove_file(p);
            }
            return Err(Error::new(format!(
                "provider `{provider}`: cannot load its object: {why}"
            )));
        }
        Ok(Loaded {
            handle,
            backing,
            path,
            c_path: cpath,
        })
    }

    /// The run-time address of a symbol of the object.
    pub fn symbol(&self, name: &str) -> Result<usize, Error> {
        let cname = CString::new(name).expect("symbol names have no NUL");
        // SAFETY: `handle` is a live dlopen handle (closed only in drop);
        // `cname` is NUL-terminated.
        let address = unsafe { libc::dlsym(self.handle, cname.as_ptr()) };
        if address.is_null() {
            return Err(Error::new(format!(
                "{}: symbol `{name}` not found: {}",
                self.path.display(),
                last_dl_error()
            )));
        }
        Ok(address as usize)
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // SAFETY: `handle` came from dlopen and is closed exactly once, here;
        // the probes that point into the object borrow it (`Provider`) and
        // are gone.
        unsafe { libc::dlclose(self.handle) };
        if let Backing::File(path) = &self.backing {
            let _ = std::fs::remove_file(path);
        }
        // A memfd is closed when its OwnedFd drops, after the unmapping.
    }
}
