//! Tapsets: named, decoded events from the SDT probes of CPython, HotSpot
//! and Perl, on top of `uprobe-engine`.
//!
//! - [`tapset`]: the data model (runtime, event name, SDT probe, fields and
//!   how each argument is decoded); [`python`], [`hotspot`], [`perl`]: the tables.
//! - [`discover`]: which object carries a runtime's probes (in a process,
//!   for a command, installed here).
//! - [`tracer`]: attach through the engine, deliver [`NamedEvent`]s in time order.
//! - [`jdk`]: JDK versions and the flags that wake HotSpot's gated probes.

pub mod decode;
pub mod discover;
pub mod hotspot;
pub mod jdk;
pub mod perl;
pub mod python;
pub mod tapset;
pub mod tracer;

pub use decode::{FieldValue, NamedEvent};
pub use discover::RuntimeObject;
pub use tapset::{Decode, FieldDef, Gate, ProbeDef, Runtime};
pub use tracer::Tracer;
