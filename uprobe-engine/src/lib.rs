//! Attach to SDT probes and function symbols in live processes with
//! uprobes, fetch their arguments in the kernel at the hit, and deliver
//! typed events to a handler.
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
//! Kernel state is owned by values whose `Drop` releases it: perf events
//! (closing one unregisters its uprobe and lowers the probe's semaphore)
//! and tracefs uprobe events (removed from `uprobe_events`). A tracer killed
//! with SIGKILL leaves its tracefs events behind; the next [`Session`]
//! removes those of dead tracers (they are grouped by the tracer's pid).

pub mod bpf;
mod error;
pub mod fetchargs;
pub mod format;
pub mod perf;
pub mod resolve;
mod selector;
mod session;
pub mod tracefs;
mod value;

pub use error::Error;
pub use selector::Selector;
pub use session::{AttachReport, Event, ProbeInfo, Session, SessionOptions, Target};
pub use value::Value;
