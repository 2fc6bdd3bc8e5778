//! The public API: a session attaches selectors to a target, then delivers
//! events (or counts) until it is dropped.

use crate::bpf::{self, program, sys as bpf_sys, BpfArg};
use crate::fetchargs::{self, Fetch, Site, ValueKind};
use crate::format::Field;
use crate::perf::{self, PerfEvent, Ring, Scope};
use crate::tracefs::{Tracefs, UprobeDefinition, UprobeEvent};
use crate::value::{self, Value};
use crate::{resolve, Error, Selector};
use stapsdt_reader::cheap_site;
use stapsdt_reader::Object;
use std::collections::HashSet;
use std::path::PathBuf;

/// Whose hits are seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Every process that maps the probed object, also those started later.
    AllProcesses,
    /// This process, its threads, and the threads and processes it creates
    /// after the session starts.
    Process(u32),
}

/// How a session fetches and delivers.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Arguments (0-based) to fetch as the NUL-terminated strings they point to.
    pub strings: Vec<usize>,
    /// Fetch only these arguments (0-based); `None` fetches all. The others
    /// are delivered as [`Value::Unavailable`]. Fewer fetches, cheaper hits.
    pub only_args: Option<Vec<usize>>,
    /// Count hits only, in the kernel: no records, no fetches. Uses tracefs
    /// events, not anonymous uprobe PMU events: a PMU event per CPU is one
    /// uprobe consumer per CPU, each run on every hit (measured 1.28x the
    /// cost of one consumer), and inherited PMU uprobes make the target's
    /// fork() fail with EFAULT (the kernel re-reads the path from the
    /// forking process's memory).
    pub count_only: bool,
    /// Data pages of each per-CPU ring buffer (a power of two); 0 means 1024.
    pub ring_pages: usize,
    /// Fetch with uprobe fetchargs only: arguments they cannot express
    /// (which a BPF program would fetch) are delivered as unavailable.
    pub no_bpf: bool,
}

/// One argument of a probe and how it is fetched.
#[derive(Debug, Clone)]
pub struct ArgInfo {
    /// The spec as written in the note (`-4@%eax`), or the register for functions.
    pub raw: String,
    pub fetch: Fetch,
    signed: bool,
    bytes: u8,
    /// Uprobe fetchargs cannot express it: the probe's arguments are all
    /// fetched by a BPF program.
    needs_bpf: bool,
    /// For an argument fetched by BPF: its fetch by uprobe fetchargs alone,
    /// used when BPF is refused or not wanted.
    fallback: Option<Fetch>,
}

/// One attached probe location.
#[derive(Debug, Clone)]
pub struct ProbeInfo {
    /// Position in the session's probes (for per-probe tables of callers).
    pub index: usize,
    /// `provider:name` for SDT probes, `SYMBOL` or `SYMBOL%return` for functions.
    pub label: String,
    pub path: PathBuf,
    /// File offset of the probed instruction.
    pub offset: u64,
    /// File offset of the semaphore the kernel raises while attached.
    pub semaphore_offset: Option<u64>,
    /// Attached at a cheap site's 5-byte nop rather than at the note's pc.
    pub cheap_site: bool,
    pub retprobe: bool,
    pub args: Vec<ArgInfo>,
}

impl ProbeInfo {
    fn uses_bpf(&self) -> bool {
        self.args.iter().any(|a| matches!(a.fetch, Fetch::Bpf(_)))
    }

    /// Back to uprobe fetchargs alone; what needed BPF becomes
    /// unavailable, saying `why`.
    fn without_bpf(&mut self, why: &str) {
        for arg in &mut self.args {
            let Some(fallback) = arg.fallback.take() else {
                continue;
            };
            arg.fetch = match fallback {
                Fetch::Unsupported(reason) => Fetch::Unsupported(format!("{reason} ({why})")),
                fetch => fetch,
            };
            arg.needs_bpf = false;
        }
    }
}

/// What attaching one location found worth saying (unfetchable arguments).
#[derive(Debug, Clone)]
pub struct AttachReport {
    pub label: String,
    pub path: PathBuf,
    pub offset: u64,
    pub warnings: Vec<String>,
}

