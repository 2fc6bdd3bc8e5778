//! `-c CMD`: start the command held before its first instruction, so the
//! probes are attached (perf events on its pid, inherited across exec and
//! fork) before it runs; then release it.

use std::ffi::CString;

/// A command without lists, pipes, subshells or redirections: the shell
/// runs it with `exec`, and its first word is the program.
pub fn is_simple(command: &str) -> bool {
    !command.contains([';', '&', '|', '\n', '(', ')', '<', '>', '`'])
}

/// What the command gets besides the tracer's environment: variables, and
/// a descriptor of the tracer's that it inherits (`--in-process`: the
/// agent's shared memory).
#[derive(Default)]
pub struct ChildSetup {
    pub env: Vec<(String, String)>,
    pub keep_fd: Option<i32>,
}

impl ChildSetup {
    /// The tracer's environment with `env` set (replacing what it had).
    fn environment(&self) -> Result<Vec<CString>, String> {
        let mut out = Vec::new();
        for (key, value) in std::env::vars_os() {
            if self.env.iter().any(|(k, _)| std::ffi::OsStr::new(k) == key) {
                continue;
            }
            let mut entry = key.into_encoded_bytes();
            entry.push(b'=');
            entry.extend(value.into_encoded_bytes());
            if let Ok(c) = CString::new(entry) {
                out.push(c);
            }
        }
        for (k, v) in &self.env {
            out.push(
                CString::new(format!("{k}={v}"))
                    .map_err(|_| format!("NUL byte in the environment variable {k}"))?,
            );
        }
        Ok(out)
    }
}

/// A forked child waiting on a pipe before it execs the command.
pub struct HeldChild {
    pid: libc::pid_t,
    release_fd: libc::c_int,
    status: Option<i32>,
}

impl HeldChild {
    /// Fork; the child blocks until [`release`](Self::release), then runs
    /// `CMD` through `/bin/sh -c` (with `exec`, so the pid stays the command's
    /// when it is a simple command).
    /// `setup`'s variables are added to the environment and its descriptor
    /// kept open across `exec`.
    pub fn spawn_with(command: &str, setup: &ChildSetup) -> Result<HeldChild, String> {
        let script = if is_simple(command) {
            format!("exec {command}")
        } else {
            command.to_string()
        };
        let argv_owned: Vec<CString> = ["/bin/sh", "-c", &script]
            .iter()
            .map(|s| CString::new(*s).map_err(|_| format!("`{command}`: NUL byte in command")))
            .collect::<Result<_, _>>()?;
        let mut argv: Vec<*const libc::c_char> = argv_owned.iter().map(|s| s.as_ptr()).collect();
        argv.push(std::ptr::null());
        // The environment is made before the fork (the child only execs).
        let env_owned = setup.environment()?;
        let mut envp: Vec<*const libc::c_char> = env_owned.iter().map(|s| s.as_ptr()).collect();
        envp.push(std::ptr::null());
        let keep_fd = setup.keep_fd.unwrap_or(-1);
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(format!("pipe: {}", std::io::Error::last_os_error()));
        }
        let [read_fd, write_fd] = fds;
        // SAFETY: after fork the child only calls async-signal-safe functions
        // (close, read, execv, _exit) on data prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: in the child: async-signal-safe calls only (close,
            // read, fcntl, execve, _exit); `byte` is a live local, `argv` and
            // `envp` NUL-terminated arrays of C strings built before the fork.
            unsafe {
                libc::close(write_fd);
                let mut byte = 0u8;
                // EOF without a byte: the tracer gave up; do not run the command.
                if libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) != 1 {
                    libc::_exit(125);
                }
                if keep_fd >= 0 {
                    libc::fcntl(keep_fd, libc::F_SETFD, 0);
                }
                libc::execve(argv[0], argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
        }
        // SAFETY: closing our copy of the child's end.
        unsafe { libc::close(read_fd) };
        Ok(HeldChild {
            pid,
            release_fd: write_fd,
            status: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Let the child exec the command.
    pub fn release(&mut self) {
        if self.release_fd >= 0 {
            // SAFETY: writing one byte to our pipe end, then closing it.
            unsafe {
                libc::write(self.release_fd, b"x".as_ptr().cast(), 1);
                libc::close(self.release_fd);
            }
            self.release_fd = -1;
        }
    }

    /// The exit code (128+N for a signal), once the child has ended.
    pub fn exit_code(&mut self) -> Option<i32> {
        if self.status.is_none() {
            let mut status = 0;
            // SAFETY: reaping our own child without blocking.
            if unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) } == self.pid {
                self.status = Some(if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                });
            }
        }
        self.status
    }
}

impl HeldChild {
    /// The tracer was asked to end by `signal` (SIGTERM, SIGHUP): pass it on
    /// to a command still running, wait for it up to `limit`, then SIGKILL
    /// it. Returns its exit code (128+N for a signal) when it was reaped.
    pub fn end_with(&mut self, signal: i32, limit: std::time::Duration) -> Option<i32> {
        if self.release_fd >= 0 || self.exit_code().is_some() {
            return self.status;
        }
        // SAFETY: signalling our own child, not yet reaped (so its pid is ours).
        unsafe { libc::kill(self.pid, signal) };
        let deadline = std::time::Instant::now() + limit;
        while self.exit_code().is_none() {
            if std::time::Instant::now() >= deadline {
                // SAFETY: as above; then a blocking reap of our own child.
                unsafe {
                    libc::kill(self.pid, libc::SIGKILL);
                }
                let mut status = 0;
                // SAFETY: waiting for our own child, which SIGKILL ends.
                if unsafe { libc::waitpid(self.pid, &mut status, 0) } == self.pid {
                    self.status = Some(128 + libc::SIGKILL);
                }
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.status
    }
}

impl Drop for HeldChild {
    fn drop(&mut self) {
        if self.release_fd >= 0 {
            // Never released (attaching failed): closing the pipe makes it exit.
            // SAFETY: our descriptor and our child.
            unsafe {
                libc::close(self.release_fd);
                let mut status = 0;
                libc::waitpid(self.pid, &mut status, 0);
            }
        }
    }
}
