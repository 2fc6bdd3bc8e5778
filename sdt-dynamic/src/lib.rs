//! Static probes defined at run time, for programs that cannot put a
//! `.note.stapsdt` into a binary they build: interpreters and their
//! bindings (`python/`, the `stap_sdt` package), plugins, generated code.
//!
//! A [`Provider`] collects probes with up to 12 typed arguments; [`load`]
//! writes an ELF shared object with one fire function per probe, its
//! `.note.stapsdt` notes, a `.note.stapsdt.types` note per probe and a
//! semaphore per probe ([`elf`]), puts it in a memfd (or a directory,
//! [`Placement`]) and `dlopen`s it. Every tool that reads SDT probes from a
//! process then sees them. The C ABI (`include/sdt_dynamic.h`, the
//! `libsdt_dynamic.so` this crate builds) is [`capi`].
//!
//! See `docs/dynamic-probes.md`.
//!
//! [`load`]: Provider::load

mod arch;
mod arg;
pub mod capi;
pub mod elf;
mod load;
mod provider;

pub use arch::Arch;
pub use arg::{Arg, ArgKind, MAX_SLOTS};
pub use load::{Placement, DIR_ENV};
pub use provider::{Probe, ProbeSlot, Provider};

use std::fmt;

/// What went wrong, naming the provider or probe concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Error {
        Error(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}
