//! The `bpf(2)` calls the engine needs: maps (ring buffer, per-CPU arrays,
//! a hash set of traced processes), loading a program (uprobe-multi,
//! optionally sleepable, or tracepoint), and `uprobe_multi` links. Each
//! map, program and link is an owned file descriptor: dropping it (or the
//! tracer's death, whatever signal ends it) releases the kernel object.

use super::insn::Insn;
use crate::Error;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const MAP_TYPE_HASH: u32 = 1;
const MAP_TYPE_ARRAY: u32 = 2;
const MAP_TYPE_PERF_EVENT_ARRAY: u32 = 4;
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

/// The `bpf_attr` of each command used here, as the kernel lays it out
/// (`include/uapi/linux/bpf.h`), each only as long as the fields used: the
/// kernel takes a shorter attribute as if its tail were zero. The fields
/// that are pointers hold user addresses as `u64`; each attribute is made
/// by a constructor that takes the memory as borrowed slices, so those
/// addresses point into memory that outlives the attribute and is as large
/// as the command reads or writes.
mod attr {
    use std::marker::PhantomData;

    /// A command's attribute: `bpf(CMD, &attr, size_of::<Self>())`.
    ///
    /// # Safety
    /// Implementors are `#[repr(C)]` images of the kernel's attribute for
    /// `CMD`, and every pointer field they hold is valid for the reads and
    /// writes that command makes (guaranteed by their constructors).
    pub unsafe trait Command {
        const CMD: libc::c_long;
    }

    /// Object names: 15 characters of [A-Za-z0-9_.] and a NUL.
    pub fn object_name(name: &str) -> [u8; 16] {
        let mut out = [0u8; 16];
        let clean = name
            .bytes()
            .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
            .take(15);
        for (slot, b) in out.iter_mut().zip(clean) {
            *slot = b;
        }
        out
    }

    /// BPF_MAP_CREATE.
    #[repr(C)]
    #[derive(Default)]
    pub struct MapCreate {
        pub map_type: u32,
        pub key_size: u32,
        pub value_size: u32,
        pub max_entries: u32,
        pub map_flags: u32,
        pub inner_map_fd: u32,
        pub numa_node: u32,
        pub map_name: [u8; 16],
    }

    // SAFETY: the layout of `union bpf_attr`'s map-create member up to
    // `map_name`; it holds no pointers.
    unsafe impl Command for MapCreate {
        const CMD: libc::c_long = 0;
    }

