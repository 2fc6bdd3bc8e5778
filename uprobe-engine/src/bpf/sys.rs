//! The `bpf(2)` calls the engine needs: maps (ring buffer, per-CPU arrays,
//! a hash set of traced processes), loading a program (uprobe-multi,
//! optionally sleepable, or tracepoint), and `uprobe_multi` links. Each
//! map, program and link is an owned file descriptor: dropping it (or the
//! tracer's death, whatever signal ends it) releases the kernel object.

use super::insn::Insn;
use crate::Error;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const MAP_CREATE: libc::c_long = 0;
const MAP_LOOKUP_ELEM: libc::c_long = 1;
const MAP_UPDATE_ELEM: libc::c_long = 2;
const MAP_GET_NEXT_KEY: libc::c_long = 4;
const PROG_LOAD: libc::c_long = 5;
const LINK_CREATE: libc::c_long = 28;

const MAP_TYPE_HASH: u32 = 1;
const MAP_TYPE_ARRAY: u32 = 2;
const MAP_TYPE_PERCPU_HASH: u32 = 5;
const MAP_TYPE_PERCPU_ARRAY: u32 = 6;
const MAP_TYPE_STACK_TRACE: u32 = 7;
/// `map_flags`: hash entries are allocated when inserted, not up front.
const F_NO_PREALLOC: u32 = 1;
const MAP_TYPE_RINGBUF: u32 = 27;
/// BPF_PROG_TYPE_KPROBE: also the type of uprobe programs; context `pt_regs`.
const PROG_TYPE_KPROBE: u32 = 2;
const PROG_TYPE_TRACEPOINT: u32 = 5;
/// BPF_TRACE_UPROBE_MULTI (`enum bpf_attach_type`).
const ATTACH_UPROBE_MULTI: u32 = 48;
/// `prog_flags`: the program may sleep (fault user pages in).
const F_SLEEPABLE: u32 = 1 << 4;
/// `uprobe_multi.flags`: attach at function return.
const F_UPROBE_MULTI_RETURN: u32 = 1;

