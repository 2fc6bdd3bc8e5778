//! Attach a runtime's tapset probes through the engine and deliver named,
//! decoded events in time order.
//!
//! The engine chooses string arguments per session (`SessionOptions::strings`),
//! while tapset probes differ in which arguments are strings, so the tracer
//! opens one session per string layout and polls them in turn. Probes that
//! must be attached only for their semaphore (CPython's `line`, see
//! [`crate::python`]) go into a counting session: the kernel raises the
//! semaphore and counts, no records are made.

use crate::decode::{self, NamedEvent};
use crate::discover::RuntimeObject;
use crate::hotspot;
use crate::jdk::Jdk;
use crate::python;
use crate::tapset::{Decode, Gate, ProbeDef, Runtime};
use stapsdt_reader::filter::Glob;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use uprobe_engine::{Selector, Session, SessionOptions, Target};

/// Events newer than this stay buffered, so that hits drained late from
/// another CPU's ring are still delivered in time order.
const REORDER_WINDOW_NS: u128 = 100_000_000;

/// The tapset probe for a note probe, if the runtime's tapset names it.
pub fn probe_def(runtime: Runtime, provider: &str, name: &str, nargs: usize) -> Option<ProbeDef> {
    if let Some(def) = runtime
        .table()
        .iter()
        .find(|d| d.provider == provider && d.probe == name)
    {
        return Some(def.clone());
    }
    (runtime == Runtime::Java && provider == "hotspot_jni")
        .then(|| hotspot::jni_probe(name, nargs))
        .flatten()
}

/// What to attach: the probes asked for, and those attached only for their
/// semaphores (hidden).
pub struct Plan<'a> {
    pub visible: Vec<(&'a RuntimeObject, ProbeDef)>,
    pub hidden: Vec<(&'a RuntimeObject, ProbeDef)>,
}

/// Probes grouped by which of their arguments are strings.
pub type Layouts<'a> = BTreeMap<Vec<usize>, Vec<(&'a RuntimeObject, ProbeDef)>>;

impl<'a> Plan<'a> {
    /// The visible probes grouped by string layout: one engine session each.
    pub fn layouts(&self) -> Layouts<'a> {
        let mut layouts = Layouts::new();
        for (object, def) in &self.visible {
            layouts
                .entry(def.string_args())
                .or_default()
                .push((*object, def.clone()));
        }
        layouts
    }
}

