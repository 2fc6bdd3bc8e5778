//! The in-process backend: the same plan as the kernel backend, carried
//! out by an agent preloaded into the traced program (`inproc-agent`),
//! without privileges: no BPF, no uprobes, no tracefs.
//!
//! The tracer creates a memfd before it starts the program (the program
//! inherits it, [`SharedMemory::child_env`]), then writes the plan's cheap
//! sites into it (object by device and inode, 5-byte nop and semaphore by
//! file offset, each argument's fetch) and asks for an attach. The agent
//! patches the sites into calls and writes records to the ring in the
//! memfd, or counts per site; the tracer reads them as
//! [`Event`]s in the kernel backend's shape, so the printers are the same.

use crate::mapping::Mapping;
use crate::plan::{Address, ArgInfo, Fetch, Location, ProbeInfo, ValueKind, X86Reg};
use crate::session::{self, AggRow, Event, KeyValue, SessionOptions, SiteRole, Stats};
use crate::user_agg::UserAggregate;
use crate::value::{integer, Value};
use crate::{Error, Selector};
use inproc_shm::{ring::Ring, ArgOp, Header, Site, ATTACHED, MAX_ARGS, NONE, NO_REG};
use stapsdt_reader::filter::Glob;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The memfd the tracer shares with the traced program: created before
/// the program starts, sized and filled at [`InProcess::start`].
pub struct SharedMemory {
    fd: OwnedFd,
}