/// One hit.
#[derive(Debug)]
pub struct Event<'a> {
    /// Wall-clock time of the hit, nanoseconds since the epoch.
    pub time_ns: u128,
    pub pid: u32,
    pub tid: u32,
    pub cpu: u32,
    /// The thread's command name at the hit (fetched by the kernel).
    pub comm: &'a str,
    pub probe: &'a ProbeInfo,
    pub args: Vec<Value>,
}

struct Attached {
    info: ProbeInfo,
    /// The program that builds this probe's records, if it needs one.
    /// Declared (so dropped) before `_event`: tracefs refuses to remove an
    /// event while a perf event (here the program's host) is open on it.
    bpf: Option<BpfProbe>,
    /// Held for its Drop, which removes it from tracefs.
    _event: UprobeEvent,
    /// Its tracepoint id.
    id: u64,
    fields: Vec<Option<Field>>,
    comm: Option<Field>,
}

struct BpfProbe {
    program: bpf_sys::Program,
    /// The per-CPU buffer the program builds records in; it holds a
    /// reference of its own, kept here to say who owns it.
    _scratch: bpf_sys::Map,
    /// The perf event the program is attached through: once for the
    /// tracefs event, it then runs on every hit of any of its perf events.
    /// A dedicated event that is never inherited: an inherited copy of the
    /// event holding the program detaches it from the tracepoint when the
    /// child that inherited it exits (seen: a traced shell's `echo` ending
    /// left later hits unfetched).
    host: Option<PerfEvent>,
    /// Bit i: argument i's memory could not be read at the hit.
    faults: Field,
}

/// An attachment session. Dropping it closes every perf event (which
/// unregisters the uprobes and lowers the semaphores) and then removes its
/// tracefs events: the field order below is the release order.
pub struct Session {
    rings: Vec<Ring>,
    followers: Vec<PerfEvent>,
    counters: Vec<(usize, PerfEvent)>,
    probes: Vec<Attached>,
    /// The perf event array the BPF programs write records to (one
    /// bpf-output event per CPU, whose rings are in `rings`); dropped after
    /// the programs that use it.
    bpf_output: Option<bpf_sys::Map>,
    /// Hits seen by the programs (for an exact count of lost records).
    bpf_hits: Option<bpf_sys::Map>,
    bpf_output_cpus: HashSet<i32>,
    tracefs: Tracefs,
    group: String,
    target: Target,
    options: SessionOptions,
    /// Probe index + 1 by tracepoint id (the u16 at the start of every
    /// record; 0: not ours): a lookup per record, so no hashing.
    by_id: Vec<u32>,
    /// PERF_RECORD_LOST totals seen so far.
    lost: u64,
    /// Records handed to handlers.
    delivered: u64,
    stopped: bool,
    clock_offset_ns: i128,
    traced_tids: HashSet<i32>,
    started: bool,
    stop_attaching: Option<fn() -> bool>,
}