/// The tapset probes of `objects` whose event names match `wanted`, and
/// their hidden companions.
pub fn plan<'a>(objects: &'a [RuntimeObject], wanted: &[Glob]) -> Result<Plan<'a>, String> {
    let runtime = objects
        .first()
        .map(|o| o.runtime)
        .ok_or("no runtime object to trace")?;
    let mut visible: Vec<(&RuntimeObject, ProbeDef)> = Vec::new();
    let mut hidden: Vec<(&RuntimeObject, ProbeDef)> = Vec::new();
    for object in objects {
        let defs: Vec<ProbeDef> = object
            .probes()
            .filter_map(|(provider, name, nargs)| probe_def(runtime, provider, name, nargs))
            .collect();
        for def in &defs {
            if wanted.iter().any(|g| g.matches(&def.event)) {
                visible.push((object, def.clone()));
            }
        }
        for def in &defs {
            let needed = visible
                .iter()
                .any(|(_, v)| python::companions(&v.event) == Some(def.event.as_str()));
            let shown = visible.iter().any(|(_, v)| v.event == def.event);
            if needed && !shown {
                hidden.push((object, def.clone()));
            }
        }
    }
    if visible.is_empty() {
        return Err(format!(
            "no {runtime} tapset event matches {} in {}",
            wanted
                .iter()
                .map(|g| format!("`{}`", g.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
            objects
                .iter()
                .map(|o| o.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(Plan { visible, hidden })
}

/// A counted key: each field's value by name, and its hits.
pub type CountRow = (Vec<(&'static str, String)>, u64);

/// Bytes of a name kept in a counting key (Python file paths can be long).
const COUNT_KEY_BYTES: usize = 128;

struct Counting {
    session: Session,
    fields: Vec<&'static str>,
}

struct Group {
    session: Session,
    /// `provider:name` → index into `Tracer::defs`.
    by_label: HashMap<String, usize>,
}

/// What one attached tapset probe is.
struct Attached {
    def: ProbeDef,
    name: Rc<str>,
    locations: usize,
}

pub struct Tracer {
    groups: Vec<Group>,
    /// Counting mode: calls per key in the kernel, no records.
    counting: Option<Counting>,
    /// Attached only for their semaphores; their hits are counted, not seen.
    hidden: Option<Session>,
    hidden_events: Vec<String>,
    defs: Vec<Attached>,
    hits: BTreeMap<Rc<str>, u64>,
    pending: Vec<NamedEvent>,
    jdk: Option<Jdk>,
}

/// What attaching found: one line each for the user.
pub type Warnings = Vec<String>;

/// Whether strings may be read without faulting pages in: when every
/// runtime traced keeps its strings in touched memory.
fn strings_in_touched_memory(objects: &[RuntimeObject]) -> bool {
    !objects.is_empty()
        && objects
            .iter()
            .all(|o| o.runtime.strings_in_touched_memory())
}

impl Tracer {
    /// Attach the events of `objects` whose names match one of `wanted`.
    /// `ring_pages`: data pages of each per-CPU ring buffer (0: the engine's
    /// default). `stop`: checked before each location; attaching gives up
    /// (and what was attached is released) when it says so.
    pub fn attach(
        target: Target,
        objects: &[RuntimeObject],
        wanted: &[Glob],
        ring_pages: usize,
        filter: Option<&uprobe_engine::Filter>,
        stop: fn() -> bool,
    ) -> Result<(Tracer, Warnings), String> {
        let plan = plan(objects, wanted)?;
        let mut tracer = Tracer::empty(objects);
        let mut warnings = Vec::new();
        // One session for every visible probe, each attached with its own
        // string arguments: one ring, one set of links per file.
        let options = SessionOptions {
            ring_pages,
            // On the probes' own arguments, evaluated in the kernel.
            filter: filter.cloned(),
            no_fault_in: strings_in_touched_memory(objects),
            ..Default::default()
        };
        let mut session = Session::new(target, options).map_err(|e| e.to_string())?;
        session.stop_attaching_when(stop);
        let mut by_label = HashMap::new();
        for (strings, members) in plan.layouts() {
            for (object, def) in members {
                let index = tracer.index_of(&def);
                let locations = attach_one(&mut session, object, &def, &strings, &mut warnings)?;
                tracer.defs[index].locations += locations;
                by_label.insert(format!("{}:{}", def.provider, def.probe), index);
            }
        }
        tracer.groups.push(Group { session, by_label });
        tracer.attach_hidden(target, plan.hidden, stop, &mut warnings)?;
        Ok((tracer, warnings))
    }

    /// Probes attached only for their semaphores, counted, not seen.
    fn attach_hidden(
        &mut self,
        target: Target,
        hidden: Vec<(&RuntimeObject, ProbeDef)>,
        stop: fn() -> bool,
        warnings: &mut Warnings,
    ) -> Result<(), String> {
        if hidden.is_empty() {
            return Ok(());
        }
        let options = SessionOptions {
            count_only: true,
            ..Default::default()
        };
        let mut session = Session::new(target, options).map_err(|e| e.to_string())?;
        session.stop_attaching_when(stop);
        for (object, def) in hidden {
            attach_one(&mut session, object, &def, &[], warnings)?;
            if !self.hidden_events.contains(&def.event) {
                self.hidden_events.push(def.event.clone());
            }
        }
        self.hidden = Some(session);
        Ok(())
    }

    /// Nothing attached yet, for `objects`.
    fn empty(objects: &[RuntimeObject]) -> Tracer {
        Tracer {
            groups: Vec::new(),
            counting: None,
            hidden: None,
            hidden_events: Vec::new(),
            defs: Vec::new(),
            hits: BTreeMap::new(),
            pending: Vec::new(),
            jdk: objects
                .iter()
                .find(|o| o.runtime == Runtime::Java)
                .map(|o| Jdk::for_libjvm(&o.path)),
        }
    }

    fn index_of(&mut self, def: &ProbeDef) -> usize {
        if let Some(i) = self.defs.iter().position(|a| a.def == *def) {
            return i;
        }
        self.defs.push(Attached {
            name: Rc::from(def.event.as_str()),
            def: def.clone(),
            locations: 0,
        });
        self.defs.len() - 1
    }

    /// Count the hits of the events matching `wanted` per value of their
    /// `fields` (string fields, in key order) in the kernel: no record
    /// crosses to user space per hit (`stap-sdt calls` without `-L`).
    /// Read the result with [`counts`](Self::counts).
    pub fn attach_counting(
        target: Target,
        objects: &[RuntimeObject],
        wanted: &[Glob],
        fields: &[&'static str],
        filter: Option<&uprobe_engine::Filter>,
        stop: fn() -> bool,
    ) -> Result<(Tracer, Warnings), String> {
        let plan = plan(objects, wanted)?;
        let mut keys = Vec::new();
        let mut counted = Vec::new();
        for name in fields {
            // One key for every probe: each field must sit at the same
            // argument in all of them (one runtime's entry event does).
            let mut at = None;
            for (_, def) in &plan.visible {
                let field = def
                    .fields
                    .iter()
                    .find(|f| f.name == *name)
                    .ok_or_else(|| format!("{} has no field {name}", def.event))?;
                if at.is_some_and(|a| a != field.arg) {
                    return Err(format!(
                        "{}: field {name} is not at the same argument in every object",
                        def.event
                    ));
                }
                at = Some(field.arg);
                if let Decode::LenStr { len } = field.decode {
                    counted.push((field.arg, len));
                }
            }
            keys.push(uprobe_engine::KeyPart::Str(at.unwrap_or(0)));
        }
        counted.sort_unstable();
        counted.dedup();
        let options = SessionOptions {
            aggregate: Some(uprobe_engine::AggSpec {
                keys,
                value: uprobe_engine::AggValue::Count,
                buckets: uprobe_engine::Buckets::Log2,
                key_string_bytes: COUNT_KEY_BYTES,
            }),
            counted_strings: counted,
            string_bytes: COUNT_KEY_BYTES,
            filter: filter.cloned(),
            no_fault_in: strings_in_touched_memory(objects),
            ..Default::default()
        };
        let mut session = Session::new(target, options).map_err(|e| e.to_string())?;
        session.stop_attaching_when(stop);
        let mut tracer = Tracer::empty(objects);
        let mut warnings = Vec::new();
        for (object, def) in &plan.visible {
            let index = tracer.index_of(def);
            let locations = attach_one(&mut session, object, def, &[], &mut warnings)?;
            tracer.defs[index].locations += locations;
        }
        tracer.counting = Some(Counting {
            session,
            fields: fields.to_vec(),
        });
        tracer.attach_hidden(target, plan.hidden, stop, &mut warnings)?;
        Ok((tracer, warnings))
    }

    /// Counting mode: (field values by name, hits) per distinct key.
    pub fn counts(&self) -> Option<Vec<CountRow>> {
        let counting = self.counting.as_ref()?;
        Some(
            counting
                .session
                .aggregates()
                .into_iter()
                .map(|row| {
                    let values = counting
                        .fields
                        .iter()
                        .zip(row.key)
                        .map(|(name, v)| {
                            let text = match v {
                                uprobe_engine::KeyValue::Str(s)
                                | uprobe_engine::KeyValue::Probe(s) => s,
                                uprobe_engine::KeyValue::Int(n) => n.to_string(),
                                uprobe_engine::KeyValue::Stack { .. } => String::new(),
                            };
                            (*name, text)
                        })
                        .collect();
                    (values, row.stats.count)
                })
                .collect(),
        )
    }

    /// Enable every session: from here on hits are recorded.
    pub fn start(&mut self) -> Result<(), String> {
        if let Some(c) = &mut self.counting {
            c.session.start().map_err(|e| e.to_string())?;
        }
        if let Some(hidden) = &mut self.hidden {
            hidden.start().map_err(|e| e.to_string())?;
        }
        for group in &mut self.groups {
            group.session.start().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Attached events and their number of locations.
    pub fn events(&self) -> impl Iterator<Item = (&str, usize)> {
        self.defs
            .iter()
            .map(|a| (a.def.event.as_str(), a.locations))
    }

    /// Events attached only to raise their semaphores (not delivered).
    pub fn hidden_events(&self) -> &[String] {
        &self.hidden_events
    }

    /// Wait up to `timeout_ms`, then deliver the hits older than the reorder
    /// window, oldest first.
    pub fn poll(&mut self, timeout_ms: i32, handler: impl FnMut(&NamedEvent)) {
        self.collect(timeout_ms);
        let horizon = now_ns().saturating_sub(REORDER_WINDOW_NS);
        self.deliver(Some(horizon), handler);
    }

    /// Detach, collect what remains and deliver everything (a stopped
    /// session hands out the records it held back for ordering).
    pub fn finish(&mut self, handler: impl FnMut(&NamedEvent)) {
        for group in &mut self.groups {
            group.session.stop();
        }
        if let Some(c) = &mut self.counting {
            c.session.stop();
        }
        if let Some(hidden) = &mut self.hidden {
            hidden.stop();
        }
        self.collect(0);
        self.deliver(None, handler);
    }

    fn collect(&mut self, timeout_ms: i32) {
        if let Some(c) = &mut self.counting {
            // The kernel counts; nothing to read meanwhile.
            c.session.poll(timeout_ms, |_| {});
            return;
        }
        let defs = &self.defs;
        let pending = &mut self.pending;
        let hits = &mut self.hits;
        // Each session waits its share, so a busy one is not left filling
        // its rings while a quiet one waits out the whole timeout.
        let share = timeout_ms / self.groups.len().max(1) as i32;
        for group in &mut self.groups {
            let by_label = &group.by_label;
            group.session.poll(share, |event| {
                let Some(&index) = by_label.get(&event.probe.label) else {
                    return;
                };
                let attached = &defs[index];
                *hits.entry(attached.name.clone()).or_insert(0) += 1;
                pending.push(NamedEvent {
                    name: attached.name.clone(),
                    time_ns: event.time_ns,
                    pid: event.pid,
                    tid: event.tid,
                    cpu: event.cpu,
                    comm: event.comm.to_string(),
                    fields: decode::fields(&attached.def, &event.args),
                });
            });
        }
    }

    fn deliver(&mut self, horizon: Option<u128>, mut handler: impl FnMut(&NamedEvent)) {
        self.pending.sort_by_key(|e| e.time_ns);
        let ready = match horizon {
            Some(h) => self.pending.partition_point(|e| e.time_ns <= h),
            None => self.pending.len(),
        };
        for event in self.pending.drain(..ready) {
            handler(&event);
        }
    }

    /// Hits seen per event so far.
    pub fn hits(&self, event: &str) -> u64 {
        self.hits.get(event).copied().unwrap_or(0)
    }

    /// Records the kernel dropped (ring buffers full), or in counting mode
    /// hits whose key found the key map full.
    pub fn lost(&self) -> u64 {
        self.groups.iter().map(|g| g.session.lost()).sum::<u64>()
            + self.counting.as_ref().map_or(0, |c| c.session.lost_keys())
    }

    /// The JDK of the traced libjvm.so, when tracing Java.
    pub fn jdk(&self) -> Option<&Jdk> {
        self.jdk.as_ref()
    }

    /// Gated probe classes among the attached events, each with its events.
    pub fn gates(&self) -> BTreeMap<Gate, Vec<&str>> {
        let mut out: BTreeMap<Gate, Vec<&str>> = BTreeMap::new();
        for a in &self.defs {
            if let Some(gate) = a.def.gate {
                out.entry(gate).or_default().push(&a.def.event);
            }
        }
        out
    }

    /// One sentence per gated probe class that saw no hit: which JVM flag
    /// wakes those probes.
    pub fn dormant_advice(&self) -> Vec<String> {
        let Some(jdk) = &self.jdk else {
            return Vec::new();
        };
        self.gates()
            .into_iter()
            .filter(|(_, events)| events.iter().all(|e| self.hits(e) == 0))
            .map(|(gate, events)| {
                format!(
                    "no hits on {}: HotSpot fires these probes only when the JVM is started \
                     with {} ({})",
                    events.join(", "),
                    jdk.flag(gate),
                    jdk.describe()
                )
            })
            .collect()
    }
}

fn attach_one(
    session: &mut Session,
    object: &RuntimeObject,
    def: &ProbeDef,
    strings: &[usize],
    warnings: &mut Warnings,
) -> Result<usize, String> {
    let selector = Selector::Usdt {
        path: Some(object.path.display().to_string()),
        provider: Glob::new(def.provider),
        name: Glob::new(&def.probe),
    };
    let reports = session
        .attach_with(&selector, uprobe_engine::SiteRole::Hit, strings)
        .map_err(|e| format!("{} ({}:{}): {e}", def.event, def.provider, def.probe))?;
    for report in &reports {
        for warning in &report.warnings {
            warnings.push(format!(
                "{} at {}+0x{:x}: {warning}",
                def.event,
                report.path.display(),
                report.offset
            ));
        }
    }
    Ok(reports.len())
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::object_at;
    use std::path::Path;

    fn events(plan: &[(&RuntimeObject, ProbeDef)]) -> Vec<String> {
        let mut v: Vec<String> = plan.iter().map(|(_, d)| d.event.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn python_function_probes_bring_a_hidden_line_probe() {
        let Some(python) = object_at(Runtime::Python, Path::new("/usr/bin/python3.11")) else {
            return;
        };
        let objects = [python];
        let p = plan(&objects, &[Glob::new("python.function.*")]).unwrap();
        assert_eq!(
            events(&p.visible),
            ["python.function.entry", "python.function.return"]
        );
        assert_eq!(events(&p.hidden), ["python.line"]);
        // Asked for, `line` is visible and nothing is hidden.
        let p = plan(&objects, &[Glob::new("python.*")]).unwrap();
        assert!(events(&p.visible).contains(&"python.line".to_string()));
        assert!(p.hidden.is_empty());
        let p = plan(&objects, &[Glob::new("python.gc.*")]).unwrap();
        assert!(p.hidden.is_empty());
        let e = plan(&objects, &[Glob::new("python.nothing")])
            .err()
            .unwrap();
        assert!(
            e.contains("`python.nothing`") && e.contains("/usr/bin/python3.11"),
            "{e}"
        );
    }

    #[test]
    fn hotspot_sessions_follow_string_layouts() {
        let libjvm = Path::new("/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so");
        let Some(jvm) = object_at(Runtime::Java, libjvm) else {
            return;
        };
        let objects = [jvm];
        let wanted = [
            Glob::new("hotspot.method.entry"),
            Glob::new("hotspot.method.return"),
            Glob::new("hotspot.class.loaded"),
            Glob::new("hotspot.gc.*"),
            Glob::new("hotspot.jni.GetVersion.*"),
        ];
        let p = plan(&objects, &wanted).unwrap();
        let layouts: Vec<(Vec<usize>, Vec<String>)> = p
            .layouts()
            .into_iter()
            .map(|(k, v)| (k, events(&v)))
            .collect();
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            layouts,
            [
                (
                    vec![],
                    strings(&[
                        "hotspot.gc.begin",
                        "hotspot.gc.end",
                        "hotspot.jni.GetVersion.entry",
                        "hotspot.jni.GetVersion.return"
                    ])
                ),
                (vec![0], strings(&["hotspot.class.loaded"])),
                (
                    vec![1, 3, 5],
                    strings(&["hotspot.method.entry", "hotspot.method.return"])
                ),
            ]
        );
    }
}