    /// BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM and BPF_MAP_GET_NEXT_KEY:
    /// a map, a key and a value (or the next key).
    #[repr(C)]
    pub struct MapElem<'a, const CMD: libc::c_long> {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value: u64,
        flags: u64,
        _memory: PhantomData<&'a mut [u8]>,
    }

    pub const LOOKUP: libc::c_long = 1;
    pub const UPDATE: libc::c_long = 2;
    pub const NEXT_KEY: libc::c_long = 4;

    impl<'a, const CMD: libc::c_long> MapElem<'a, CMD> {
        fn new(map_fd: i32, key: u64, value: u64) -> Self {
            MapElem {
                map_fd: map_fd as u32,
                _pad: 0,
                key,
                value,
                flags: 0,
                _memory: PhantomData,
            }
        }
    }

    impl<'a> MapElem<'a, LOOKUP> {
        /// Panics unless the buffers have the map's sizes: the kernel reads
        /// `key_size` bytes and writes `value_bytes` (all CPUs' slots).
        pub fn lookup(map: &super::Map, key: &'a [u8], value: &'a mut [u8]) -> Self {
            assert_eq!(key.len(), map.key_bytes as usize, "BPF map key size");
            assert_eq!(value.len(), map.value_buffer_bytes(), "BPF map value size");
            Self::new(map.fd(), key.as_ptr() as u64, value.as_mut_ptr() as u64)
        }
    }

    impl<'a> MapElem<'a, UPDATE> {
        /// Panics unless the buffers have the map's sizes (the kernel reads
        /// both).
        pub fn update(map: &super::Map, key: &'a [u8], value: &'a [u8]) -> Self {
            assert_eq!(key.len(), map.key_bytes as usize, "BPF map key size");
            assert_eq!(value.len(), map.value_buffer_bytes(), "BPF map value size");
            Self::new(map.fd(), key.as_ptr() as u64, value.as_ptr() as u64)
        }
    }

    impl<'a> MapElem<'a, NEXT_KEY> {
        /// The key after `key` (the first key when `key` is `None`) is
        /// written into `next`. Panics unless both have the map's key size.
        pub fn next_key(map: &super::Map, key: Option<&'a [u8]>, next: &'a mut [u8]) -> Self {
            let size = map.key_bytes as usize;
            assert!(key.is_none_or(|k| k.len() == size), "BPF map key size");
            assert_eq!(next.len(), size, "BPF map key size");
            let key = key.map_or(0, |k| k.as_ptr() as u64);
            Self::new(map.fd(), key, next.as_mut_ptr() as u64)
        }
    }

    // SAFETY: the layout of the map-element member of `union bpf_attr`;
    // the constructors check the buffers' sizes against the map's.
    unsafe impl<const C: libc::c_long> Command for MapElem<'_, C> {
        const CMD: libc::c_long = C;
    }

    /// BPF_PROG_LOAD, up to `expected_attach_type`.
    #[repr(C)]
    pub struct ProgLoad<'a> {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
        _memory: PhantomData<&'a mut [u8]>,
    }

    impl<'a> ProgLoad<'a> {
        pub fn new(
            prog_type: u32,
            insns: &'a [super::Insn],
            license: &'a std::ffi::CStr,
            prog_flags: u32,
            name: &str,
            expected_attach_type: u32,
        ) -> Self {
            ProgLoad {
                prog_type,
                insn_cnt: insns.len() as u32,
                insns: insns.as_ptr() as u64,
                license: license.as_ptr() as u64,
                log_level: 0,
                log_size: 0,
                log_buf: 0,
                kern_version: 0,
                prog_flags,
                prog_name: object_name(name),
                prog_ifindex: 0,
                expected_attach_type,
                _memory: PhantomData,
            }
        }

        /// Ask for the verifier's log in `log` (NUL-terminated by the kernel).
        pub fn with_log(self, log: &'a mut [u8]) -> Self {
            ProgLoad {
                log_level: 1,
                log_size: log.len() as u32,
                log_buf: log.as_mut_ptr() as u64,
                ..self
            }
        }
    }

    // SAFETY: the layout of the prog-load member of `union bpf_attr` up to
    // `expected_attach_type`; `insns`, `license` and `log_buf` come from
    // borrowed slices (a C string for the license) of the sizes given.
    unsafe impl Command for ProgLoad<'_> {
        const CMD: libc::c_long = 5;
    }

    /// BPF_LINK_CREATE of a `uprobe_multi` link.
    #[repr(C)]
    pub struct UprobeMultiLink<'a> {
        prog_fd: u32,
        target_fd: u32,
        attach_type: u32,
        flags: u32,
        path: u64,
        offsets: u64,
        ref_ctr_offsets: u64,
        cookies: u64,
        cnt: u32,
        multi_flags: u32,
        pid: u32,
        /// Written as zero: the kernel reads the attribute's whole size,
        /// and implicit padding would be uninitialised bytes.
        _tail: u32,
        _memory: PhantomData<&'a [u8]>,
    }

    impl<'a> UprobeMultiLink<'a> {
        /// Panics unless the three arrays have one entry per site.
        pub fn new(
            prog_fd: i32,
            path: &'a std::ffi::CStr,
            offsets: &'a [u64],
            ref_ctr_offsets: &'a [u64],
            cookies: &'a [u64],
            multi_flags: u32,
            pid: u32,
        ) -> Self {
            assert_eq!(offsets.len(), ref_ctr_offsets.len());
            assert_eq!(offsets.len(), cookies.len());
            UprobeMultiLink {
                prog_fd: prog_fd as u32,
                target_fd: 0,
                attach_type: super::ATTACH_UPROBE_MULTI,
                flags: 0,
                path: path.as_ptr() as u64,
                offsets: offsets.as_ptr() as u64,
                ref_ctr_offsets: ref_ctr_offsets.as_ptr() as u64,
                cookies: cookies.as_ptr() as u64,
                cnt: offsets.len() as u32,
                multi_flags,
                pid,
                _tail: 0,
                _memory: PhantomData,
            }
        }
    }

    // SAFETY: the layout of the link-create member of `union bpf_attr`
    // with its `uprobe_multi` part; the arrays have `cnt` entries each
    // (checked by the constructor) and the path is a C string.
    unsafe impl Command for UprobeMultiLink<'_> {
        const CMD: libc::c_long = 28;
    }

    /// BPF_LINK_CREATE of a program on a perf event, with a cookie.
    #[repr(C)]
    pub struct PerfEventLink {
        prog_fd: u32,
        target_fd: u32,
        attach_type: u32,
        flags: u32,
        bpf_cookie: u64,
    }

    /// `enum bpf_attach_type`: BPF_PERF_EVENT.
    const ATTACH_PERF_EVENT: u32 = 41;

    impl PerfEventLink {
        pub fn new(prog_fd: i32, perf_fd: i32, bpf_cookie: u64) -> Self {
            PerfEventLink {
                prog_fd: prog_fd as u32,
                target_fd: perf_fd as u32,
                attach_type: ATTACH_PERF_EVENT,
                flags: 0,
                bpf_cookie,
            }
        }
    }

    // SAFETY: the layout of the link-create member of `union bpf_attr`
    // with its `perf_event` part; it holds no pointers.
    unsafe impl Command for PerfEventLink {
        const CMD: libc::c_long = 28;
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::mem::{offset_of, size_of};

        /// The offsets of `include/uapi/linux/bpf.h`.
        #[test]
        fn layouts_match_the_kernel() {
            assert_eq!(offset_of!(MapCreate, map_flags), 16);
            assert_eq!(offset_of!(MapCreate, map_name), 28);
            assert_eq!(offset_of!(MapElem<LOOKUP>, key), 8);
            assert_eq!(offset_of!(MapElem<LOOKUP>, value), 16);
            assert_eq!(size_of::<MapElem<LOOKUP>>(), 32);
            assert_eq!(offset_of!(ProgLoad, log_level), 24);
            assert_eq!(offset_of!(ProgLoad, log_buf), 32);
            assert_eq!(offset_of!(ProgLoad, prog_flags), 44);
            assert_eq!(offset_of!(ProgLoad, prog_name), 48);
            assert_eq!(offset_of!(ProgLoad, expected_attach_type), 68);
            assert_eq!(offset_of!(UprobeMultiLink, attach_type), 8);
            assert_eq!(offset_of!(UprobeMultiLink, path), 16);
            assert_eq!(offset_of!(UprobeMultiLink, cookies), 40);
            assert_eq!(offset_of!(UprobeMultiLink, cnt), 48);
            assert_eq!(offset_of!(UprobeMultiLink, pid), 56);
            // No implicit padding anywhere: every byte the kernel reads is set.
            assert_eq!(size_of::<MapCreate>(), 44);
            assert_eq!(size_of::<ProgLoad>(), 72);
            assert_eq!(size_of::<UprobeMultiLink>(), 64);
            assert_eq!(offset_of!(PerfEventLink, bpf_cookie), 16);
            assert_eq!(size_of::<PerfEventLink>(), 24);
        }

        #[test]
        fn names_are_cut_to_what_the_kernel_takes() {
            assert_eq!(&object_name("stapsdt-ring.x")[..13], b"stapsdtring.x");
            assert_eq!(object_name("a_very_long_program_name")[15], 0);
        }
    }
}