impl SharedMemory {
    pub fn new() -> Result<SharedMemory, Error> {
        // SAFETY: a name and flags; the descriptor is ours.
        let fd = unsafe { libc::memfd_create(c"stap-sdt-inproc".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(Error::Input(format!(
                "memfd_create: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: a fresh descriptor, owned from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(SharedMemory { fd })
    }

    /// The descriptor the child must keep open across `exec` (it is
    /// close-on-exec in the tracer).
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// The environment the traced program needs: the agent preloaded (in
    /// front of any `LD_PRELOAD` it had) and the memfd's number.
    pub fn child_env(&self, agent: &std::path::Path) -> Vec<(String, String)> {
        let preload = match std::env::var("LD_PRELOAD") {
            Ok(old) if !old.is_empty() => format!("{}:{old}", agent.display()),
            _ => agent.display().to_string(),
        };
        vec![
            ("LD_PRELOAD".into(), preload),
            (inproc_shm::FD_ENV.into(), self.raw_fd().to_string()),
        ]
    }
}

/// The header at the start of the shared memory.
fn header_of(m: &Mapping) -> &Header {
    assert!(m.len() >= std::mem::size_of::<Header>());
    // SAFETY: the mapping starts with the header (checked to fit) and
    // lives as long as the borrow.
    unsafe { &*(m.as_ptr() as *const Header) }
}

/// The agent's record ring inside the shared memory.
fn ring_of(m: &Mapping) -> Ring<'_> {
    let header = header_of(m);
    Ring {
        header,
        // SAFETY: the ring lies inside the mapping (the layout was written
        // by `start`).
        data: unsafe { m.as_ptr().add(header.ring_at as usize) },
        size: header.ring_bytes,
    }
}

/// An in-process tracing session: planned sites, then records or counts
/// from the agent.
pub struct InProcess {
    shared: SharedMemory,
    mapping: Option<Mapping>,
    sites: Vec<ProbeInfo>,
    roles: Vec<SiteRole>,
    options: SessionOptions,
    /// The traced process (the one the agent runs in).
    pid: u32,
    generation: u32,
    stopped: bool,
    clock_offset_ns: i128,
    /// Sites that are not cheap, named at attach time.
    skipped: Vec<String>,
    /// `--filter`, and aggregations other than counts per probe, made
    /// here from the records.
    user: Option<UserAggregate>,
    /// Each file read once, however many selectors name it.
    objects_read: session::ObjectsRead,
    /// `PROVIDER:NAME` planned in objects loaded later.
    deferred: Vec<(Glob, Glob)>,
    /// Objects (device, inode) planned already.
    known: Vec<(u64, u64)>,
    /// What planning objects loaded later found wrong, for the caller to
    /// show ([`take_warnings`](Self::take_warnings)).
    late_warnings: Vec<String>,
}

/// Room for sites of objects loaded later.
const DEFERRED_SITES: usize = 1024;

/// Bytes of the ring unless `--buffer-pages` says otherwise.
const DEFAULT_RING_BYTES: u64 = 16 << 20;

impl InProcess {
    /// A session for process `pid`, which inherits `shared`. `--count`
    /// without keys or filter counts in the agent; anything else is made
    /// of records.
    pub fn new(
        shared: SharedMemory,
        pid: u32,
        options: SessionOptions,
    ) -> Result<InProcess, Error> {
        if options
            .aggregate
            .as_ref()
            .is_some_and(|a| a.value == crate::AggValue::Latency)
        {
            return Err(Error::Input(
                "--in-process pairs latency in user space: give it START and END records, \
                 not a latency aggregation"
                    .into(),
            ));
        }
        // Counting per probe is done by the agent's stubs; a filter or
        // any other aggregation is evaluated here, over the records.
        let user = (!session::fast_count(&options)
            && (options.aggregate.is_some() || options.filter.is_some()))
        .then(|| UserAggregate::new(options.aggregate.clone(), options.filter.clone()));
        if options.stack_frames > 0 {
            return Err(Error::Input(
                "--in-process does not take user stacks (--stack, ustack)".into(),
            ));
        }
        Ok(InProcess {
            shared,
            mapping: None,
            sites: Vec::new(),
            roles: Vec::new(),
            options,
            pid,
            generation: 0,
            stopped: false,
            clock_offset_ns: session::realtime_minus_monotonic(),
            skipped: Vec::new(),
            user,
            objects_read: Default::default(),
            deferred: Vec::new(),
            late_warnings: Vec::new(),
            known: Vec::new(),
        })
    }

    /// Plan the locations of `selector` (as `Session::attach_as`). A site
    /// that is not a cheap site cannot be patched in process: it is named
    /// in the reports with the advice and left out.
    pub fn attach_as(
        &mut self,
        selector: &Selector,
        role: SiteRole,
    ) -> Result<Vec<session::AttachReport>, Error> {
        if self.mapping.is_some() {
            return Err(Error::Input("attach before start()".into()));
        }
        if !matches!(selector, Selector::Usdt { .. }) {
            return Err(Error::Input(
                "--in-process traces SDT probes at cheap sites, not functions".into(),
            ));
        }
        let request = session::arg_request(&self.options);
        let planned =
            session::selector_sites(selector, Some(self.pid), &request, &mut self.objects_read)?;
        let mut reports = Vec::new();
        for mut site in planned {
            let mut report = session::report(&site);
            report.warnings.retain(|w| !w.starts_with("a cheap site"));
            if let Some(why) = not_patchable(&site) {
                report.warnings.push(why);
                self.skipped.push(site.label.clone());
                // Planned (and named) already: not again when the agent
                // reports the object.
                if let Ok(meta) = std::fs::metadata(&site.path) {
                    self.known.push((meta.dev(), meta.ino()));
                }
                reports.push(report);
                continue;
            }
            site.index = self.sites.len();
            self.sites.push(site);
            self.roles.push(role);
            reports.push(report);
        }
        if self.sites.is_empty() && self.deferred.is_empty() {
            return Err(Error::Input(format!(
                "no cheap site to patch in process ({} site{} of other shapes: \
                 rebuild with STAP_SDT_CHEAP_SITE or use the kernel backend)",
                self.skipped.len(),
                if self.skipped.len() == 1 { "" } else { "s" }
            )));
        }
        Ok(reports)
    }

    /// Name the traced process when it was started after [`start`]
    /// (a program spawned by the caller with [`SharedMemory::child_env`]).
    ///
    /// [`start`]: Self::start
    pub fn set_pid(&mut self, pid: u32) {
        self.pid = pid;
    }

    /// What is added to a record's CLOCK_MONOTONIC time to make an
    /// event's wall-clock `time_ns`.
    pub fn clock_offset_ns(&self) -> i128 {
        self.clock_offset_ns
    }

    pub fn probes(&self) -> impl Iterator<Item = &ProbeInfo> {
        self.sites.iter()
    }

    pub fn roles(&self) -> &[SiteRole] {
        &self.roles
    }

    /// Write the plan into the shared memory and ask the agent to attach
    /// (it does so at load, before the program's first instruction, when
    /// the program has not started yet).
    pub fn start(&mut self) -> Result<(), Error> {
        if self.sites.is_empty() && self.deferred.is_empty() {
            return Err(Error::Input("nothing attached".into()));
        }
        let ring_bytes = match self.options.ring_pages {
            0 => DEFAULT_RING_BYTES,
            pages => (pages as u64 * 4096).next_power_of_two(),
        };
        let capacity = self.sites.len()
            + if self.deferred.is_empty() {
                0
            } else {
                DEFERRED_SITES
            };
        let (sites_at, counts_at, ring_at, total) = inproc_shm::layout(capacity, ring_bytes);
        let string_bytes = self.string_bytes();
        let encoded = self
            .sites
            .iter()
            .map(|site| {
                let meta = std::fs::metadata(&site.path)
                    .map_err(|e| Error::Input(format!("{}: {e}", site.path.display())))?;
                Ok(encode_site(site, meta.dev(), meta.ino(), string_bytes))
            })
            .collect::<Result<Vec<Site>, Error>>()?;
        self.known
            .extend(encoded.iter().map(|site| (site.dev, site.ino)));
        // SAFETY: sizing our own memfd.
        if unsafe { libc::ftruncate(self.shared.raw_fd(), total as i64) } != 0 {
            return Err(Error::Input(format!(
                "sizing the shared memory: {}",
                std::io::Error::last_os_error()
            )));
        }
        let mapping =
            Mapping::populated(self.shared.raw_fd(), total as usize, "the shared memory")?;
        // SAFETY: the fresh mapping is zeroed and large enough for the
        // header and `encoded.len()` sites at `sites_at`; no agent maps it
        // before the program is released, after this.
        unsafe {
            let header = &mut *(mapping.as_ptr() as *mut Header);
            header.magic = inproc_shm::MAGIC;
            header.version = inproc_shm::VERSION;
            header.flags = if session::fast_count(&self.options) {
                inproc_shm::COUNT_ONLY
            } else {
                0
            } | if self.deferred.is_empty() {
                0
            } else {
                inproc_shm::DEFERRED
            };
            header.site_count = AtomicU32::new(encoded.len() as u32);
            header.capacity = capacity as u32;
            header.string_bytes = string_bytes as u32;
            header.sites_at = sites_at;
            header.counts_at = counts_at;
            header.ring_at = ring_at;
            header.ring_bytes = ring_bytes;
            header.tracer_pid = std::process::id();
            std::ptr::copy_nonoverlapping(
                encoded.as_ptr(),
                mapping.as_ptr().add(sites_at as usize) as *mut Site,
                encoded.len(),
            );
        }
        self.mapping = Some(mapping);
        self.request(true);
        Ok(())
    }

    fn header(&self) -> Option<&Header> {
        self.mapping.as_ref().map(header_of)
    }

    /// Bytes of a string argument at most, with its NUL.
    fn string_bytes(&self) -> usize {
        match self.options.string_bytes {
            0 => 512,
            n => n.clamp(2, 4096),
        }
    }

    /// Also plan `PROVIDER:NAME` in the objects the program loads later
    /// (a library it `dlopen`s, probes it defines at run time): the agent
    /// reports each new object before patching it, and waits for its sites.
    pub fn attach_deferred(&mut self, provider: Glob, name: Glob) {
        self.deferred.push((provider, name));
    }

    /// Plan the object the agent reports, if it has asked: add its sites
    /// (maybe none) to the shared memory and answer.
    fn serve_mailbox(&mut self) {
        let Some(header) = self.header() else {
            return;
        };
        let request = header.object_request.load(Ordering::Acquire);
        if request == header.object_answer.load(Ordering::Acquire) {
            return;
        }
        let dev = header.object_dev.load(Ordering::Relaxed);
        let ino = header.object_ino.load(Ordering::Relaxed);
        let path: Vec<u8> = header
            .object_path
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .take_while(|&b| b != 0)
            .collect();
        let path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&path));
        if !self.known.contains(&(dev, ino)) {
            self.known.push((dev, ino));
            self.plan_later(&path, dev, ino);
        }
        let Some(header) = self.header() else {
            return;
        };
        header.object_answer.store(request, Ordering::Release);
        inproc_shm::futex::wake(&header.object_answer);
    }

    /// The deferred selectors' sites in the object at `path` (device and
    /// inode as the agent saw them), added after the planned ones. An
    /// object that cannot be read, and sites beyond the room, are named.
    fn plan_later(&mut self, path: &Path, dev: u64, ino: u64) {
        let Ok(objects) = stapsdt_reader::read_path(path) else {
            return;
        };
        let objects: Vec<_> = objects
            .into_iter()
            .map(|mut o| {
                o.path = path.display().to_string();
                o
            })
            .collect();
        let request = session::arg_request(&self.options);
        let deferred = &self.deferred;
        let found = crate::plan::sdt_sites(
            &objects,
            |p, n| {
                deferred
                    .iter()
                    .any(|(gp, gn)| gp.matches(p) && gn.matches(n))
            },
            &request,
        );
        let string_bytes = self.string_bytes();
        let Some(m) = self.mapping.as_ref() else {
            return;
        };
        let header = header_of(m);
        for mut site in found {
            let mut report = session::report(&site);
            report.warnings.retain(|w| !w.starts_with("a cheap site"));
            let at = format!(
                "{} at {}+0x{:x}",
                site.label,
                site.path.display(),
                site.offset
            );
            if let Some(why) = not_patchable(&site) {
                self.late_warnings.push(format!("{at}: {why}"));
                continue;
            }
            let index = header.site_count.load(Ordering::Relaxed) as usize;
            if index >= header.capacity as usize {
                self.late_warnings.push(format!(
                    "{} at {}: more than {DEFERRED_SITES} sites loaded later; not traced",
                    site.label,
                    path.display()
                ));
                break;
            }
            self.late_warnings
                .extend(report.warnings.iter().map(|w| format!("{at}: {w}")));
            let encoded = encode_site(&site, dev, ino, string_bytes);
            // SAFETY: slot `index` < capacity lies inside the mapping, and no
            // agent reads it before `site_count` is raised past it below.
            unsafe {
                (m.as_ptr().add(header.sites_at as usize) as *mut Site)
                    .add(index)
                    .write(encoded)
            };
            header.site_count.store(index as u32 + 1, Ordering::Release);
            site.index = self.sites.len();
            self.sites.push(site);
            self.roles.push(SiteRole::Hit);
        }
    }

    /// Ask the agent to attach or detach; returns the request to wait for.
    fn request(&mut self, attach: bool) -> u32 {
        self.generation += 1;
        let value = self.generation << 1 | if attach { ATTACHED } else { 0 };
        if let Some(header) = self.header() {
            header.control.store(value, Ordering::Release);
            inproc_shm::futex::wake(&header.control);
        }
        value
    }

    /// Wait until the agent has applied `request` (or the process is gone,
    /// or `limit` passed); whether it did.
    fn acknowledged(&mut self, request: u32, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            // The agent may be waiting for an object's sites before it can
            // answer.
            self.serve_mailbox();
            let Some(header) = self.header() else {
                return false;
            };
            let state = header.state.load(Ordering::Acquire);
            if state == request {
                return true;
            }
            if Instant::now() >= deadline || !alive(self.pid) {
                return false;
            }
            inproc_shm::futex::wait(&header.state, state, Duration::from_millis(20));
        }
    }

    /// Patch the sites now, in the running program; waits for the agent.
    pub fn attach_now(&mut self, limit: Duration) -> Result<(), Error> {
        let request = self.request(true);
        self.wait_applied(request, limit)
    }

    /// Restore the sites now; waits for the agent.
    pub fn detach_now(&mut self, limit: Duration) -> Result<(), Error> {
        let request = self.request(false);
        self.wait_applied(request, limit)
    }

    fn wait_applied(&mut self, request: u32, limit: Duration) -> Result<(), Error> {
        if !self.acknowledged(request, limit) {
            return Err(Error::Input(format!(
                "the agent in process {} did not answer within {limit:?} (is the program \
                 running with the agent preloaded?)",
                self.pid
            )));
        }
        match self.agent_error() {
            Some(why) => Err(Error::Input(why)),
            None => Ok(()),
        }
    }

    /// What the agent could not do, if anything.
    /// What was found wrong with sites of objects loaded after the start
    /// (not cheap, no room, arguments that cannot be read), once each.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.late_warnings)
    }

