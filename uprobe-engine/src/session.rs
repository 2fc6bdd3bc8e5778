//! The public API: a session plans the sites of its selectors, attaches
//! them when started, then delivers events (or counts) until it is stopped
//! or dropped.

use crate::bpf::sys::{attach_mode, AttachMode, Link, LinkSite, Map, Program, ProgramKind};
use crate::expr::Filter;
use crate::forks::ForkTracker;
use crate::lower::aggregate::{self, AggProgram, AggSpec, AggValue, KeyPart, KeySource, Role};
use crate::lower::{self, record, Layout, Maps};
use crate::plan::{self, ArgRequest, Fetch, ProbeInfo};
use crate::ring::RingReader;
use crate::value::{self, Value};
use crate::{resolve, Error, Selector};
use stapsdt_reader::cheap_site;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::PathBuf;

/// Whose hits are seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Every process that maps the probed object, also those started later.
    AllProcesses,
    /// This process and its threads. The processes it creates after the
    /// session starts (and theirs) get links of their own once their fork
    /// is seen, about a millisecond later: a child's hits before that are
    /// missed. Only these processes get breakpoints and raised semaphores.
    Process(u32),
    /// This process and every process it creates from the start, none
    /// missed (a shell command's pipeline): the breakpoints are in every
    /// process that maps the probed files (as system-wide, and with their
    /// semaphores raised), and the programs keep the hits of the tree.
    ProcessTree(u32),
}

/// How a session fetches and delivers.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Arguments (0-based) to fetch as the NUL-terminated strings they point to.
    pub strings: Vec<usize>,
    /// Fetch only these arguments (0-based); `None` fetches all. The others
    /// are delivered as [`Value::Unavailable`]. Fewer fetches, cheaper hits.
    pub only_args: Option<Vec<usize>>,
    /// Count hits per site in the kernel: no records, no fetches.
    pub count_only: bool,
    /// Pages of the ring buffer (a power of two); 0 means the default:
    /// [`default_ring_pages`].
    pub ring_pages: usize,
    /// Bytes read at most per string, with its NUL (at most 4096); 0 means
    /// 512. Each record reserves this much room per string argument.
    pub string_bytes: usize,
    /// Keep only the hits for which this is true (evaluated in the kernel).
    pub filter: Option<Filter>,
    /// Aggregate in the kernel instead of delivering events: read the
    /// results with [`Session::aggregates`].
    pub aggregate: Option<AggSpec>,
    /// Most distinct keys (and latency starts in flight); 0 means 65536.
    pub max_keys: u32,
    /// Take the user stack at each hit, up to this many frames (0: no;
    /// at most 127): [`Event::ustack`].
    pub stack_frames: usize,
    /// (string, length) argument pairs: the string is as many bytes as
    /// the length argument says (no NUL).
    pub counted_strings: Vec<(usize, usize)>,
    /// Read strings without faulting their pages in: no sleepable program,
    /// some tens of ns less per hit, but a string on a page the process
    /// never touched (a literal in a cold part of a binary) reads as a
    /// fault. For runtimes whose strings live in touched memory.
    pub no_fault_in: bool,
}

/// What a site does in a latency measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteRole {
    /// Its hits are events (or aggregated).
    Hit,
    /// A latency START: remembered under (pid, thread or `match` argument).
    Start { by_arg: Option<usize> },
    /// A latency END: the time since its START is aggregated.
    End { by_arg: Option<usize> },
}

/// One key of an aggregate, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyValue {
    Probe(String),
    Int(i64),
    Str(String),
    /// A user stack: the process it was taken in, and its addresses
    /// (innermost first); empty when the kernel could not take it.
    Stack {
        pid: u32,
        ips: Vec<u64>,
    },
}

/// What the hits of one key add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub count: u64,
    pub sum: i128,
    pub min: i64,
    pub max: i64,
    /// Hits per bucket (empty without a histogram).
    pub buckets: Vec<u64>,
}

impl Stats {
    fn merge(&mut self, other: &Stats) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.min = other.min;
            self.max = other.max;
        } else {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        }
        self.count += other.count;
        self.sum += other.sum;
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
    }
}

/// One row of an aggregate: a key and its statistics.
#[derive(Debug, Clone)]
pub struct AggRow {
    pub key: Vec<KeyValue>,
    pub stats: Stats,
}

/// What planning one location found worth saying (unfetchable arguments,
/// a cheap site).
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
    /// The thread's command name at the hit.
    pub comm: &'a str,
    pub probe: &'a ProbeInfo,
    pub args: Vec<Value>,
    /// The user stack at the hit, innermost first (with
    /// [`SessionOptions::stack_frames`]; empty when the kernel could not
    /// walk it).
    pub ustack: Vec<u64>,
}

/// An event that owns its fields ([`Session::take_events`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedEvent {
    /// Wall-clock time of the hit, nanoseconds since the epoch.
    pub time_ns: u128,
    pub pid: u32,
    pub tid: u32,
    pub cpu: u32,
    pub comm: String,
    /// The probe's position in [`Session::probes`].
    pub probe: usize,
    pub args: Vec<Value>,
    pub ustack: Vec<u64>,
}