/// Run one `bpf(2)` command.
fn bpf<A: attr::Command>(attr: &mut A) -> std::io::Result<libc::c_long> {
    // SAFETY: `A: Command` is the kernel's attribute for `A::CMD`, of the
    // size passed, and its pointers are valid for the command (the trait's
    // contract); `attr` is borrowed for the whole call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            A::CMD,
            attr as *mut A,
            std::mem::size_of::<A>(),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// How uprobes are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// One `uprobe_multi` link per (file, program): Linux 6.6 and later.
    UprobeMulti,
    /// One uprobe perf event and one BPF link (with the site's cookie) per
    /// site, where the kernel has no `uprobe_multi` (Linux 5.15 to 6.5).
    /// Programs cannot sleep there: strings are read without faulting
    /// pages in.
    PerfEvent,
}

/// The environment variable that chooses the attach mode (`multi` or
/// `perf`) instead of the kernel's features: to test the fallback on a
/// kernel that has both, or to step around a kernel bug.
pub const ATTACH_ENV: &str = "STAP_SDT_ATTACH";

/// How this process attaches uprobes: `$STAP_SDT_ATTACH` if set, else
/// `uprobe_multi` where the kernel has it (as libbpf decides).
pub fn attach_mode() -> AttachMode {
    static MODE: std::sync::OnceLock<AttachMode> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| match std::env::var(ATTACH_ENV).as_deref() {
        Ok("perf") => AttachMode::PerfEvent,
        Ok("multi") => AttachMode::UprobeMulti,
        _ if kernel_has_uprobe_multi() => AttachMode::UprobeMulti,
        _ => AttachMode::PerfEvent,
    })
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