    pub fn agent_error(&self) -> Option<String> {
        let code = self.header()?.error.load(Ordering::Relaxed);
        (code != 0).then(|| format!("in-process agent: {}", inproc_shm::error_text(code)))
    }

    /// Sites the agent has patched now.
    pub fn patched(&self) -> u32 {
        self.header()
            .map_or(0, |h| h.patched.load(Ordering::Relaxed))
    }

    /// Hits taken on an int3 while a site was being patched (reported at
    /// each acknowledgement).
    pub fn trapped(&self) -> u32 {
        self.header()
            .map_or(0, |h| h.trapped.load(Ordering::Relaxed))
    }

    /// Wait until the agent has loaded in the started program (and applied
    /// the first request), up to `limit`; whether it did.
    pub fn wait_loaded(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            self.serve_mailbox();
            if self.header().is_some_and(|h| {
                h.agent_pid.load(Ordering::Acquire) != 0 && h.state.load(Ordering::Acquire) != 0
            }) {
                return true;
            }
            if !alive(self.pid) {
                return self.agent_loaded();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    /// Whether the agent loaded in the process (it claims the memory).
    pub fn agent_loaded(&self) -> bool {
        self.header()
            .is_some_and(|h| h.agent_pid.load(Ordering::Acquire) != 0)
    }

    /// Wait up to `timeout_ms` (at most 5 ms at a time: the agent does
    /// not wake the reader) and hand each record to `handler` as an event.
    pub fn poll(&mut self, timeout_ms: i32, mut handler: impl FnMut(&Event)) -> usize {
        if !self.stopped {
            std::thread::sleep(Duration::from_millis(timeout_ms.clamp(0, 5) as u64));
        }
        self.serve_mailbox();
        let Some(ring) = self.mapping.as_ref().map(ring_of) else {
            return 0;
        };
        let sites = &self.sites;
        let offset = self.clock_offset_ns;
        let mut user = self.user.as_mut();
        let mut args = Vec::with_capacity(MAX_ARGS);
        ring.drain(|r| {
            let Some(site) = sites.get(u32_at(r, inproc_shm::record::SITE) as usize) else {
                return;
            };
            decode_args(site, r, &mut args);
            let comm = &r[inproc_shm::record::COMM..inproc_shm::record::COMM + 16];
            let comm = &comm[..comm.iter().position(|&b| b == 0).unwrap_or(16)];
            let event = Event {
                time_ns: (i128::from(u64_at(r, inproc_shm::record::TIME)) + offset).max(0) as u128,
                pid: u32_at(r, inproc_shm::record::PID),
                tid: u32_at(r, inproc_shm::record::TID),
                cpu: u32_at(r, inproc_shm::record::CPU),
                comm: std::str::from_utf8(comm).unwrap_or("?"),
                probe: site,
                args: std::mem::take(&mut args),
                ustack: Vec::new(),
            };
            match &mut user {
                Some(u) => {
                    if u.keeps(&event) {
                        if u.aggregating() {
                            u.add(&event);
                        } else {
                            handler(&event);
                        }
                    }
                }
                None => handler(&event),
            }
            args = event.args;
        })
    }

    /// Detach (the agent restores every site and lowers the semaphores);
    /// a `poll` after this delivers what is left.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if self.mapping.is_some() {
            let request = self.request(false);
            self.acknowledged(request, Duration::from_secs(2));
        }
    }