/// An attachment session. Dropping it detaches everything: the links first
/// (each unregisters its uprobes and lowers their semaphores; all closed at
/// once, so their RCU waits overlap), then programs and maps.
pub struct Session {
    links: Vec<Link>,
    /// What a link is made of, for the processes that join the traced tree.
    groups: Vec<LinkGroup>,
    programs: Vec<Program>,
    forks: Option<ForkTracker>,
    ring: Option<RingReader>,
    lost_map: Option<Map>,
    counts_map: Option<Map>,
    /// Aggregation maps (scratch, aggregates, zeros, starts, stacks), and
    /// the scratch entries of compact records.
    agg_maps: Vec<Map>,
    aggregates_map: Option<Map>,
    stacks_map: Option<Map>,
    sites: Vec<ProbeInfo>,
    roles: Vec<SiteRole>,
    target: Target,
    options: SessionOptions,
    /// Records handed to handlers.
    delivered: u64,
    started: bool,
    stopped: bool,
    clock_offset_ns: i128,
    stop_attaching: Option<Box<dyn Fn() -> bool + Send>>,
    /// Objects read for selectors that name a path, by path: a runtime
    /// tapset attaches one selector per probe of the same object (60 of
    /// libjvm.so's, 24 MB each read), and reading it once is enough.
    objects_read: ObjectsRead,
}

