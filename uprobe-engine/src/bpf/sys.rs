//! The `bpf(2)` calls the argument programs need: two kinds of map, loading
//! a kprobe-type program (with the verifier's log on refusal), and
//! attaching it to a uprobe's perf event. Each map and program is an owned
//! file descriptor: dropping it releases the kernel object.

use super::insn::Insn;
use crate::Error;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const MAP_CREATE: libc::c_long = 0;
const MAP_LOOKUP_ELEM: libc::c_long = 1;
const MAP_UPDATE_ELEM: libc::c_long = 2;
const PROG_LOAD: libc::c_long = 5;

const MAP_TYPE_PERF_EVENT_ARRAY: u32 = 4;
const MAP_TYPE_PERCPU_ARRAY: u32 = 6;
/// BPF_PROG_TYPE_KPROBE: also the type for uprobes; its context is `pt_regs`.
const PROG_TYPE_KPROBE: u32 = 2;

/// `union bpf_attr` is at most this large for the commands used here; the
/// kernel accepts a longer attribute when the tail is zero.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
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
    // SAFETY: attr is a valid, initialised bpf_attr of the size passed.
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

/// How many CPUs the kernel may ever bring up (per-CPU map values come in
/// that many slots).
fn possible_cpus() -> usize {
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
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: a descriptor the kernel just returned, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// A BPF map.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
}

impl Map {
    fn create(kind: u32, key: u32, value: u32, entries: u32, name: &str) -> Result<Map, Error> {
        let mut attr = Attr::new();
        attr.put_u32(0, kind)
            .put_u32(4, key)
            .put_u32(8, value)
            .put_u32(12, entries)
            .put_name(28, name);
        let fd = bpf(MAP_CREATE, &mut attr).map_err(|e| Error::os("creating a BPF map", e))?;
        Ok(Map { fd: owned(fd) })
    }

    /// An array of perf events, one slot per CPU, for `bpf_perf_event_output`.
    pub fn perf_event_array(cpus: u32) -> Result<Map, Error> {
        Map::create(MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, cpus, "stapsdt_out")
    }

    /// One `value_bytes` scratch buffer per CPU (a record is built there:
    /// the BPF stack holds only 512 bytes).
    pub fn per_cpu_buffer(value_bytes: u32) -> Result<Map, Error> {
        Map::create(MAP_TYPE_PERCPU_ARRAY, 4, value_bytes, 1, "stapsdt_rec")
    }

    /// One u64 per CPU, for counting.
    pub fn per_cpu_counter() -> Result<Map, Error> {
        Map::create(MAP_TYPE_PERCPU_ARRAY, 4, 8, 1, "stapsdt_hits")
    }

    /// The sum over all CPUs of a [`per_cpu_counter`](Self::per_cpu_counter).
    pub fn per_cpu_sum(&self) -> u64 {
        // The kernel copies one 8-byte slot per possible CPU.
        let cpus = possible_cpus();
        let mut values = vec![0u64; cpus];
        let key = 0u32;
        let mut attr = Attr::new();
        attr.put_u32(0, self.fd.as_raw_fd() as u32)
            .put_u64(8, &key as *const u32 as u64)
            .put_u64(16, values.as_mut_ptr() as u64);
        match bpf(MAP_LOOKUP_ELEM, &mut attr) {
            Ok(_) => values.iter().sum(),
            Err(_) => 0,
        }
    }

    /// Put the perf event `event_fd` in slot `cpu`.
    pub fn set_perf_event(&self, cpu: u32, event_fd: RawFd) -> Result<(), Error> {
        let key = cpu;
        let value = event_fd as u32;
        let mut attr = Attr::new();
        attr.put_u32(0, self.fd.as_raw_fd() as u32)
            .put_u64(8, &key as *const u32 as u64)
            .put_u64(16, &value as *const u32 as u64);
        bpf(MAP_UPDATE_ELEM, &mut attr)
            .map(drop)
            .map_err(|e| Error::os("filling the BPF perf event array", e))
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A loaded program.
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
}

impl Program {
    /// Load a uprobe program; a refusal carries the verifier's log.
    pub fn load_kprobe(insns: &[Insn], name: &str) -> Result<Program, Error> {
        // The helpers that read user memory and emit records are GPL-only.
        let license = c"GPL";
        let mut log = vec![0u8; 64 * 1024];
        let mut attr = Attr::new();
        attr.put_u32(0, PROG_TYPE_KPROBE)
            .put_u32(4, insns.len() as u32)
            .put_u64(8, insns.as_ptr() as u64)
            .put_u64(16, license.as_ptr() as u64)
            .put_u32(24, 1)
            .put_u32(28, log.len() as u32)
            .put_u64(32, log.as_mut_ptr() as u64)
            .put_name(48, name);
        match bpf(PROG_LOAD, &mut attr) {
            Ok(fd) => Ok(Program { fd: owned(fd) }),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
                Err(Error::Privileges)
            }
            Err(e) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                let tail: Vec<&str> = text.lines().rev().take(6).collect();
                Err(Error::Kernel(format!(
                    "the kernel refused the argument-fetching BPF program ({e}): {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )))
            }
        }
    }

    /// Run this program on every hit of the uprobe behind `perf_fd`
    /// (for a tracefs event: on every hit of that event, whichever of its
    /// perf events the hit is for).
    pub fn attach_to(&self, perf_fd: RawFd) -> Result<(), Error> {
        // SAFETY: ioctl on descriptors we own.
        let r = unsafe {
            perf_event_open_sys::ioctls::SET_BPF(perf_fd, self.fd.as_raw_fd() as libc::c_uint)
        };
        if r < 0 {
            return Err(Error::os(
                "attaching the BPF program to its uprobe",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}