    /// Records that did not fit in the ring (counted by the agent).
    pub fn lost(&self) -> u64 {
        self.header().map_or(0, |h| h.lost.load(Ordering::Relaxed))
    }

    /// Keys are not aggregated in process.
    pub fn lost_keys(&self) -> u64 {
        0
    }

    /// Hits per attached location (counting mode), in attach order.
    pub fn counts(&self) -> Vec<(&ProbeInfo, u64)> {
        self.sites
            .iter()
            .map(|s| (s, self.count(s.index)))
            .collect()
    }

    fn count(&self, site: usize) -> u64 {
        let (Some(header), Some(m)) = (self.header(), self.mapping.as_ref()) else {
            return 0;
        };
        let at = header.counts_at as usize + site * inproc_shm::COUNT_STRIDE as usize;
        m.word(at).load(Ordering::Relaxed)
    }

    /// Counts per probe label, as `Session::aggregates` gives them (or
    /// the aggregation made from the records).
    pub fn aggregates(&self) -> Vec<AggRow> {
        if let Some(user) = self.user.as_ref().filter(|u| u.aggregating()) {
            return user.rows();
        }
        let mut rows: Vec<AggRow> = Vec::new();
        for (site, n) in self.counts() {
            let key = vec![KeyValue::Probe(site.label.clone())];
            match rows.iter_mut().find(|r| r.key == key) {
                Some(row) => row.stats.count += n,
                None => rows.push(AggRow {
                    key,
                    stats: Stats {
                        count: n,
                        ..Stats::default()
                    },
                }),
            }
        }
        rows
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Why a planned site cannot be patched in process, with the advice.
fn not_patchable(site: &ProbeInfo) -> Option<String> {
    // The reader's cheap site excludes a 5-byte nop across a page boundary.
    if !site.cheap_site {
        return Some(
            "not a cheap site (the 1-byte NOP of <sys/sdt.h>, or a 5-byte nop across a \
             page boundary): it cannot be patched in process; rebuild with `#define STAP_SDT_CHEAP_SITE 1` (sdt-macros: feature \
             cheap-sites) or trace it with the kernel backend (without --in-process)"
                .into(),
        );
    }
    None
}

/// The register's slot in the agent's frame.
fn frame_reg(reg: X86Reg) -> u8 {
    use inproc_shm::frame;
    match reg {
        X86Reg::Rax => frame::RAX,
        X86Reg::Rdx => frame::RDX,
        X86Reg::Rcx => frame::RCX,
        X86Reg::Rbx => frame::RBX,
        X86Reg::Rsi => frame::RSI,
        X86Reg::Rdi => frame::RDI,
        X86Reg::Rbp => frame::RBP,
        X86Reg::Rsp => frame::RSP,
        X86Reg::R8 => frame::R8,
        X86Reg::R9 => frame::R9,
        X86Reg::R10 => frame::R10,
        X86Reg::R11 => frame::R11,
        X86Reg::R12 => frame::R12,
        X86Reg::R13 => frame::R13,
        X86Reg::R14 => frame::R14,
        X86Reg::R15 => frame::R15,
        X86Reg::Rip => frame::RIP,
    }
}

/// A planned site as the agent reads it: in the object of this device and
/// inode, its records at most as large as strings of `string_bytes` make
/// them.
fn encode_site(site: &ProbeInfo, dev: u64, ino: u64, string_bytes: usize) -> Site {
    let mut encoded = Site {
        dev,
        ino,
        offset: site.offset,
        semaphore: site.semaphore_offset.unwrap_or(NONE),
        arg_count: site.args.len().min(MAX_ARGS) as u32,
        ..Site::default()
    };
    for (op, arg) in encoded.args.iter_mut().zip(&site.args) {
        *op = encode_arg(arg);
    }
    encoded.record_bytes =
        inproc_shm::record_bytes(&encoded.args[..encoded.arg_count as usize], string_bytes);
    encoded
}

fn encode_arg(arg: &ArgInfo) -> ArgOp {
    let mut op = ArgOp {
        reg: NO_REG,
        index: NO_REG,
        what: match arg.kind {
            ValueKind::Str => inproc_shm::WHAT_STR,
            ValueKind::StrN { .. } => inproc_shm::WHAT_STRN,
            _ => inproc_shm::WHAT_INT,
        },
        len_arg: match arg.kind {
            ValueKind::StrN { len_arg } => len_arg as u8,
            _ => 0,
        },
        ..ArgOp::default()
    };
    match &arg.fetch {
        Fetch::At(Location::Register { reg, shift }) => {
            op.how = inproc_shm::HOW_REGISTER;
            op.reg = frame_reg(reg.reg);
            op.low32 = u8::from(reg.low32);
            op.reg_shift = *shift;
        }
        Fetch::At(Location::Memory { address, bytes }) => {
            let Address {
                base,
                index,
                disp,
                wrap32: _,
            } = address;
            op.how = inproc_shm::HOW_MEMORY;
            op.bytes = *bytes;
            op.disp = *disp;
            if let Some(b) = base {
                op.reg = frame_reg(b.reg);
                op.low32 = u8::from(b.low32);
            }
            if let Some((i, scale)) = index {
                op.index = frame_reg(i.reg);
                op.index_low32 = u8::from(i.low32);
                op.scale = *scale;
            }
        }
        Fetch::At(Location::Pointer(p)) => {
            op.how = inproc_shm::HOW_POINTER;
            op.disp = *p;
        }
        Fetch::Constant(v) => {
            op.how = inproc_shm::HOW_CONSTANT;
            op.disp = *v;
        }
        Fetch::NotRequested | Fetch::Unavailable(_) => op.how = inproc_shm::HOW_SKIP,
    }
    op
}

fn u32_at(r: &[u8], at: usize) -> u32 {
    r.get(at..at + 4)
        .map_or(0, |b| u32::from_ne_bytes(b.try_into().unwrap_or([0; 4])))
}

fn u64_at(r: &[u8], at: usize) -> u64 {
    r.get(at..at + 8)
        .map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
}

/// The arguments of a record, in the order the agent wrote them.
fn decode_args(site: &ProbeInfo, r: &[u8], out: &mut Vec<Value>) {
    out.clear();
    let faults = u32_at(r, inproc_shm::record::FAULTS);
    let mut at = inproc_shm::record::ARGS;
    for (i, arg) in site.args.iter().enumerate().take(MAX_ARGS) {
        let value = match &arg.fetch {
            Fetch::Constant(v) => match arg.kind {
                ValueKind::Int { bytes, signed } => integer(*v as u64, bytes, signed),
                _ => integer(*v as u64, 8, true),
            },
            Fetch::NotRequested | Fetch::Unavailable(_) => Value::Unavailable,
            Fetch::At(_) => {
                let faulted = faults >> i & 1 == 1;
                match arg.kind {
                    ValueKind::Str | ValueKind::StrN { .. } => {
                        let len = u32_at(r, at) as usize;
                        let text = r.get(at + 4..at + 4 + len);
                        at += (4 + len).next_multiple_of(8);
                        match text {
                            _ if faulted => Value::Fault,
                            Some(t) => Value::Str(String::from_utf8_lossy(t).into_owned()),
                            None => Value::Unavailable,
                        }
                    }
                    ValueKind::Int { bytes, signed } => {
                        let raw = u64_at(r, at);
                        at += 8;
                        if faulted {
                            Value::Fault
                        } else {
                            integer(raw, bytes, signed)
                        }
                    }
                    ValueKind::Float { bytes } => {
                        let raw = u64_at(r, at);
                        at += 8;
                        match bytes {
                            _ if faulted => Value::Fault,
                            4 => Value::Float(f64::from(f32::from_bits(raw as u32))),
                            _ => Value::Float(f64::from_bits(raw)),
                        }
                    }
                }
            }
        };
        out.push(value);
    }
}