impl Session {
    /// Open a session: finds (or mounts) tracefs and removes the events of
    /// tracers that died without cleaning up.
    pub fn new(target: Target, options: SessionOptions) -> Result<Session, Error> {
        if let Target::Process(pid) = target {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return Err(Error::Input(format!("pid {pid}: no such process")));
            }
        }
        let tracefs = Tracefs::open()?;
        tracefs.remove_stale_groups();
        raise_fd_limit();
        Ok(Session {
            rings: Vec::new(),
            followers: Vec::new(),
            counters: Vec::new(),
            probes: Vec::new(),
            bpf_output: None,
            bpf_hits: None,
            bpf_output_cpus: HashSet::new(),
            tracefs,
            group: Tracefs::new_group(),
            target,
            options,
            by_id: Vec::new(),
            lost: 0,
            delivered: 0,
            stopped: false,
            clock_offset_ns: realtime_minus_monotonic(),
            traced_tids: HashSet::new(),
            started: false,
            stop_attaching: None,
        })
    }

    fn pid(&self) -> Option<u32> {
        match self.target {
            Target::Process(pid) => Some(pid),
            Target::AllProcesses => None,
        }
    }

    /// Have [`attach`](Self::attach) check `stop` before each location and
    /// give up when it says so: attaching hundreds of locations takes the
    /// kernel tens of seconds, and a Ctrl-C should not wait for them all.
    /// What was attached is released when the session is dropped.
    pub fn stop_attaching_when(&mut self, stop: fn() -> bool) {
        self.stop_attaching = Some(stop);
    }

    /// Attach every location `selector` designates. Fails when nothing matches.
    pub fn attach(&mut self, selector: &Selector) -> Result<Vec<AttachReport>, Error> {
        if self.started {
            return Err(Error::Input("attach before start()".into()));
        }
        let probes = match selector {
            Selector::Usdt {
                path,
                provider,
                name,
            } => {
                let objects = match path {
                    Some(p) => {
                        let file = resolve::object_path(p, self.pid())?;
                        stapsdt_reader::read_path(&file)?
                            .into_iter()
                            .map(|mut o| {
                                o.path = file.display().to_string();
                                o
                            })
                            .collect()
                    }
                    None => match self.pid() {
                        Some(pid) => {
                            stapsdt_reader::process::read_process(pid, &Default::default())?.0
                        }
                        None => {
                            return Err(Error::Input(format!(
                                "`{}:{}`: name the object (PATH:PROVIDER:NAME), or give a process",
                                provider.as_str(),
                                name.as_str()
                            )))
                        }
                    },
                };
                let found =
                    self.sdt_probes(&objects, |p, n| provider.matches(p) && name.matches(n));
                if found.is_empty() {
                    return Err(Error::Input(format!(
                        "no SDT probe matches `{}:{}` in {}",
                        provider.as_str(),
                        name.as_str(),
                        path.as_deref().unwrap_or("the process's objects")
                    )));
                }
                found
            }
            Selector::Function {
                path,
                symbol,
                retprobe,
            } => {
                let file = resolve::object_path(path, self.pid())?;
                let symbols = stapsdt_reader::function_symbols(&file, symbol)?;
                if symbols.is_empty() {
                    return Err(Error::Input(format!(
                        "{}: no function symbol matches `{}` in .symtab or .dynsym",
                        file.display(),
                        symbol.as_str()
                    )));
                }
                symbols
                    .into_iter()
                    .map(|s| {
                        let use_bpf = !self.options.no_bpf && !self.options.count_only;
                        function_probe(&file, &s, *retprobe, use_bpf)
                    })
                    .collect()
            }
        };
        let mut reports = Vec::new();
        let of = probes.len();
        for info in probes {
            if self.stop_attaching.is_some_and(|stop| stop()) {
                return Err(Error::Interrupted {
                    attached: reports.len(),
                    of,
                });
            }
            reports.push(self.add(info)?);
        }
        Ok(reports)
    }

    fn sdt_probes(
        &self,
        objects: &[Object],
        wanted: impl Fn(&str, &str) -> bool,
    ) -> Vec<ProbeInfo> {
        let mut out = Vec::new();
        for object in objects {
            let fixed = object.elf_type == "exec";
            // Only x86-64 objects can hold cheap sites; their code is read
            // here, at attach time, never while listing.
            let code = (object.arch == stapsdt_reader::Arch::X86_64)
                .then(|| std::fs::File::open(&object.path).ok())
                .flatten();
            for probe in object
                .probes
                .iter()
                .filter(|p| wanted(&p.provider, &p.name))
            {
                for location in &probe.locations {
                    let Some(file_offset) = location.file_offset else {
                        continue;
                    };
                    let cheap = code.as_ref().is_some_and(|file| {
                        cheap_site::file_has_cheap_site(file, file_offset)
                            && !location.args.iter().any(reads_rsp_itself)
                    });
                    let site = Site {
                        arch: object.arch,
                        address: location.address,
                        file_offset,
                        fixed_addresses: fixed,
                        rsp_adjust: if cheap { cheap_site::RSP_ADJUST } else { 0 },
                        ip_adjust: if cheap {
                            cheap_site::NOP5_OFFSET as i64
                        } else {
                            0
                        },
                    };
                    let mut args: Vec<ArgInfo> = location
                        .args
                        .iter()
                        .enumerate()
                        .map(|(i, arg)| {
                            let fetch = if self.wanted_arg(i) {
                                fetchargs::fetch(arg, &site, self.options.strings.contains(&i))
                            } else {
                                Fetch::Unsupported("not requested".into())
                            };
                            let needs_bpf = matches!(fetch, Fetch::Bpf(_));
                            ArgInfo {
                                raw: arg.raw.clone(),
                                needs_bpf,
                                fallback: needs_bpf.then(|| {
                                    let as_string = self.options.strings.contains(&i);
                                    fetchargs::kernel_fetch(arg, &site, as_string)
                                }),
                                fetch,
                                signed: arg.signed,
                                bytes: arg.size.clamp(1, 8),
                            }
                        })
                        .collect();
                    self.prefer_bpf(&location.args, &site, &mut args);
                    let mut info = ProbeInfo {
                        index: 0,
                        label: format!("{}:{}", probe.provider, probe.name),
                        path: PathBuf::from(&object.path),
                        offset: if cheap {
                            file_offset + cheap_site::NOP5_OFFSET
                        } else {
                            file_offset
                        },
                        semaphore_offset: location.semaphore.as_ref().and_then(|s| s.file_offset),
                        retprobe: false,
                        cheap_site: cheap,
                        args,
                    };
                    if self.options.no_bpf {
                        info.without_bpf("BPF not used: --no-bpf");
                    }
                    out.push(info);
                }
            }
        }
        out
    }

    /// Switch a location's arguments to a BPF program where that is
    /// needed or better. A program fetches all of a probe's arguments: where
    /// fetchargs cannot express one, and by default where no argument is a
    /// string: then it is cheaper per hit (1471 against 1827 ns, see
    /// docs/trace.md). Strings stay with fetchargs, whose copy may fault a
    /// page in (a string literal the program never touched); a program's
    /// cannot, and would show <fault>. What fetchargs would do is kept as
    /// each argument's fallback.
    fn prefer_bpf(&self, operands: &[stapsdt_reader::Arg], site: &Site, args: &mut [ArgInfo]) {
        let needed = args.iter().any(|a| a.needs_bpf);
        let has_string = args.iter().any(|a| {
            matches!(
                a.fetch,
                Fetch::Kernel {
                    kind: ValueKind::Str,
                    ..
                }
            )
        });
        if !needed && (self.options.count_only || has_string) {
            return;
        }
        let located: Vec<Option<Result<BpfArg, String>>> = operands
            .iter()
            .zip(args.iter())
            .enumerate()
            .map(|(i, (operand, info))| {
                matches!(info.fetch, Fetch::Kernel { .. })
                    .then(|| bpf::locate(operand, site, self.options.strings.contains(&i)))
            })
            .collect();
        if !needed && !located.iter().flatten().all(Result::is_ok) {
            return;
        }
        for (info, located) in args.iter_mut().zip(located) {
            let Some(located) = located else { continue };
            let fetch = located.map_or_else(
                |why| Fetch::Unsupported(format!("`{}`: {why}", info.raw)),
                Fetch::Bpf,
            );
            info.fallback = Some(std::mem::replace(&mut info.fetch, fetch));
        }
    }

    fn wanted_arg(&self, index: usize) -> bool {
        self.options
            .only_args
            .as_ref()
            .is_none_or(|only| only.contains(&index))
    }

    fn add(&mut self, mut info: ProbeInfo) -> Result<AttachReport, Error> {
        info.index = self.probes.len();
        let path_text = info.path.display().to_string();
        if path_text.contains(char::is_whitespace) {
            return Err(Error::Unsupported(format!(
                "{path_text}: uprobe_events cannot name a path containing white space"
            )));
        }
        let by_bpf: Vec<String> = info
            .args
            .iter()
            .enumerate()
            .filter(|(_, a)| a.needs_bpf)
            .map(|(i, a)| format!("arg{i} `{}`", a.raw))
            .collect();
        let mut attached = None;
        // Counting fetches nothing: a bare uprobe is the cheapest hit.
        if info.uses_bpf() && !self.options.count_only {
            match self.attach_with_bpf(&info) {
                Ok(with_bpf) => attached = Some(with_bpf),
                // Without the program the other arguments are still worth having.
                Err(e) => info.without_bpf(&format!("the BPF program was refused: {e}")),
            }
        }
        let mut warnings: Vec<String> = info
            .args
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match &a.fetch {
                Fetch::Unsupported(why) if why != "not requested" => {
                    Some(format!("arg{i} cannot be fetched by the kernel: {why}"))
                }
                _ => None,
            })
            .collect();
        if attached.is_some() && !by_bpf.is_empty() {
            warnings.push(format!(
                "arguments fetched by a BPF program: uprobe fetchargs cannot express {}",
                by_bpf.join(", ")
            ));
        }
        if info.cheap_site {
            warnings.push(format!(
                "a cheap site: attached at its 5-byte nop (+{}), which the kernel optimises",
                cheap_site::NOP5_OFFSET
            ));
        }
        let attached = match attached {
            Some(a) => a,
            None => self.attach_with_fetchargs(info)?,
        };
        let id = attached.id as usize;
        if self.by_id.len() <= id {
            self.by_id.resize(id + 1, 0);
        }
        self.by_id[id] = self.probes.len() as u32 + 1;
        let report = AttachReport {
            label: attached.info.label.clone(),
            path: attached.info.path.clone(),
            offset: attached.info.offset,
            warnings,
        };
        self.probes.push(attached);
        Ok(report)
    }

    fn definition(&self, info: &ProbeInfo, args: Vec<String>) -> UprobeDefinition {
        UprobeDefinition {
            group: self.group.clone(),
            name: event_name(self.probes.len(), &info.label),
            path: info.path.clone(),
            offset: info.offset,
            ref_ctr_offset: info.semaphore_offset,
            retprobe: info.retprobe,
            args,
        }
    }

    /// A tracefs event whose fetchargs fill the record.
    fn attach_with_fetchargs(&mut self, info: ProbeInfo) -> Result<Attached, Error> {
        let mut args: Vec<String> = Vec::new();
        if !self.options.count_only {
            for (i, a) in info.args.iter().enumerate() {
                if let Fetch::Kernel { spec, .. } = &a.fetch {
                    args.push(format!("a{i}={spec}"));
                }
            }
            if self.options.only_args.is_none() {
                args.push("_comm=$comm".into());
            }
        }
        let event = self.tracefs.add_uprobe(&self.definition(&info, args))?;
        let id = event.id()?;
        let format = event.format()?;
        Ok(Attached {
            fields: (0..info.args.len())
                .map(|i| format.field(&format!("a{i}")).cloned())
                .collect(),
            comm: format.field("_comm").cloned(),
            bpf: None,
            info,
            _event: event,
            id,
        })
    }

    /// A tracefs event without fetchargs, and the program that builds its
    /// records instead. Dropping the result on failure removes the event.
    fn attach_with_bpf(&mut self, info: &ProbeInfo) -> Result<Attached, Error> {
        let event = self
            .tracefs
            .add_uprobe(&self.definition(info, Vec::new()))?;
        let id = event.id()?;
        let (layout, probe) = self.bpf_probe(info, id)?;
        Ok(Attached {
            fields: layout.args,
            comm: Some(layout.comm),
            bpf: Some(probe),
            info: info.clone(),
            _event: event,
            id,
        })
    }

    /// Load the program that builds the records of the probe whose tracefs
    /// event has tracepoint id `id`.
    fn bpf_probe(
        &mut self,
        info: &ProbeInfo,
        id: u64,
    ) -> Result<(program::Layout, BpfProbe), Error> {
        let located: Vec<Option<&BpfArg>> = info
            .args
            .iter()
            .map(|a| match &a.fetch {
                Fetch::Bpf(located) => Some(located),
                _ => None,
            })
            .collect();
        let layout = program::layout(&located).map_err(Error::Unsupported)?;
        if self.bpf_output.is_none() {
            let slots = perf::online_cpus().into_iter().max().unwrap_or(0) + 1;
            self.bpf_output = Some(bpf_sys::Map::perf_event_array(slots as u32)?);
        }
        if self.bpf_hits.is_none() {
            self.bpf_hits = Some(bpf_sys::Map::per_cpu_counter()?);
        }
        let scratch = bpf_sys::Map::per_cpu_buffer(layout.size as u32)?;
        let maps = program::Maps {
            scratch: scratch.fd(),
            output: self.bpf_output.as_ref().map_or(-1, |m| m.fd()),
            hits: self.bpf_hits.as_ref().map_or(-1, |m| m.fd()),
        };
        // Tracepoint ids are the u16 `common_type` of every record.
        let insns = program::program(id as u16, &located, &layout, maps);
        let program = bpf_sys::Program::load_kprobe(&insns, &format!("stapsdt_{id}")).map_err(
            |e| match e {
                Error::Kernel(why) => Error::Kernel(format!(
                    "{} ({}:0x{:x}): {why}",
                    info.label,
                    info.path.display(),
                    info.offset
                )),
                other => other,
            },
        )?;
        let faults = layout.faults.clone();
        Ok((
            layout,
            BpfProbe {
                program,
                _scratch: scratch,
                host: None,
                faults,
            },
        ))
    }

    /// The attached locations.
    pub fn probes(&self) -> impl Iterator<Item = &ProbeInfo> {
        self.probes.iter().map(|a| &a.info)
    }

    /// Open the perf events and enable them: from here on hits are recorded
    /// (and semaphores raised).
    pub fn start(&mut self) -> Result<(), Error> {
        if self.probes.is_empty() {
            return Err(Error::Input("nothing attached".into()));
        }
        self.started = true;
        let pid = self.pid();
        for probe in &mut self.probes {
            if let Some(bpf) = &mut probe.bpf {
                let host = PerfEvent::program_host(probe.id, pid)?;
                bpf.program.attach_to(host.raw_fd())?;
                bpf.host = Some(host);
            }
        }
        let cpus = perf::online_cpus();
        match self.target {
            Target::AllProcesses => {
                for &cpu in &cpus {
                    self.open_scope(Scope::Cpu(cpu))?;
                }
            }
            Target::Process(pid) => {
                // Threads started while we attach to the others are caught
                // by listing again until nothing new appears.
                for _ in 0..20 {
                    let fresh: Vec<i32> = threads(pid)
                        .into_iter()
                        .filter(|t| !self.traced_tids.contains(t))
                        .collect();
                    if fresh.is_empty() {
                        break;
                    }
                    for tid in fresh {
                        self.traced_tids.insert(tid);
                        for &cpu in &cpus {
                            match self.open_scope(Scope::Thread { tid, cpu }) {
                                Ok(()) => {}
                                // The thread ended meanwhile.
                                Err(Error::Os { error, .. })
                                    if error.raw_os_error() == Some(libc::ESRCH) => {}
                                Err(e) => return Err(e),
                            }
                        }
                    }
                }
                if self.traced_tids.is_empty() {
                    return Err(Error::Input(format!("pid {pid}: no such process")));
                }
            }
        }
        for ring in &self.rings {
            ring.event().enable()?;
        }
        for event in self
            .followers
            .iter()
            .chain(self.counters.iter().map(|(_, e)| e))
        {
            event.enable()?;
        }
        Ok(())
    }

    fn open_scope(&mut self, scope: Scope) -> Result<(), Error> {
        let cpu = match scope {
            Scope::Cpu(c) | Scope::Thread { cpu: c, .. } => c,
        };
        if self.options.count_only {
            for (index, probe) in self.probes.iter().enumerate() {
                self.counters
                    .push((index, PerfEvent::tracepoint_counter(probe.id, scope)?));
            }
            return Ok(());
        }
        let pages = match self.options.ring_pages {
            0 => 1024,
            n => n.next_power_of_two(),
        };
        // The first ring of a CPU holds its tracepoint records (the
        // bpf-output ring of the CPU, if any, is made after it).
        let mut ring_index = self.rings.iter().position(|r| r.cpu == cpu);
        let wakeup = (pages * perf::page_size() / 4) as u32;
        for probe in &self.probes {
            let event = PerfEvent::tracepoint(probe.id, scope, wakeup)?;
            match ring_index {
                Some(i) => {
                    event.redirect_to(self.rings[i].event())?;
                    self.followers.push(event);
                }
                None => {
                    self.rings.push(Ring::new(event, pages, cpu)?);
                    ring_index = Some(self.rings.len() - 1);
                }
            }
        }
        if let Some(output) = &self.bpf_output {
            if self.bpf_output_cpus.insert(cpu) {
                let event = PerfEvent::bpf_output(cpu, wakeup)?;
                output.set_perf_event(cpu as u32, event.raw_fd())?;
                self.rings.push(Ring::new(event, pages, cpu)?);
            }
        }
        Ok(())
    }

    /// Wait up to `timeout_ms` for hits and hand each to `handler`.
    /// Returns the number of events delivered.
    pub fn poll(&mut self, timeout_ms: i32, mut handler: impl FnMut(&Event)) -> usize {
        if self.rings.is_empty() {
            // Counting mode: nothing to read, just wait.
            std::thread::sleep(std::time::Duration::from_millis(timeout_ms.max(0) as u64));
            return 0;
        }
        perf::wait(&self.rings, timeout_ms);
        let mut delivered = 0;
        let mut lost = 0;
        let probes = &self.probes;
        let by_id = &self.by_id;
        let offset = self.clock_offset_ns;
        // One argument vector for all events: no allocation per hit.
        let mut args = Vec::with_capacity(12);
        for ring in &mut self.rings {
            ring.drain(|record| match record {
                perf::Record::Lost(n) => lost += n,
                perf::Record::Sample(sample) => {
                    let Some(&[a, b]) = sample.raw.get(0..2) else {
                        return;
                    };
                    let index = match by_id.get(usize::from(u16::from_ne_bytes([a, b]))) {
                        Some(&i) if i > 0 => i as usize - 1,
                        _ => return,
                    };
                    let probe = &probes[index];
                    args.clear();
                    args.extend(
                        probe
                            .info
                            .args
                            .iter()
                            .zip(&probe.fields)
                            .map(|(arg, field)| {
                                value::decode(
                                    &arg.fetch,
                                    field.as_ref(),
                                    sample.raw,
                                    arg.signed,
                                    arg.bytes,
                                )
                            }),
                    );
                    if let Some(bpf) = &probe.bpf {
                        let faults = bpf.faults.read_u64(sample.raw).unwrap_or(0);
                        for (i, value) in args.iter_mut().enumerate().take(32) {
                            if faults >> i & 1 == 1 {
                                *value = Value::Fault;
                            }
                        }
                    }
                    let event = Event {
                        time_ns: (i128::from(sample.time) + offset).max(0) as u128,
                        pid: sample.pid,
                        tid: sample.tid,
                        cpu: sample.cpu,
                        comm: probe
                            .comm
                            .as_ref()
                            .and_then(|f| f.read_str(sample.raw))
                            .unwrap_or(""),
                        probe: &probe.info,
                        args: std::mem::take(&mut args),
                    };
                    handler(&event);
                    args = event.args;
                    delivered += 1;
                }
            });
        }
        self.lost += lost;
        self.delivered += delivered as u64;
        delivered
    }

    /// Stop recording hits (the uprobes stay until drop). A `poll` after
    /// this delivers what is left, and then [`lost`](Self::lost) is exact.
    pub fn stop(&mut self) {
        for event in self
            .rings
            .iter()
            .map(|r| r.event())
            .chain(&self.followers)
            .chain(self.counters.iter().map(|(_, e)| e))
        {
            event.disable();
        }
        self.stopped = true;
    }

    /// Records the kernel dropped because a ring buffer was full.
    ///
    /// The kernel reports a run of drops (PERF_RECORD_LOST) only when it
    /// next finds room, so drops at the very end would go unreported; after
    /// [`stop`](Self::stop) and a final `poll` the count is exact instead:
    /// hits counted by the perf events minus records delivered.
    pub fn lost(&self) -> u64 {
        if !self.stopped || self.rings.is_empty() {
            return self.lost;
        }
        let hits: u64 = self
            .rings
            .iter()
            .map(|r| r.event())
            .chain(&self.followers)
            .map(PerfEvent::count)
            .sum::<u64>()
            + self.bpf_hits.as_ref().map_or(0, bpf_sys::Map::per_cpu_sum);
        self.lost.max(hits.saturating_sub(self.delivered))
    }

    /// Hits per attached location (counting mode), in attach order.
    pub fn counts(&self) -> Vec<(&ProbeInfo, u64)> {
        let mut totals = vec![0u64; self.probes.len()];
        for (index, event) in &self.counters {
            totals[*index] += event.count();
        }
        self.probes.iter().map(|p| &p.info).zip(totals).collect()
    }
}

