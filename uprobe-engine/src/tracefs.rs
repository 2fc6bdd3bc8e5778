//! tracefs, read only: the id and record layout of a kernel tracepoint
//! (`sched/sched_process_fork`). The engine creates nothing there.

use crate::format::EventFormat;
use crate::Error;
use std::path::{Path, PathBuf};

/// The mounted tracefs, mounting it at `/sys/kernel/tracing` if needed.
fn root() -> Result<PathBuf, Error> {
    for root in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if Path::new(root).join("events").exists() {
            return Ok(root.into());
        }
    }
    // SAFETY: plain mount(2) with static NUL-terminated strings.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(Error::os(
            "mounting tracefs at /sys/kernel/tracing",
            std::io::Error::last_os_error(),
        ));
    }
    Ok("/sys/kernel/tracing".into())
}

/// A tracepoint's id and record layout.
pub fn tracepoint(group: &str, name: &str) -> Result<(u64, EventFormat), Error> {
    let dir = root()?.join("events").join(group).join(name);
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file))
            .map_err(|e| Error::os(&format!("reading {}", dir.join(file).display()), e))
    };
    let id = read("id")?
        .trim()
        .parse()
        .map_err(|_| Error::Kernel(format!("{}: no tracepoint id", dir.display())))?;
    let format = EventFormat::parse(&read("format")?)
        .map_err(|e| Error::Kernel(format!("{}/format: {e}", dir.display())))?;
    Ok((id, format))
}