impl Session {
    /// Open a session for `target`.
    pub fn new(target: Target, options: SessionOptions) -> Result<Session, Error> {
        if let Target::Process(pid) | Target::ProcessTree(pid) = target {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return Err(Error::Input(format!("pid {pid}: no such process")));
            }
        }
        // Before 6.10 a uprobe_multi link's pid filter let through only the
        // threads whose id is the pid (the kernel compared thread ids):
        // there the programs filter by process instead, as for a tree.
        // (Uprobe perf events filter by address space, rightly.)
        let perf_events = attach_mode() == AttachMode::PerfEvent;
        let target = match target {
            Target::Process(pid) if !perf_events && !pid_filter_works(&kernel_release()) => {
                Target::ProcessTree(pid)
            }
            other => other,
        };
        // Programs on perf events cannot sleep: strings are read without
        // faulting pages in.
        let mut options = options;
        options.no_fault_in |= perf_events;
        Ok(Session {
            links: Vec::new(),
            groups: Vec::new(),
            programs: Vec::new(),
            forks: None,
            ring: None,
            lost_map: None,
            counts_map: None,
            agg_maps: Vec::new(),
            aggregates_map: None,
            stacks_map: None,
            sites: Vec::new(),
            roles: Vec::new(),
            target,
            options,
            delivered: 0,
            started: false,
            stopped: false,
            clock_offset_ns: realtime_minus_monotonic(),
            stop_attaching: None,
            objects_read: HashMap::new(),
        })
    }

    fn pid(&self) -> Option<u32> {
        match self.target {
            Target::Process(pid) | Target::ProcessTree(pid) => Some(pid),
            Target::AllProcesses => None,
        }
    }

    /// The pid filter of the session's own links.
    fn link_pid(&self) -> Option<u32> {
        match self.target {
            Target::Process(pid) => Some(pid),
            _ => None,
        }
    }

    /// Have [`start`](Self::start) check `stop` before each link it creates
    /// and give up when it says so. What was attached is released.
    pub fn stop_attaching_when(&mut self, stop: impl Fn() -> bool + Send + 'static) {
        self.stop_attaching = Some(Box::new(stop));
    }

    fn request(&self) -> ArgRequest {
        arg_request(&self.options)
    }

    /// Counting hits per site without filter or keys: the cheapest program.
    fn fast_count(&self) -> bool {
        fast_count(&self.options)
    }

    /// Whether hits are aggregated by the general programs (keys, filter,
    /// histograms, latency).
    fn aggregating(&self) -> bool {
        !self.fast_count() && (self.options.aggregate.is_some() || self.options.count_only)
    }

    /// The aggregation, with counting per probe as the default.
    fn agg_spec(&self) -> AggSpec {
        self.options.aggregate.clone().unwrap_or(AggSpec {
            keys: vec![KeyPart::Probe],
            value: AggValue::Count,
            buckets: aggregate::Buckets::Log2,
            key_string_bytes: 8,
        })
    }

    /// Plan every location `selector` designates (attached by
    /// [`start`](Self::start)). Fails when nothing matches.
    pub fn attach(&mut self, selector: &Selector) -> Result<Vec<AttachReport>, Error> {
        self.attach_as(selector, SiteRole::Hit)
    }

    /// [`attach`](Self::attach) with a role in a latency measurement.
    pub fn attach_as(
        &mut self,
        selector: &Selector,
        role: SiteRole,
    ) -> Result<Vec<AttachReport>, Error> {
        self.attach_with(selector, role, &[])
    }

    /// [`attach_as`](Self::attach_as), with these arguments (0-based) of
    /// the selector's probes fetched as strings besides the session's
    /// [`SessionOptions::strings`]: probes of different string layouts in
    /// one session (one ring, one set of links per file).
    pub fn attach_with(
        &mut self,
        selector: &Selector,
        role: SiteRole,
        strings: &[usize],
    ) -> Result<Vec<AttachReport>, Error> {
        if self.started {
            return Err(Error::Input("attach before start()".into()));
        }
        let mut request = self.request();
        request.strings.extend_from_slice(strings);
        // A latency pair matched by an argument fetches it.
        if let SiteRole::Start { by_arg: Some(n) } | SiteRole::End { by_arg: Some(n) } = role {
            if let Some(only) = &mut request.only {
                only.push(n);
            }
        }
        let sites = selector_sites(selector, self.pid(), &request, &mut self.objects_read)?;
        let mut reports = Vec::new();
        for mut site in sites {
            site.index = self.sites.len();
            reports.push(report(&site));
            self.sites.push(site);
            self.roles.push(role);
        }
        Ok(reports)
    }

    /// Each planned location's role, in the order of [`probes`](Self::probes).
    pub fn roles(&self) -> &[SiteRole] {
        &self.roles
    }

    /// The planned (after `start`: attached) locations.
    pub fn probes(&self) -> impl Iterator<Item = &ProbeInfo> {
        self.sites.iter()
    }

    /// Load the programs and attach every site: from here on hits are
    /// recorded (and semaphores raised).
    pub fn start(&mut self) -> Result<(), Error> {
        if self.sites.is_empty() {
            return Err(Error::Input("nothing attached".into()));
        }
        if self.started {
            return Err(Error::Input("the session was started already".into()));
        }
        self.started = true;
        for site in &self.sites {
            if site.path.as_os_str().is_empty() {
                return Err(Error::Input(format!("{}: no file", site.label)));
            }
        }
        let mut maps = Maps::none();
        let counting = self.fast_count() || self.aggregating();
        // The ring carries the records, and the forks of a traced process
        // (also when counting).
        if !counting || self.pid().is_some() {
            let pages = match self.options.ring_pages {
                0 if counting => 16,
                0 => {
                    let big_records = self.options.stack_frames > 0
                        || self.sites.iter().any(|s| Layout::of(s, 8).strings() > 0);
                    default_ring_pages(big_records, crate::perf::online_cpus().len())
                }
                n => n,
            };
            let bytes = pages * crate::page_size();
            let ring = RingReader::new(bytes)?;
            maps.ring = ring.fd();
            maps.wake_bytes = ring.wake_mark().min(1 << 30) as i32;
            self.ring = Some(ring);
        }
        if let Some(pid) = self.pid() {
            let forks = ForkTracker::new(pid, maps.ring)?;
            if let Target::ProcessTree(_) = self.target {
                maps.scope = forks.set_fd();
            }
            self.forks = Some(forks);
        }
        // Which program each site runs: index into `self.programs`.
        let mut program_of = Vec::with_capacity(self.sites.len());
        let lost = Map::per_cpu_counters(2, "stapsdt_lost")?;
        maps.lost = lost.fd();
        self.lost_map = Some(lost);
        if self.aggregating() {
            program_of = self.load_aggregating(maps)?;
        } else if self.fast_count() {
            let counts = Map::per_cpu_counters(self.sites.len() as u32, "stapsdt_counts")?;
            maps.counts = counts.fd();
            self.counts_map = Some(counts);
            self.programs.push(Program::load(
                &lower::count_program(maps),
                ProgramKind::UprobeMulti { sleepable: false },
                "stapsdt_count",
            )?);
            program_of.resize(self.sites.len(), 0);
        } else {
            let mut by_layout: HashMap<(Layout, Option<crate::expr::Expr>), usize> = HashMap::new();
            // The first site of each program, to name in an error.
            let mut first_site: Vec<usize> = Vec::new();
            for site in &self.sites {
                let mut layout = Layout::of(
                    site,
                    match self.options.string_bytes {
                        0 => lower::DEFAULT_STRING_BYTES,
                        n => n,
                    },
                );
                layout.stack_frames = self.options.stack_frames.min(STACK_FRAMES as usize);
                layout.fault_in = !self.options.no_fault_in;
                // A latency END is kept whatever the filter (the filter is
                // its START's).
                let filter = self
                    .options
                    .filter
                    .as_ref()
                    .filter(|_| !matches!(self.roles[site.index], SiteRole::End { .. }))
                    .map(|f| lower::filter::for_site(f, site))
                    .transpose()
                    .map_err(Error::Input)?;
                let key = (layout, filter);
                let next = by_layout.len();
                let index = *by_layout.entry(key).or_insert(next);
                program_of.push(index);
                first_site.resize(by_layout.len(), site.index);
            }
            // The verifier takes milliseconds per program: load them at once.
            let mut layouts: Vec<(&(Layout, Option<crate::expr::Expr>), usize)> =
                by_layout.iter().map(|(k, &i)| (k, i)).collect();
            layouts.sort_by_key(|(_, i)| *i);
            // Records with strings or stacks are built in a per-CPU scratch
            // entry and copied into the ring at the size they filled.
            let scratch = layouts
                .iter()
                .map(|((layout, _), _)| layout)
                .filter(|layout| lower::compact(layout))
                .map(lower::compact_scratch_bytes)
                .max();
            if let Some(bytes) = scratch {
                let map = Map::per_cpu_scratch(bytes as u32, "stapsdt_scratch")?;
                maps.scratch = map.fd();
                self.agg_maps.push(map);
            }
            let loaded = load_all(layouts.iter().map(|((layout, filter), _)| {
                (
                    lower::record_program(layout, filter.as_ref(), maps),
                    ProgramKind::UprobeMulti {
                        sleepable: layout.sleepable(),
                    },
                )
            }));
            for (program, &site) in loaded.into_iter().zip(&first_site) {
                self.programs
                    .push(program.map_err(|e| in_site(e, &self.sites[site]))?);
            }
        }
        // One link per (file, program, entry or return), in plan order.
        let mut group_of: HashMap<(PathBuf, usize, bool), usize> = HashMap::new();
        for (site, &program) in self.sites.iter().zip(&program_of) {
            let key = (site.path.clone(), program, site.retprobe);
            let at = *group_of.entry(key).or_insert_with(|| {
                self.groups.push(LinkGroup {
                    path: site.path.clone(),
                    program,
                    retprobe: site.retprobe,
                    sites: Vec::new(),
                });
                self.groups.len() - 1
            });
            self.groups[at].sites.push(LinkSite {
                offset: site.offset,
                ref_ctr_offset: site.semaphore_offset.unwrap_or(0),
                cookie: site.index as u64,
            });
        }
        let pid = self.link_pid();
        attach_links(
            &mut self.links,
            &self.groups,
            &self.programs,
            pid,
            self.stop_attaching
                .as_deref()
                .map(|f| f as &dyn Fn() -> bool),
            self.sites.len(),
        )
    }

    /// The descriptor that is readable while records wait (the ring
    /// buffer's), for a caller's own `poll`/`epoll` loop; `None` before
    /// [`start`](Self::start) and when counting (nothing to read). The
    /// programs wake a sleeping `poll` only when the ring is half full (a
    /// wakeup per record costs the traced thread more than the record),
    /// so poll with a timeout: [`LOOK_MS`](Self::LOOK_MS) is what
    /// [`poll`](Self::poll) itself waits while records come in.
    pub fn as_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        let fd = self.ring.as_ref()?.fd();
        // SAFETY: the ring (and so its descriptor) lives as long as `self`,
        // which the returned borrow cannot outlive.
        Some(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) })
    }

    /// The events that arrived, in time order, without waiting: for a
    /// caller that waits on [`as_fd`](Self::as_fd) itself. Each is owned (its
    /// probe by index into [`probes`](Self::probes)).
    pub fn take_events(&mut self) -> Vec<OwnedEvent> {
        let mut events = Vec::new();
        self.poll(0, |e| {
            events.push(OwnedEvent {
                time_ns: e.time_ns,
                pid: e.pid,
                tid: e.tid,
                cpu: e.cpu,
                comm: e.comm.to_string(),
                probe: e.probe.index,
                args: e.args.clone(),
                ustack: e.ustack.clone(),
            })
        });
        events
    }

    /// How often a caller polling [`as_fd`](Self::as_fd) should look at
    /// the ring while records come in, in ms.
    pub const LOOK_MS: i32 = crate::ring::LOOK_MIN_MS;

    /// Wait up to `timeout_ms` for hits and hand each to `handler`, in time
    /// order. Returns the number of events delivered.
    pub fn poll(&mut self, timeout_ms: i32, mut handler: impl FnMut(&Event)) -> usize {
        let Some(ring) = &mut self.ring else {
            // Counting mode: nothing to read, just wait.
            std::thread::sleep(std::time::Duration::from_millis(timeout_ms.max(0) as u64));
            return 0;
        };
        if !self.stopped {
            ring.wait(timeout_ms);
        }
        let sites = &self.sites;
        let offset = self.clock_offset_ns;
        let stack_frames = self.options.stack_frames.min(STACK_FRAMES as usize);
        let now = clock_ns(libc::CLOCK_MONOTONIC).max(0) as u64;
        // Children first: the sooner their links exist, the fewer of their
        // hits are missed.
        let follow = matches!(self.target, Target::Process(_)) && !self.stopped;
        for child in ring.take_forks() {
            if follow && is_process(child) {
                // A child that is gone already had no hits to see.
                let _ = attach_child(&mut self.links, &self.groups, &self.programs, child);
            }
        }
        // One argument vector for all events: no allocation per hit.
        let mut args = Vec::with_capacity(12);
        let delivered = ring.drain(now, self.stopped, |r| {
            let Some(site) = record::site(r).and_then(|i| sites.get(i as usize)) else {
                return;
            };
            let faults = record::faults(r);
            args.clear();
            args.extend(
                site.args
                    .iter()
                    .enumerate()
                    .map(|(i, arg)| value::decode(arg, i, r, faults)),
            );
            let event = Event {
                time_ns: (i128::from(record::time(r)) + offset).max(0) as u128,
                pid: record::pid(r),
                tid: record::tid(r),
                cpu: record::cpu(r),
                comm: record::comm(r),
                probe: site,
                args: std::mem::take(&mut args),
                ustack: if stack_frames > 0 {
                    record::stack(r, lower::arg_slot(site.args.len()))
                } else {
                    Vec::new()
                },
            };
            handler(&event);
            args = event.args;
        });
        self.delivered += delivered as u64;
        delivered
    }

    /// Detach every site: no hit is recorded from here on, the semaphores
    /// are lowered. A `poll` after this delivers what is left, and then
    /// [`lost`](Self::lost) is final.
    pub fn stop(&mut self) {
        close_all(std::mem::take(&mut self.links), self.forks.take());
        self.stopped = true;
    }

    /// Records the kernel dropped because the ring buffer was full (counted
    /// by the programs, exactly).
    pub fn lost(&self) -> u64 {
        self.lost_map
            .as_ref()
            .map_or(0, |m| m.per_cpu_sum(lower::LOST_RECORDS))
    }

    /// Build the aggregating programs (one per distinct program over the
    /// sites) and their maps; returns each site's program.
    fn load_aggregating(&mut self, mut maps: Maps) -> Result<Vec<usize>, Error> {
        let spec = self.agg_spec();
        let string_bytes = match self.options.string_bytes {
            0 => spec.key_string_bytes,
            n => n,
        };
        let mut plans = Vec::with_capacity(self.sites.len());
        for (site, role) in self.sites.iter().zip(&self.roles) {
            plans.push(
                agg_program(
                    site,
                    *role,
                    &spec,
                    self.options.filter.as_ref(),
                    string_bytes,
                    !self.options.no_fault_in,
                )
                .map_err(Error::Input)?,
            );
        }
        let scratch = plans
            .iter()
            .map(|p| aggregate::map_bytes(&p.layout, &spec))
            .max()
            .unwrap_or(64);
        let entries = match self.options.max_keys {
            0 => 65536,
            n => n,
        };
        let (_, key_bytes) = spec.key_layout();
        let value_bytes = spec.value_bytes() as u32;
        let scratch = Map::per_cpu_scratch(scratch as u32, "stapsdt_scratch")?;
        let aggregates = Map::hash(key_bytes as u32, value_bytes, entries, true, "stapsdt_agg")?;
        let zeros = Map::zeros(value_bytes, "stapsdt_zeros")?;
        maps.scratch = scratch.fd();
        maps.aggregates = aggregates.fd();
        maps.zeros = zeros.fd();
        self.agg_maps.extend([scratch, zeros]);
        if self.roles.iter().any(|r| *r != SiteRole::Hit) {
            let starts = Map::hash(16, 8 + key_bytes as u32, entries, false, "stapsdt_starts")?;
            maps.starts = starts.fd();
            self.agg_maps.push(starts);
        }
        if spec.keys.contains(&KeyPart::Ustack) {
            let stacks = Map::stack_traces(STACK_FRAMES, entries.min(16384))?;
            maps.stacks = stacks.fd();
            self.stacks_map = Some(stacks);
        }
        self.aggregates_map = Some(aggregates);
        let mut by_plan: HashMap<AggProgram, usize> = HashMap::new();
        let mut program_of = Vec::with_capacity(plans.len());
        for (plan, site) in plans.into_iter().zip(&self.sites) {
            let index = match by_plan.get(&plan) {
                Some(&i) => i,
                None => {
                    let program = Program::load(
                        &aggregate::program(&plan, maps),
                        ProgramKind::UprobeMulti {
                            sleepable: plan.sleepable,
                        },
                        "stapsdt_agg",
                    )
                    .map_err(|e| in_site(e, site))?;
                    self.programs.push(program);
                    by_plan.insert(plan, self.programs.len() - 1);
                    self.programs.len() - 1
                }
            };
            program_of.push(index);
        }
        Ok(program_of)
    }

    /// The aggregate so far: one row per key (sites of one label merged),
    /// in no particular order. Counting per probe gives one row per label.
    pub fn aggregates(&self) -> Vec<AggRow> {
        let mut rows: HashMap<Vec<KeyValue>, Stats> = HashMap::new();
        if let Some(counts) = &self.counts_map {
            for site in &self.sites {
                let n = counts.per_cpu_sum(site.index as u32);
                rows.entry(vec![KeyValue::Probe(site.label.clone())])
                    .or_default()
                    .merge(&Stats {
                        count: n,
                        ..Stats::default()
                    });
            }
        }
        if let Some(map) = &self.aggregates_map {
            let spec = self.agg_spec();
            for key in map.keys() {
                let Some(value) = map.lookup(&key) else {
                    continue;
                };
                let stats = per_cpu_stats(&value, &spec);
                let decoded = self.decode_key(&key, &spec);
                rows.entry(decoded).or_default().merge(&stats);
            }
        }
        rows.into_iter()
            .filter(|(_, s)| s.count > 0 || self.counts_map.is_some())
            .map(|(key, stats)| AggRow { key, stats })
            .collect()
    }

    fn decode_key(&self, key: &[u8], spec: &AggSpec) -> Vec<KeyValue> {
        let (offsets, _) = spec.key_layout();
        let u64_at = |at: usize| record::u64_at(key, at).unwrap_or(0);
        let text = |bytes: &[u8]| {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            String::from_utf8_lossy(&bytes[..end]).into_owned()
        };
        spec.keys
            .iter()
            .zip(offsets)
            .map(|(part, at)| match part {
                KeyPart::Probe => KeyValue::Probe(
                    self.sites
                        .get(u64_at(at) as usize)
                        .map_or_else(|| "?".into(), |s| s.label.clone()),
                ),
                KeyPart::Comm => KeyValue::Str(text(&key[at..at + 16])),
                KeyPart::Str(_) => KeyValue::Str(text(&key[at..at + spec.key_string_bytes])),
                KeyPart::Ustack => {
                    let id = u64_at(at) as u32;
                    let pid = (u64_at(at) >> 32) as u32;
                    let ips = self
                        .stacks_map
                        .as_ref()
                        .filter(|_| (id as i32) >= 0)
                        .and_then(|m| m.lookup(&id.to_ne_bytes()))
                        .map(|v| {
                            v.chunks_exact(8)
                                .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
                                .take_while(|&ip| ip != 0)
                                .collect()
                        })
                        .unwrap_or_default();
                    KeyValue::Stack { pid, ips }
                }
                _ => KeyValue::Int(u64_at(at) as i64),
            })
            .collect()
    }

    /// Hits lost because the key map was full (raise `max_keys`).
    pub fn lost_keys(&self) -> u64 {
        self.lost_map
            .as_ref()
            .map_or(0, |m| m.per_cpu_sum(lower::LOST_KEYS))
    }

    /// Hits per attached location (counting mode), in attach order.
    pub fn counts(&self) -> Vec<(&ProbeInfo, u64)> {
        self.sites
            .iter()
            .map(|site| {
                let n = self
                    .counts_map
                    .as_ref()
                    .map_or(0, |m| m.per_cpu_sum(site.index as u32));
                (site, n)
            })
            .collect()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        close_all(std::mem::take(&mut self.links), self.forks.take());
    }
}