/// Where the kernel lists the CPUs it may ever bring up; per-CPU map values
/// come in one slot per CPU of this list, whatever is online.
const POSSIBLE_CPUS: &str = "/sys/devices/system/cpu/possible";

/// How many CPUs the kernel may ever bring up, read once from
/// [`POSSIBLE_CPUS`]. Per-CPU map reads and writes size their buffers by
/// it: a count too small would let the kernel write past the buffer, so a
/// file that cannot be read or parsed is an error, never a guess.
pub fn possible_cpus() -> Result<usize, Error> {
    static CPUS: std::sync::OnceLock<Result<usize, String>> = std::sync::OnceLock::new();
    CPUS.get_or_init(|| {
        let text = std::fs::read_to_string(POSSIBLE_CPUS).map_err(|e| e.to_string())?;
        count_cpu_list(&text)
    })
    .clone()
    .map_err(|why| {
        Error::Unsupported(format!(
            "{POSSIBLE_CPUS}: {why}; per-CPU BPF maps are sized by it, so the engine cannot \
             read them safely"
        ))
    })
}

/// The number of CPUs a kernel CPU list (`0-3,8-11`, `0`) covers, counted
/// as its highest CPU + 1, as the kernel sizes per-CPU values.
pub fn count_cpu_list(text: &str) -> Result<usize, String> {
    let mut highest: Option<usize> = None;
    for part in text.trim().split(',') {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let parse = |n: &str| {
            n.parse::<usize>()
                .map_err(|_| format!("{:?} is not a CPU list", text.trim()))
        };
        let (first, last) = (parse(first)?, parse(last)?);
        if first > last {
            return Err(format!("{:?} is not a CPU list", text.trim()));
        }
        highest = highest.max(Some(last));
    }
    highest
        .map(|h| h + 1)
        .ok_or_else(|| "empty CPU list".to_string())
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
    /// Value slots the kernel copies per element: the possible CPUs for a
    /// per-CPU map, else 1.
    slots: usize,
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
        let slots = match kind {
            MAP_TYPE_PERCPU_ARRAY | MAP_TYPE_PERCPU_HASH => possible_cpus()?,
            _ => 1,
        };
        let mut attr = attr::MapCreate {
            map_type: kind,
            key_size: key,
            value_size: value,
            max_entries: entries,
            map_flags: flags,
            map_name: attr::object_name(name),
            ..Default::default()
        };
        let fd =
            bpf(&mut attr).map_err(|e| Error::os(&format!("creating the BPF map {name}"), e))?;
        Ok(Map {
            fd: owned(fd),
            key_bytes: key,
            value_bytes: value,
            slots,
        })
    }

    /// Bytes of a value as the kernel copies it out or in: for a per-CPU
    /// map, one 8-byte-aligned slot per possible CPU, one after the other.
    fn value_buffer_bytes(&self) -> usize {
        if self.slots == 1 {
            self.value_bytes as usize
        } else {
            (self.value_bytes as usize).next_multiple_of(8) * self.slots
        }
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
            let mut attr = attr::MapElem::next_key(self, keys.last().map(Vec::as_slice), &mut next);
            if bpf(&mut attr).is_err() {
                return keys;
            }
            keys.push(next.clone());
        }
    }

    /// The value under `key`: for a per-CPU map, one 8-byte-aligned slot
    /// per possible CPU, one after the other. `None`: no such key (or a
    /// key of the wrong size).
    pub fn lookup(&self, key: &[u8]) -> Option<Vec<u8>> {
        if key.len() != self.key_bytes as usize {
            return None;
        }
        let mut value = vec![0u8; self.value_buffer_bytes()];
        let mut attr = attr::MapElem::lookup(self, key, &mut value);
        bpf(&mut attr).ok().map(|_| value)
    }

    /// Put `key → value`; `value` holds every CPU's slot for a per-CPU map.
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        if key.len() != self.key_bytes as usize || value.len() != self.value_buffer_bytes() {
            return Err(Error::Input(format!(
                "a BPF map of {}-byte keys and {}-byte values takes {}+{} bytes, not {}+{}",
                self.key_bytes,
                self.value_bytes,
                self.key_bytes,
                self.value_buffer_bytes(),
                key.len(),
                value.len()
            )));
        }
        let mut attr = attr::MapElem::update(self, key, value);
        bpf(&mut attr)
            .map(drop)
            .map_err(|e| Error::os("filling a BPF map", e))
    }

    /// The ring buffer every record goes through, `bytes` of data (a power
    /// of two, a multiple of the page size).
    pub fn ring_buffer(bytes: u32) -> Result<Map, Error> {
        Map::create(MAP_TYPE_RINGBUF, 0, 0, bytes, "stapsdt_ring")
    }

    /// CPU → perf event descriptor (`bpf_perf_event_output`'s map): the
    /// per-CPU perf buffers that `uprobe_floor -r perfbuf` measures the
    /// ring buffer against. Fill it with [`Map::insert_u32`].
    pub fn perf_event_array(cpus: u32) -> Result<Map, Error> {
        Map::create(
            MAP_TYPE_PERF_EVENT_ARRAY,
            4,
            4,
            cpus.max(1),
            "stapsdt_perfbuf",
        )
    }

    /// `entries` u64 counters per CPU (hits per site, records lost).
    pub fn per_cpu_counters(entries: u32, name: &str) -> Result<Map, Error> {
        Map::create(MAP_TYPE_PERCPU_ARRAY, 4, 8, entries.max(1), name)
    }

    /// A set of process ids (u32 → u32), for a traced process tree.
    pub fn pid_set(entries: u32) -> Result<Map, Error> {
        Map::create(MAP_TYPE_HASH, 4, 4, entries, "stapsdt_pids")
    }

    /// The values of u64 slot `key` of a per-CPU map, summed over the CPUs
    /// (0 for a key out of range).
    pub fn per_cpu_sum(&self, key: u32) -> u64 {
        let Some(value) = self.lookup(&key.to_ne_bytes()) else {
            return 0;
        };
        let stride = (self.value_bytes as usize).next_multiple_of(8);
        value
            .chunks_exact(stride)
            .map(|slot| u64::from_ne_bytes(slot[..8].try_into().expect("8-byte slot")))
            .sum()
    }

    /// Put `key → value` (u32 → u32).
    pub fn insert_u32(&self, key: u32, value: u32) -> Result<(), Error> {
        self.update(&key.to_ne_bytes(), &value.to_ne_bytes())
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// What a program is loaded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramKind {
    /// Run by uprobes ([`Link::uprobes`]); sleepable ones may fault user
    /// pages in (with `uprobe_multi` links only).
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
        let (prog_type, attach, flags) = match kind {
            ProgramKind::UprobeMulti { sleepable } => match attach_mode() {
                AttachMode::UprobeMulti => (
                    PROG_TYPE_KPROBE,
                    ATTACH_UPROBE_MULTI,
                    if sleepable { F_SLEEPABLE } else { 0 },
                ),
                // A program on a perf event has no attach type and may not
                // sleep (sessions lower none that would in this mode).
                AttachMode::PerfEvent => (PROG_TYPE_KPROBE, 0, 0),
            },
            ProgramKind::Tracepoint => (PROG_TYPE_TRACEPOINT, 0, 0),
        };
        let attr = || attr::ProgLoad::new(prog_type, insns, license, flags, name, attach);
        // First without a log (cheaper); again with one to explain a refusal.
        // EPERM is a missing capability; the verifier says EACCES or EINVAL.
        match bpf(&mut attr()) {
            Ok(fd) => return Ok(Program { fd: owned(fd) }),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Err(Error::Privileges),
            Err(_) => {}
        }
        let mut log = vec![0u8; 256 * 1024];
        let retry = bpf(&mut attr().with_log(&mut log));
        match retry {
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

/// `path` for the kernel (no NUL byte inside).
fn c_path(path: &std::path::Path) -> Result<CString, Error> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Input(format!("{}: NUL byte in path", path.display())))
}

