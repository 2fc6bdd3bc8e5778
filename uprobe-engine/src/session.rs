//! The public API: a session plans the sites of its selectors, attaches
//! them when started, then delivers events (or counts) until it is stopped
//! or dropped.

use crate::bpf::sys::{Link, LinkSite, Map, Program, ProgramKind};
use crate::forks::ForkTracker;
use crate::lower::{self, record, Layout, Maps};
use crate::plan::{self, ArgRequest, Fetch, ProbeInfo};
use crate::ring::RingReader;
use crate::value::{self, Value};
use crate::{resolve, Error, Selector};
use stapsdt_reader::cheap_site;
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
    /// Pages of the ring buffer (a power of two); 0 means 1024 per CPU.
    pub ring_pages: usize,
    /// Bytes read at most per string, with its NUL (at most 4096); 0 means
    /// 512. Each record reserves this much room per string argument.
    pub string_bytes: usize,
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
    sites: Vec<ProbeInfo>,
    target: Target,
    options: SessionOptions,
    /// Records handed to handlers.
    delivered: u64,
    started: bool,
    stopped: bool,
    clock_offset_ns: i128,
    stop_attaching: Option<fn() -> bool>,
}

impl Session {
    /// Open a session for `target`.
    pub fn new(target: Target, options: SessionOptions) -> Result<Session, Error> {
        if let Target::Process(pid) | Target::ProcessTree(pid) = target {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return Err(Error::Input(format!("pid {pid}: no such process")));
            }
        }
        Ok(Session {
            links: Vec::new(),
            groups: Vec::new(),
            programs: Vec::new(),
            forks: None,
            ring: None,
            lost_map: None,
            counts_map: None,
            sites: Vec::new(),
            target,
            options,
            delivered: 0,
            started: false,
            stopped: false,
            clock_offset_ns: realtime_minus_monotonic(),
            stop_attaching: None,
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
    pub fn stop_attaching_when(&mut self, stop: fn() -> bool) {
        self.stop_attaching = Some(stop);
    }

    fn request(&self) -> ArgRequest {
        ArgRequest {
            strings: self.options.strings.clone(),
            only: if self.options.count_only {
                Some(Vec::new())
            } else {
                self.options.only_args.clone()
            },
        }
    }

    /// Plan every location `selector` designates (attached by
    /// [`start`](Self::start)). Fails when nothing matches.
    pub fn attach(&mut self, selector: &Selector) -> Result<Vec<AttachReport>, Error> {
        if self.started {
            return Err(Error::Input("attach before start()".into()));
        }
        let request = self.request();
        let sites = match selector {
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
                let found = plan::sdt_sites(
                    &objects,
                    |p, n| provider.matches(p) && name.matches(n),
                    &request,
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
                    .iter()
                    .map(|s| plan::function_site(&file, s, *retprobe, &request))
                    .collect()
            }
        };
        let mut reports = Vec::new();
        for mut site in sites {
            site.index = self.sites.len();
            reports.push(report(&site));
            self.sites.push(site);
        }
        Ok(reports)
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
        let mut maps = Maps {
            ring: -1,
            lost: -1,
            counts: -1,
            scope: -1,
        };
        // The ring carries the records, and the forks of a traced process
        // (also when counting).
        if !self.options.count_only || self.pid().is_some() {
            let pages = match self.options.ring_pages {
                0 if self.options.count_only => 16,
                0 => 1024 * crate::perf::online_cpus().len(),
                n => n,
            };
            let ring = RingReader::new(pages * crate::page_size())?;
            maps.ring = ring.fd();
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
        if self.options.count_only {
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
            let lost = Map::per_cpu_counters(1, "stapsdt_lost")?;
            maps.lost = lost.fd();
            self.lost_map = Some(lost);
            let mut by_layout: HashMap<Layout, usize> = HashMap::new();
            for site in &self.sites {
                let layout = Layout::of(
                    site,
                    match self.options.string_bytes {
                        0 => lower::DEFAULT_STRING_BYTES,
                        n => n,
                    },
                );
                let index = match by_layout.get(&layout) {
                    Some(&i) => i,
                    None => {
                        let program = Program::load(
                            &lower::record_program(&layout, maps),
                            ProgramKind::UprobeMulti {
                                sleepable: layout.sleepable(),
                            },
                            "stapsdt_rec",
                        )
                        .map_err(|e| in_site(e, site))?;
                        self.programs.push(program);
                        by_layout.insert(layout, self.programs.len() - 1);
                        self.programs.len() - 1
                    }
                };
                program_of.push(index);
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
            self.stop_attaching,
            self.sites.len(),
        )
    }

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
        let now = clock_ns(libc::CLOCK_MONOTONIC).max(0) as u64;
        // Children first: the sooner their links exist, the fewer of their
        // hits are missed.
        let follow = matches!(self.target, Target::Process(_)) && !self.stopped;
        for child in ring.take_forks() {
            if follow && is_process(child) {
                let _ = attach_links(
                    &mut self.links,
                    &self.groups,
                    &self.programs,
                    Some(child),
                    None,
                    self.sites.len(),
                );
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
        close_all(std::mem::take(&mut self.links));
        self.stopped = true;
    }

    /// Records the kernel dropped because the ring buffer was full (counted
    /// by the programs, exactly).
    pub fn lost(&self) -> u64 {
        self.lost_map.as_ref().map_or(0, |m| m.per_cpu_sum(0))
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
        close_all(std::mem::take(&mut self.links));
    }
}

/// Close links at once: each close waits for an RCU grace period, and
/// waits that overlap end together.
fn close_all(links: Vec<Link>) {
    if links.len() <= 1 {
        return;
    }
    std::thread::scope(|s| {
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
    stop: Option<fn() -> bool>,
    of: usize,
) -> Result<(), Error> {
    let mut attached = 0;
    for group in groups {
        if stop.is_some_and(|stop| stop()) {
            return Err(Error::Interrupted { attached, of });
        }
        links.push(Link::uprobe_multi(
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

fn report(site: &ProbeInfo) -> AttachReport {
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