/// The running kernel's release (`6.18.44-…`).
fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default()
}

/// Whether a kernel of this release filters uprobe_multi links by process
/// (6.10 and later; an unparsable release is taken to).
fn pid_filter_works(release: &str) -> bool {
    let mut parts = release.trim().split(['.', '-']);
    let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
        return true;
    };
    match (major.parse::<u32>(), minor.parse::<u32>()) {
        (Ok(major), Ok(minor)) => (major, minor) >= (6, 10),
        _ => true,
    }
}

/// Load programs on as many threads as there are CPUs (the verifier's
/// work is CPU-bound and independent per program), results in order.
fn load_all(
    programs: impl Iterator<Item = (Vec<crate::bpf::insn::Insn>, ProgramKind)>,
) -> Vec<Result<Program, Error>> {
    let work: Vec<(Vec<crate::bpf::insn::Insn>, ProgramKind)> = programs.collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(work.len())
        .max(1);
    let mut results: Vec<Option<Result<Program, Error>>> = (0..work.len()).map(|_| None).collect();
    let chunk = work.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (work, results) in work.chunks(chunk).zip(results.chunks_mut(chunk)) {
            s.spawn(move || {
                for ((insns, kind), slot) in work.iter().zip(results) {
                    *slot = Some(Program::load(insns, *kind, "stapsdt_rec"));
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Kernel("loading a program".into()))))
        .collect()
}

/// Frames kept per user stack.
const STACK_FRAMES: u32 = 127;

/// Sum one key's per-CPU values.
fn per_cpu_stats(value: &[u8], spec: &AggSpec) -> Stats {
    let bytes = spec.value_bytes();
    let stride = bytes.next_multiple_of(8);
    let buckets = if spec.has_histogram() {
        spec.buckets.count()
    } else {
        0
    };
    let mut total = Stats::default();
    for cpu in value.chunks(stride) {
        let at = |i: usize| record::u64_at(cpu, 8 * i).unwrap_or(0);
        let count = at(0);
        if count == 0 {
            continue;
        }
        let one = if spec.has_histogram() {
            Stats {
                count,
                sum: i128::from(at(1) as i64),
                min: at(2) as i64,
                max: at(3) as i64,
                buckets: (0..buckets).map(|b| at(4 + b)).collect(),
            }
        } else {
            Stats {
                count,
                ..Stats::default()
            }
        };
        total.merge(&one);
    }
    total
}

/// The aggregating program a site runs.
fn agg_program(
    site: &ProbeInfo,
    role: SiteRole,
    spec: &AggSpec,
    filter: Option<&Filter>,
    string_bytes: usize,
    fault_in: bool,
) -> Result<AggProgram, String> {
    let mut layout = Layout::of(site, string_bytes);
    layout.fault_in = fault_in;
    let (role, needed): (Role, Vec<usize>) = match role {
        SiteRole::Hit => (Role::Aggregate, Vec::new()),
        SiteRole::Start { by_arg } => (Role::Start { by_arg }, Vec::new()),
        SiteRole::End { by_arg } => (Role::End { by_arg }, by_arg.into_iter().collect()),
    };
    if let Role::Start { by_arg: Some(n) } | Role::End { by_arg: Some(n) } = role {
        if lower::filter::check_arg(site, n, false)
            .map_err(|e| format!("--match: {e}"))?
            .is_some()
        {
            return Err(format!(
                "--match arg{n}: arg{n} of {} is a constant",
                site.label
            ));
        }
    }
    if let Role::End { .. } = role {
        // An END fetches only what it matches with.
        for (i, a) in layout.args.iter_mut().enumerate() {
            if !needed.contains(&i) {
                *a = None;
            }
        }
        return Ok(AggProgram {
            sleepable: false,
            layout,
            filter: None,
            role,
            spec: spec.clone(),
            sources: Vec::new(),
            constant_value: None,
        });
    }
    let filter = filter
        .map(|f| lower::filter::for_site(f, site))
        .transpose()?;
    let by = |e: String| format!("--by: {e}");
    let sources = spec
        .keys
        .iter()
        .map(|k| {
            Ok(match k {
                KeyPart::Probe => KeySource::Site,
                KeyPart::Pid => KeySource::Pid,
                KeyPart::Tid => KeySource::Tid,
                KeyPart::Cpu => KeySource::Cpu,
                KeyPart::Comm => KeySource::Comm,
                KeyPart::Ustack => KeySource::Ustack,
                KeyPart::Arg(n) => match lower::filter::check_arg(site, *n, false).map_err(by)? {
                    Some(c) => KeySource::Constant(c),
                    None => KeySource::Arg(*n),
                },
                KeyPart::Str(n) => {
                    lower::filter::check_arg(site, *n, true).map_err(by)?;
                    KeySource::Str(*n)
                }
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let constant_value = match spec.value {
        AggValue::Arg(n) if role == Role::Aggregate => {
            lower::filter::check_arg(site, n, false).map_err(|e| format!("--hist: {e}"))?
        }
        _ => None,
    };
    // Strings are read by a sleepable program (pages faulted in), unless
    // a stack id is taken (a map sleepable programs may not use).
    let sleepable = layout.sleepable() && !spec.keys.contains(&KeyPart::Ustack);
    Ok(AggProgram {
        sleepable,
        layout,
        filter,
        role,
        spec: spec.clone(),
        sources,
        constant_value,
    })
}

/// Close links (and the fork tracker's tracepoint) at once: each close
/// waits for an RCU grace period, and waits that overlap end together.
fn close_all(links: Vec<Link>, forks: Option<ForkTracker>) {
    if links.len() + usize::from(forks.is_some()) <= 1 {
        return;
    }
    std::thread::scope(|s| {
        if let Some(forks) = forks {
            s.spawn(move || drop(forks));
        }
        for link in links {
            s.spawn(move || drop(link));
        }
    });
}

/// Sites of one file run by one program at entry (or return): one link.
struct LinkGroup {
    path: PathBuf,
    program: usize,
    retprobe: bool,
    sites: Vec<LinkSite>,
}

/// A link per group, for process `pid` (the kernel's pid filter: only it
/// gets breakpoints and raised semaphores) or every process. A child of a
/// traced process gets links of its own as soon as its fork record is read
/// (threads are covered by their process's links; a child that is gone
/// already had no hits to see).
fn attach_links(
    links: &mut Vec<Link>,
    groups: &[LinkGroup],
    programs: &[Program],
    pid: Option<u32>,
    stop: Option<&dyn Fn() -> bool>,
    of: usize,
) -> Result<(), Error> {
    let mut attached = 0;
    for group in groups {
        if stop.is_some_and(|stop| stop()) {
            return Err(Error::Interrupted { attached, of });
        }
        links.push(Link::uprobes(
            &programs[group.program],
            &group.path,
            &group.sites,
            group.retprobe,
            pid,
        )?);
        attached += group.sites.len();
    }
    Ok(())
}

/// The links of a new child, created at once: each takes milliseconds
/// (the kernel walks every mapping of the file), and the child runs
/// meanwhile, so the sooner the last exists the fewer hits are missed.
fn attach_child(
    links: &mut Vec<Link>,
    groups: &[LinkGroup],
    programs: &[Program],
    child: u32,
) -> Result<(), Error> {
    let made: Vec<Result<Link, Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .iter()
            .map(|group| {
                s.spawn(move || {
                    Link::uprobes(
                        &programs[group.program],
                        &group.path,
                        &group.sites,
                        group.retprobe,
                        Some(child),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Kernel("attaching to a child".into())))
            })
            .collect()
    });
    for link in made {
        links.push(link?);
    }
    Ok(())
}

/// Whether `pid` is a process (a thread group leader) that still runs.
fn is_process(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Tgid:"))
            .is_some_and(|tgid| tgid.trim() == pid.to_string())
    })
}

fn in_site(e: Error, site: &ProbeInfo) -> Error {
    match e {
        Error::Kernel(why) => Error::Kernel(format!(
            "{} ({}:0x{:x}): {why}",
            site.label,
            site.path.display(),
            site.offset
        )),
        other => other,
    }
}

/// What the sites of a session with `options` fetch: the asked strings,
/// what the filter and the aggregation read, nothing more when counting.
pub(crate) fn arg_request(options: &SessionOptions) -> ArgRequest {
    let mut strings = options.strings.clone();
    let mut only = if fast_count(options) {
        Some(Vec::new())
    } else {
        options.only_args.clone()
    };
    // What the filter and the aggregation read is fetched, strings as
    // strings.
    let mut used = Vec::new();
    if let Some(f) = &options.filter {
        let (ints, strs) = f.args();
        used.extend(ints);
        used.extend(&strs);
        strings.extend(strs);
    }
    if let Some(spec) = &options.aggregate {
        for k in &spec.keys {
            match k {
                KeyPart::Arg(n) => used.push(*n),
                KeyPart::Str(n) => {
                    used.push(*n);
                    strings.push(*n);
                }
                _ => {}
            }
        }
        if let AggValue::Arg(n) = spec.value {
            used.push(n);
        }
        // An aggregation fetches nothing it does not use.
        only.get_or_insert_with(Vec::new);
    }
    if let Some(only) = &mut only {
        // A counted string needs its length too.
        let lengths: Vec<usize> = options
            .counted_strings
            .iter()
            .filter(|(s, _)| used.contains(s) || only.contains(s))
            .map(|(_, l)| *l)
            .collect();
        only.extend(used);
        only.extend(lengths);
        only.sort_unstable();
        only.dedup();
    }
    strings.sort_unstable();
    strings.dedup();
    ArgRequest {
        strings,
        only,
        counted: options.counted_strings.clone(),
    }
}

/// Counting hits per site without filter or keys: the cheapest program.
pub(crate) fn fast_count(options: &SessionOptions) -> bool {
    if options.filter.is_some() {
        return false;
    }
    match &options.aggregate {
        None => options.count_only,
        Some(spec) => spec.keys == [KeyPart::Probe] && spec.value == AggValue::Count,
    }
}

/// Every location `selector` designates (in the objects of process `pid`
/// for a selector without a path), planned with `request`. Fails when
/// nothing matches.
/// The objects read from each file, by path: a session reads a file once
/// however many selectors name it.
pub(crate) type ObjectsRead = HashMap<PathBuf, Vec<stapsdt_reader::Object>>;

/// Every location `selector` designates (in the objects of process `pid`
/// for a selector without a path), planned with `request`; files are read
/// through `objects_read`. Fails when nothing matches.
pub(crate) fn selector_sites(
    selector: &Selector,
    pid: Option<u32>,
    request: &ArgRequest,
    objects_read: &mut ObjectsRead,
) -> Result<Vec<ProbeInfo>, Error> {
    Ok(match selector {
        Selector::Usdt {
            path,
            provider,
            name,
        } => {
            let from_process;
            let objects: &[stapsdt_reader::Object] = match path {
                Some(p) => {
                    let file = resolve::object_path(p, pid)?;
                    match objects_read.entry(file) {
                        Entry::Occupied(read) => read.into_mut(),
                        Entry::Vacant(slot) => {
                            let file = slot.key();
                            let objects = stapsdt_reader::read_path(file)?
                                .into_iter()
                                .map(|mut o| {
                                    o.path = file.display().to_string();
                                    o
                                })
                                .collect();
                            slot.insert(objects)
                        }
                    }
                }
                None => match pid {
                    Some(pid) => {
                        from_process =
                            stapsdt_reader::process::read_process(pid, &Default::default())?.0;
                        &from_process
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
            let found = plan::sdt_sites(
                objects,
                |p, n| provider.matches(p) && name.matches(n),
                request,
            );
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
            let file = resolve::object_path(path, pid)?;
            let symbols = stapsdt_reader::function_symbols(&file, symbol)?;
            if symbols.is_empty() {
                return Err(Error::Input(format!(
                    "{}: no function symbol matches `{}` in .symtab or .dynsym",
                    file.display(),
                    symbol.as_str()
                )));
            }
            symbols
                .iter()
                .map(|s| plan::function_site(&file, s, *retprobe, request))
                .collect()
        }
    })
}

pub(crate) fn report(site: &ProbeInfo) -> AttachReport {
    let mut warnings: Vec<String> = site
        .args
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match &a.fetch {
            Fetch::Unavailable(why) => Some(format!("arg{i} cannot be fetched: {why}")),
            _ => None,
        })
        .collect();
    if site.cheap_site {
        warnings.push(format!(
            "a cheap site: attached at its 5-byte nop (+{}), which the kernel optimises",
            cheap_site::NOP5_OFFSET
        ));
    }
    AttachReport {
        label: site.label.clone(),
        path: site.path.clone(),
        offset: site.offset,
        warnings,
    }
}

pub(crate) fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

pub(crate) fn realtime_minus_monotonic() -> i128 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC)
}

/// The ring's size unless the caller sets one: 128 pages (512 KiB, what
/// `perf record` maps per CPU by default) per online CPU, four times that
/// when records carry strings or stacks (records up to ten times larger).
/// Not larger: the CPU that writes a record first has to take its cache
/// line back from the reader's, and from a ring larger than the cache it
/// comes from memory instead. Measured on one site at 2 M hits/s (2 CPUs,
/// 2 MiB L2 each): 459 ns per hit with 1 MiB, 478 ns with 8 MiB.
pub fn default_ring_pages(big_records: bool, online_cpus: usize) -> usize {
    let per_cpu = if big_records { 512 } else { 128 };
    per_cpu * online_cpus.max(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_ring_is_perf_records_per_cpu_room() {
        // 512 KiB per CPU, like perf record's per-CPU buffers.
        assert_eq!(super::default_ring_pages(false, 2) * 4096, 2 * 512 * 1024);
        assert_eq!(super::default_ring_pages(false, 64), 64 * 128);
        // Strings and stacks: four times that.
        assert_eq!(super::default_ring_pages(true, 2), 2 * 512);
        // No CPU list read: still a ring.
        assert_eq!(super::default_ring_pages(false, 0), 128);
    }

    #[test]
    fn pid_filters_work_from_6_10() {
        assert!(super::pid_filter_works("6.18.44-fc-v769"));
        assert!(super::pid_filter_works("6.10.0"));
        assert!(!super::pid_filter_works("6.9.12-arch1"));
        assert!(!super::pid_filter_works("6.6.30"));
        assert!(super::pid_filter_works("7.0"));
        assert!(super::pid_filter_works("weird"));
    }
}
