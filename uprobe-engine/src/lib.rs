//! Attach to SDT probes and function symbols in live processes with
//! uprobes, fetch their arguments in the kernel at the hit, and deliver
//! typed events in time order.
//!
//! ```no_run
//! use uprobe_engine::{Selector, Session, SessionOptions, Target};
//! let mut session = Session::new(Target::AllProcesses, SessionOptions::default())?;
//! let selector = Selector::parse("/usr/bin/python3.11:python:function__entry")?;
//! for report in session.attach(&selector)? {
//!     for warning in &report.warnings {
//!         eprintln!("{}: {warning}", report.label);
//!     }
//! }
//! session.start()?;
//! loop {
//!     session.poll(100, |event| println!("{} {} {:?}", event.pid, event.probe.label, event.args));
//! }
//! # Ok::<(), uprobe_engine::Error>(())
//! ```
//!
//! The pipeline: [`plan`] (selectors → sites with typed argument
//! locations; pure) → [`lower`] (sites → BPF programs) → attach (one
//! `uprobe_multi` link per file and program, semaphores raised by the
//! kernel) → one BPF ring buffer of records, or per-site counts in a map.
//! Every kernel object is a file descriptor the session owns: whatever
//! ends the tracer, even SIGKILL, the kernel removes them all, lowers the
//! semaphores, and nothing is left in tracefs.

pub mod bpf;
mod error;
pub mod expr;
mod forks;
pub mod format;
pub mod inproc;
pub mod lower;
pub mod mapping;
pub mod perf;
pub mod plan;
pub mod resolve;
mod ring;
mod selector;
mod session;
pub mod stacks;
mod tracefs;
pub mod user_agg;
mod value;

pub use error::Error;
pub use expr::{Filter, ParseError};
pub use lower::aggregate::{AggSpec, AggValue, Buckets, KeyPart};
pub use plan::{ArgInfo, Fetch, ProbeInfo, ValueKind};
pub use selector::Selector;
pub use session::{
    AggRow, AttachReport, Event, KeyValue, OwnedEvent, Session, SessionOptions, SiteRole, Stats,
    Target,
};
pub use value::Value;

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}