/// A `uprobe_multi` link: one program on many offsets of one file, the
/// semaphores raised by the kernel. Closing it unregisters every uprobe
/// (one RCU wait for all of them) and lowers the semaphores.
#[derive(Debug)]
pub struct Link {
    /// The link, or per site its perf event and BPF link.
    _fds: Vec<OwnedFd>,
}

impl Link {
    /// `program` on `sites` of `path` (at their return with `retprobe`),
    /// in process `pid` or system-wide, as [`attach_mode`] says.
    pub fn uprobes(
        program: &Program,
        path: &std::path::Path,
        sites: &[LinkSite],
        retprobe: bool,
        pid: Option<u32>,
    ) -> Result<Link, Error> {
        match attach_mode() {
            AttachMode::UprobeMulti => Link::uprobe_multi(program, path, sites, retprobe, pid),
            AttachMode::PerfEvent => Link::perf_events(program, path, sites, retprobe, pid),
        }
    }

    /// One uprobe perf event per site, each with a BPF link that carries
    /// the site's cookie (`BPF_LINK_CREATE` of a perf event, Linux 5.15).
    fn perf_events(
        program: &Program,
        path: &std::path::Path,
        sites: &[LinkSite],
        retprobe: bool,
        pid: Option<u32>,
    ) -> Result<Link, Error> {
        let pmu = crate::perf::UprobePmu::get()?;
        let c_path = c_path(path)?;
        let mut fds = Vec::with_capacity(2 * sites.len());
        for site in sites {
            let where_ = || format!("{}+{:#x}", path.display(), site.offset);
            let event = crate::perf::PerfEvent::uprobe(
                &pmu,
                &c_path,
                site.offset,
                site.ref_ctr_offset,
                retprobe,
                pid,
            )
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EINVAL) if site.ref_ctr_offset != 0 => Error::Kernel(format!(
                    "{}: the kernel refused the uprobe ({e}); another tracer may hold this \
                     site with a different semaphore offset",
                    where_()
                )),
                _ => Error::os(&format!("opening a uprobe perf event at {}", where_()), e),
            })?;
            let mut attr = attr::PerfEventLink::new(program.fd(), event.raw_fd(), site.cookie);
            let link = bpf(&mut attr).map_err(|e| {
                Error::os(
                    &format!("attaching the BPF program to the uprobe at {}", where_()),
                    e,
                )
            })?;
            fds.push(event.into_fd());
            fds.push(owned(link));
        }
        Ok(Link { _fds: fds })
    }

    /// One `uprobe_multi` link (also used alone by the floor example).
    pub fn uprobe_multi(
        program: &Program,
        path: &std::path::Path,
        sites: &[LinkSite],
        retprobe: bool,
        pid: Option<u32>,
    ) -> Result<Link, Error> {
        let c_path = c_path(path)?;
        let offsets: Vec<u64> = sites.iter().map(|s| s.offset).collect();
        let ref_ctrs: Vec<u64> = sites.iter().map(|s| s.ref_ctr_offset).collect();
        let cookies: Vec<u64> = sites.iter().map(|s| s.cookie).collect();
        let mut attr = attr::UprobeMultiLink::new(
            program.fd(),
            &c_path,
            &offsets,
            &ref_ctrs,
            &cookies,
            if retprobe { F_UPROBE_MULTI_RETURN } else { 0 },
            pid.unwrap_or(0),
        );
        match bpf(&mut attr) {
            Ok(fd) => Ok(Link {
                _fds: vec![owned(fd)],
            }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_to_the_highest_cpu() {
        assert_eq!(count_cpu_list("0\n"), Ok(1));
        assert_eq!(count_cpu_list("0-1\n"), Ok(2));
        assert_eq!(count_cpu_list("0-3,8-11"), Ok(12));
        assert_eq!(count_cpu_list("5,0-1"), Ok(6));
    }

    /// The old reader fell back to 1 CPU here, which let the kernel write
    /// every CPU's slot into a buffer sized for one.
    #[test]
    fn an_unreadable_cpu_list_is_an_error_not_one_cpu() {
        for bad in ["", "\n", "x", "0-", "3-1", "0,,1", "0-1\u{0}"] {
            assert!(count_cpu_list(bad).is_err(), "{bad:?}");
        }
    }
}