/// A function entry or return: the six argument registers, or the return
/// value; read by a BPF program with `use_bpf` (cheaper per hit), else by
/// fetchargs (also the fallback when the program is refused).
fn function_probe(
    file: &std::path::Path,
    symbol: &stapsdt_reader::FunctionSymbol,
    retprobe: bool,
    use_bpf: bool,
) -> ProbeInfo {
    let raw_u64 = |raw: &str, spec: &str, register: &str| {
        let by_fetchargs = Fetch::Kernel {
            spec: format!("{spec}:x64"),
            kind: ValueKind::Int {
                bytes: 8,
                signed: false,
            },
        };
        let by_program = bpf::register_u64(register).filter(|_| use_bpf);
        ArgInfo {
            raw: raw.to_string(),
            fetch: by_program.map_or_else(|| by_fetchargs.clone(), Fetch::Bpf),
            signed: false,
            bytes: 8,
            needs_bpf: false,
            fallback: use_bpf.then_some(by_fetchargs),
        }
    };
    let args = if retprobe {
        vec![raw_u64(
            "retval",
            fetchargs::RETURN_VALUE,
            fetchargs::RETURN_REGISTER,
        )]
    } else {
        fetchargs::ENTRY_ARGS
            .iter()
            .zip(fetchargs::ENTRY_REGISTERS)
            .map(|(r, canonical)| raw_u64(r, r, canonical))
            .collect()
    };
    ProbeInfo {
        index: 0,
        label: if retprobe {
            format!("{}%return", symbol.name)
        } else {
            symbol.name.clone()
        },
        path: file.to_path_buf(),
        offset: symbol.file_offset,
        semaphore_offset: None,
        retprobe,
        cheap_site: false,
        args,
    }
}

/// A tracefs event name: `e<N>_<label>` with non-identifier characters
/// replaced, short enough for the kernel's limit.
fn event_name(index: usize, label: &str) -> String {
    let clean: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let mut name = format!("e{index}_{clean}");
    name.truncate(60);
    name
}

fn threads(pid: u32) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

fn realtime_minus_monotonic() -> i128 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC)
}

/// Many probes × CPUs × threads need many descriptors.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/set our own limit with a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// An argument that is `%rsp` itself (not memory relative to it): at a cheap
/// site's 5-byte nop its value differs, and a fetcharg cannot add 128 to a
/// register, so such a site is probed at its pc instead.
fn reads_rsp_itself(arg: &stapsdt_reader::Arg) -> bool {
    matches!(&arg.operand, stapsdt_reader::Operand::Register { register } if register.canonical == "rsp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_identifiers() {
        assert_eq!(
            event_name(3, "python:function__entry"),
            "e3_python_function__entry"
        );
        assert_eq!(event_name(0, "malloc%return"), "e0_malloc_return");
        assert!(event_name(1, &"x".repeat(200)).len() <= 60);
    }
}
