//! Read SystemTap SDT (USDT) probes from ELF objects.
//!
//! This crate is the one description of a probe in the project: the
//! `stap-sdt` command line, the uprobe engine, the GDB plugin (through
//! `stap-sdt list --json`) and the runtime bindings all consume its types.
//!
//! ```no_run
//! let objects = stapsdt_reader::read_path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6".as_ref())?;
//! for object in &objects {
//!     for probe in &object.probes {
//!         println!("{}:{} at {} locations", probe.provider, probe.name, probe.locations.len());
//!     }
//! }
//! # Ok::<(), stapsdt_reader::Error>(())
//! ```
//!
//! Addresses are link-time virtual addresses (after the prelink adjustment
//! described in [`Location::address`]); file offsets are what uprobes take.
//! [`process`] maps both to run-time addresses in a live process.

pub mod args;
pub mod cheap_site;
mod elf;
pub mod filter;
pub mod note;
pub mod process;
pub mod resolve;
mod segments;
pub mod source;
mod symbols;
pub mod types;
pub use symbols::{function_symbols, FunctionSymbol};

use serde::Serialize;
use std::fmt;
use std::path::Path;

pub use args::{parse_args, Arch, Arg, Memory, Operand, Register};
pub use elf::{needed_libraries, read_bytes, read_objects, read_path, read_path_with, ReadOptions};
pub use types::{parse_type_list, ArgType};

/// One ELF object (a file, or a member of a static archive) and its probes.
#[derive(Debug, Clone, Serialize)]
pub struct Object {
    /// The path as given, or `archive.a(member.o)` for archive members.
    pub path: String,
    pub arch: Arch,
    /// 32 or 64.
    pub bits: u8,
    pub endian: Endianness,
    /// `exec`, `dyn`, `rel` or `core`/`other`.
    pub elf_type: &'static str,
    /// GNU build-id as lower-case hex, when the object has one.
    pub build_id: Option<String>,
    /// Address of the `.stapsdt.base` section, when present.
    pub stapsdt_base: Option<u64>,
    /// Probes in order of first appearance; each with every location.
    pub probes: Vec<Probe>,
    /// The process this object was found mapped in (`list -p`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Where to open the object's bytes when `path` does not name them: a
    /// memfd (`/memfd:NAME`, e.g. `sdt-dynamic`'s objects) or a deleted
    /// file mapped by the process is read, and attached to, through
    /// `/proc/PID/map_files/START-END`. Use [`Object::open_path`].
    #[serde(skip)]
    pub open_path: Option<String>,
    /// Run-time address minus link-time address in that process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_bias: Option<u64>,
    /// Problems that did not stop the reading (a broken note, an address
    /// outside every segment). Each names what it is about.
    pub diagnostics: Vec<String>,
}

impl Object {
    /// The path to open (or attach uprobes to) this object by.
    pub fn open_path(&self) -> &str {
        self.open_path.as_deref().unwrap_or(&self.path)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endianness {
    Little,
    Big,
}

/// A probe: one provider and name, with all of its locations.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub provider: String,
    pub name: String,
    pub locations: Vec<Location>,
    /// What each argument is (a string, a float, ...), when the object
    /// says so in a types note or the provider is a known one
    /// ([`types`]); one entry per argument of every location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<ArgType>>,
}

/// One probe site (one note).
#[derive(Debug, Clone, Serialize)]
pub struct Location {
    /// Link-time address of the probe site. When the note's base differs
    /// from the address of `.stapsdt.base` (the object was prelinked after
    /// the note was written) the difference has been added.
    pub address: u64,
    /// Offset of the site in the file, through the program headers; `None`
    /// for relocatable objects and for addresses outside every segment.
    pub file_offset: Option<u64>,
    /// The base address as the note holds it.
    pub note_base: u64,
    /// The semaphore (is-enabled counter), if the probe has one.
    pub semaphore: Option<Semaphore>,
    /// The argument string as the note holds it.
    pub args_raw: String,
    /// Each argument decoded.
    pub args: Vec<Arg>,
    /// Run-time address in a live process (set by [`process`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_address: Option<u64>,
    /// Source file and line of the site (set when asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<source::SourceLine>,
}

/// The `unsigned short` counter in `.probes` that tells the program a tracer
/// is attached.
#[derive(Debug, Clone, Serialize)]
pub struct Semaphore {
    /// Link-time address (prelink-adjusted like the location).
    pub address: u64,
    /// File offset, what the kernel's `ref_ctr_offset` takes.
    pub file_offset: Option<u64>,
    /// Run-time address in a live process (set by [`process`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_address: Option<u64>,
}

/// An input that could not be read at all. Names the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub input: String,
    pub message: String,
}

impl Error {
    pub fn new(input: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            input: input.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.input, self.message)
    }
}

impl std::error::Error for Error {}

/// What a file is, from its first bytes: used to skip non-ELF files quietly
/// when scanning directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Elf,
    Archive,
    Other,
}

/// Classify a file by its magic number, reading only its first bytes.
pub fn file_kind(path: &Path) -> std::io::Result<FileKind> {
    use std::io::Read;
    let mut magic = [0u8; 8];
    let mut file = std::fs::File::open(path)?;
    let mut filled = 0;
    while filled < magic.len() {
        match file.read(&mut magic[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(kind_of(&magic[..filled]))
}

pub(crate) fn kind_of(data: &[u8]) -> FileKind {
    if data.starts_with(b"\x7fELF") {
        FileKind::Elf
    } else if data.starts_with(b"!<arch>\n") || data.starts_with(b"!<thin>\n") {
        FileKind::Archive
    } else {
        FileKind::Other
    }
}