/// `union bpf_attr` is at most this large for the commands used here; the
/// kernel accepts a longer attribute when the tail is zero.
#[repr(C, align(8))]
struct Attr([u8; 160]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 160])
    }

    fn put_u32(&mut self, at: usize, v: u32) -> &mut Self {
        self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }

    fn put_u64(&mut self, at: usize, v: u64) -> &mut Self {
        self.0[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }

    fn put_name(&mut self, at: usize, name: &str) -> &mut Self {
        // Object names: 15 characters of [A-Za-z0-9_.] and a NUL.
        let clean: Vec<u8> = name
            .bytes()
            .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
            .take(15)
            .collect();
        self.0[at..at + clean.len()].copy_from_slice(&clean);
        self
    }
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> std::io::Result<libc::c_long> {
    // SAFETY: attr is a valid, initialised bpf_attr of the size passed, and
    // every pointer in it outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>(),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Whether the running kernel can make `uprobe_multi` links (its attach
/// function is in the symbol table; an unreadable table says yes, so that
/// the kernel's own error is shown).
fn kernel_has_uprobe_multi() -> bool {
    std::fs::read_to_string("/proc/kallsyms")
        .map(|t| t.contains(" bpf_uprobe_multi_link_attach"))
        .unwrap_or(true)
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| r.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// How many CPUs the kernel may ever bring up (per-CPU map values come in
/// that many slots).
pub fn possible_cpus() -> usize {
    // Read once: per-CPU map reads ask for it per key.
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| {
        let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap_or_default();
        text.trim()
            .split(',')
            .filter_map(|part| {
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                Some(b.parse::<usize>().ok()? + 1).filter(|_| a.parse::<usize>().is_ok())
            })
            .max()
            .unwrap_or(1)
            .max(1)
    })
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: a descriptor the kernel just returned, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// A BPF map.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    key_bytes: u32,
    value_bytes: u32,
    per_cpu: bool,
}

impl Map {
    fn create(kind: u32, key: u32, value: u32, entries: u32, name: &str) -> Result<Map, Error> {
        Map::create_with(kind, key, value, entries, 0, name)
    }

    fn create_with(
        kind: u32,
        key: u32,
        value: u32,
        entries: u32,
        flags: u32,
        name: &str,
    ) -> Result<Map, Error> {
        let mut attr = Attr::new();
        attr.put_u32(0, kind)
            .put_u32(4, key)
            .put_u32(8, value)
            .put_u32(12, entries)
            .put_u32(16, flags)
            .put_name(28, name);
        let fd = bpf(MAP_CREATE, &mut attr)
            .map_err(|e| Error::os(&format!("creating the BPF map {name}"), e))?;
        Ok(Map {
            fd: owned(fd),
            key_bytes: key,
            value_bytes: value,
            per_cpu: matches!(kind, MAP_TYPE_PERCPU_ARRAY | MAP_TYPE_PERCPU_HASH),
        })
    }

    /// One `value`-byte entry per CPU (a scratch record).
    pub fn per_cpu_scratch(value: u32, name: &str) -> Result<Map, Error> {
        Map::create(MAP_TYPE_PERCPU_ARRAY, 4, value, 1, name)
    }

    /// One `value`-byte entry, all zeros.
    pub fn zeros(value: u32, name: &str) -> Result<Map, Error> {
        Map::create(MAP_TYPE_ARRAY, 4, value, 1, name)
    }

    /// A hash map, per CPU or shared, allocating entries as they come.
    pub fn hash(
        key: u32,
        value: u32,
        entries: u32,
        per_cpu: bool,
        name: &str,
    ) -> Result<Map, Error> {
        let kind = if per_cpu {
            MAP_TYPE_PERCPU_HASH
        } else {
            MAP_TYPE_HASH
        };
        Map::create_with(kind, key, value, entries, F_NO_PREALLOC, name)
    }

    /// Stacks of up to `frames` addresses by id (`bpf_get_stackid`).
    pub fn stack_traces(frames: u32, entries: u32) -> Result<Map, Error> {
        Map::create(
            MAP_TYPE_STACK_TRACE,
            4,
            8 * frames,
            entries,
            "stapsdt_stacks",
        )
    }

    /// Every key, in the kernel's order. A key deleted meanwhile may end
    /// the walk early (the kernel then starts over; callers read once at
    /// the end).
    pub fn keys(&self) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut next = vec![0u8; self.key_bytes as usize];
        loop {
            let mut attr = Attr::new();
            attr.put_u32(0, self.fd.as_raw_fd() as u32)
                .put_u64(8, keys.last().map_or(0, |k| k.as_ptr() as u64))
                .put_u64(16, next.as_mut_ptr() as u64);
            if bpf(MAP_GET_NEXT_KEY, &mut attr).is_err() {
                return keys;
            }
            keys.push(next.clone());
        }
    }

    /// The value under `key`: for a per-CPU map, one 8-byte-aligned slot
    /// per possible CPU, one after the other.
    pub fn lookup(&self, key: &[u8]) -> Option<Vec<u8>> {
        let stride = (self.value_bytes as usize).next_multiple_of(8);
        let slots = if self.per_cpu { possible_cpus() } else { 1 };
        let mut value = vec![0u8; stride * slots];
        let mut attr = Attr::new();
        attr.put_u32(0, self.fd.as_raw_fd() as u32)
            .put_u64(8, key.as_ptr() as u64)
            .put_u64(16, value.as_mut_ptr() as u64);
        bpf(MAP_LOOKUP_ELEM, &mut attr).ok().map(|_| value)
    }

    /// The ring buffer every record goes through, `bytes` of data (a power
    /// of two, a multiple of the page size).
    pub fn ring_buffer(bytes: u32) -> Result<Map, Error> {
        Map::create(MAP_TYPE_RINGBUF, 0, 0, bytes, "stapsdt_ring")
    }

    /// `entries` u64 counters per CPU (hits per site, records lost).
    pub fn per_cpu_counters(entries: u32, name: &str) -> Result<Map, Error> {
        Map::create(MAP_TYPE_PERCPU_ARRAY, 4, 8, entries.max(1), name)
    }

    /// A set of process ids (u32 → u32), for a traced process tree.
    pub fn pid_set(entries: u32) -> Result<Map, Error> {
        Map::create(MAP_TYPE_HASH, 4, 4, entries, "stapsdt_pids")
    }

    /// The per-CPU values of u64 slot `key`, summed over the CPUs.
    pub fn per_cpu_sum(&self, key: u32) -> u64 {
        // The kernel copies one 8-byte-aligned slot per possible CPU.
        let stride = (self.value_bytes as usize).div_ceil(8);
        let mut values = vec![0u64; possible_cpus() * stride];
        let mut attr = Attr::new();
        attr.put_u32(0, self.fd.as_raw_fd() as u32)
            .put_u64(8, &key as *const u32 as u64)
            .put_u64(16, values.as_mut_ptr() as u64);
        match bpf(MAP_LOOKUP_ELEM, &mut attr) {
            Ok(_) => values.iter().step_by(stride).sum(),
            Err(_) => 0,
        }
    }

    /// Put `key → value` (u32 → u32).
    pub fn insert_u32(&self, key: u32, value: u32) -> Result<(), Error> {
        let mut attr = Attr::new();
        attr.put_u32(0, self.fd.as_raw_fd() as u32)
            .put_u64(8, &key as *const u32 as u64)
            .put_u64(16, &value as *const u32 as u64);
        bpf(MAP_UPDATE_ELEM, &mut attr)
            .map(drop)
            .map_err(|e| Error::os("filling a BPF map", e))
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// What a program is loaded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramKind {
    /// Run by `uprobe_multi` links; sleepable ones may fault user pages in.
    UprobeMulti { sleepable: bool },
    /// Run by a tracepoint's perf event.
    Tracepoint,
}

/// A loaded program.
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
}

impl Program {
    /// Load a program; a refusal carries the end of the verifier's log.
    pub fn load(insns: &[Insn], kind: ProgramKind, name: &str) -> Result<Program, Error> {
        // The helpers that read user memory and emit records are GPL-only.
        let license = c"GPL";
        let mut attr = Attr::new();
        let (prog_type, attach, flags) = match kind {
            ProgramKind::UprobeMulti { sleepable } => (
                PROG_TYPE_KPROBE,
                ATTACH_UPROBE_MULTI,
                if sleepable { F_SLEEPABLE } else { 0 },
            ),
            ProgramKind::Tracepoint => (PROG_TYPE_TRACEPOINT, 0, 0),
        };
        attr.put_u32(0, prog_type)
            .put_u32(4, insns.len() as u32)
            .put_u64(8, insns.as_ptr() as u64)
            .put_u64(16, license.as_ptr() as u64)
            .put_u32(44, flags)
            .put_name(48, name)
            .put_u32(68, attach);
        // First without a log (cheaper); again with one to explain a refusal.
        // EPERM is a missing capability; the verifier says EACCES or EINVAL.
        match bpf(PROG_LOAD, &mut attr) {
            Ok(fd) => return Ok(Program { fd: owned(fd) }),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Err(Error::Privileges),
            Err(_) => {}
        }
        let mut log = vec![0u8; 256 * 1024];
        attr.put_u32(24, 1)
            .put_u32(28, log.len() as u32)
            .put_u64(32, log.as_mut_ptr() as u64);
        match bpf(PROG_LOAD, &mut attr) {
            Ok(fd) => Ok(Program { fd: owned(fd) }),
            Err(e) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                if std::env::var_os("STAP_SDT_BPF_LOG").is_some() {
                    eprintln!("{text}");
                }
                let tail: Vec<&str> = text.lines().rev().take(6).collect();
                Err(Error::Kernel(format!(
                    "the kernel refused the probe's BPF program ({e}): {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )))
            }
        }
    }

    /// Run this program on every hit of the tracepoint behind `perf_fd`.
    pub fn attach_to_perf_event(&self, perf_fd: RawFd) -> Result<(), Error> {
        // SAFETY: ioctl on descriptors we own.
        let r = unsafe {
            perf_event_open_sys::ioctls::SET_BPF(perf_fd, self.fd.as_raw_fd() as libc::c_uint)
        };
        if r < 0 {
            return Err(Error::os(
                "attaching a BPF program to a tracepoint",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// One site of a [`Link`]: where in the file, its semaphore, its cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkSite {
    pub offset: u64,
    /// File offset of the semaphore the kernel raises while attached; 0: none.
    pub ref_ctr_offset: u64,
    /// What `bpf_get_attach_cookie` returns at a hit of this site.
    pub cookie: u64,
}

/// A `uprobe_multi` link: one program on many offsets of one file, the
/// semaphores raised by the kernel. Closing it unregisters every uprobe
/// (one RCU wait for all of them) and lowers the semaphores.
#[derive(Debug)]
pub struct Link {
    _fd: OwnedFd,
}

impl Link {
    pub fn uprobe_multi(
        program: &Program,
        path: &std::path::Path,
        sites: &[LinkSite],
        retprobe: bool,
        pid: Option<u32>,
    ) -> Result<Link, Error> {
        use std::os::unix::ffi::OsStrExt;
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Error::Input(format!("{}: NUL byte in path", path.display())))?;
        let offsets: Vec<u64> = sites.iter().map(|s| s.offset).collect();
        let ref_ctrs: Vec<u64> = sites.iter().map(|s| s.ref_ctr_offset).collect();
        let cookies: Vec<u64> = sites.iter().map(|s| s.cookie).collect();
        let mut attr = Attr::new();
        attr.put_u32(0, program.fd() as u32)
            .put_u32(8, ATTACH_UPROBE_MULTI)
            .put_u64(16, c_path.as_ptr() as u64)
            .put_u64(24, offsets.as_ptr() as u64)
            .put_u64(32, ref_ctrs.as_ptr() as u64)
            .put_u64(40, cookies.as_ptr() as u64)
            .put_u32(48, sites.len() as u32)
            .put_u32(52, if retprobe { F_UPROBE_MULTI_RETURN } else { 0 })
            .put_u32(56, pid.unwrap_or(0));
        match bpf(LINK_CREATE, &mut attr) {
            Ok(fd) => Ok(Link { _fd: owned(fd) }),
            Err(e) => Err(match e.raw_os_error() {
                Some(libc::EACCES | libc::EPERM) => Error::Privileges,
                Some(libc::EINVAL | libc::EOPNOTSUPP) if !kernel_has_uprobe_multi() => {
                    Error::Unsupported(format!(
                        "this kernel ({}) has no BPF uprobe_multi links, which the engine \
                         attaches with (Linux 6.6 or later, CONFIG_UPROBES and \
                         CONFIG_BPF_EVENTS)",
                        kernel_release()
                    ))
                }
                Some(libc::EINVAL) if sites.iter().any(|s| s.ref_ctr_offset != 0) => {
                    Error::Kernel(format!(
                        "{}: the kernel refused the uprobes ({e}); another tracer may hold \
                         one of these sites with a different semaphore offset",
                        path.display()
                    ))
                }
                _ => Error::Os {
                    what: format!(
                        "attaching uprobes to {} at {} site{}",
                        path.display(),
                        sites.len(),
                        if sites.len() == 1 { "" } else { "s" }
                    ),
                    error: e,
                },
            }),
        }
    }
}
