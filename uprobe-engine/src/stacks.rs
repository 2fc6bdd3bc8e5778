//! User stacks: from the instruction pointers the kernel collected at a
//! hit (`bpf_get_stack` with `BPF_F_USER_STACK`, frame-pointer unwinding)
//! to function names, source files and lines.
//!
//! ```no_run
//! use uprobe_engine::stacks::{folded, truncation, StackSymbolizer};
//! let mut symbolizer = StackSymbolizer::new();
//! # let (pid, ips): (u32, Vec<u64>) = (1, vec![]);
//! // At the first record of a process, while it still runs:
//! symbolizer.remember(pid)?;
//! // Any time later, even after it exited:
//! let frames = symbolizer.symbolize(pid, &ips)?;
//! for frame in &frames {
//!     println!("{frame}");
//! }
//! if let Some(why) = truncation(&frames, 127) {
//!     eprintln!("{why}");
//! }
//! println!("{} 1", folded(&frames));
//! # Ok::<(), uprobe_engine::Error>(())
//! ```
//!
//! Addresses become (file, file offset) pairs through a snapshot of
//! `/proc/PID/maps` taken when the process is first seen: the kernel's
//! stack holds virtual addresses, which mean nothing once the process is
//! gone, while a file offset stays valid as long as the file does. Files
//! are then symbolized by `blazesym` (ELF symbols, DWARF lines and inlined
//! functions, split debug info under `/usr/lib/debug`, Rust and C++
//! demangling), which keeps one parsed resolver per file for all
//! processes that map it.

use crate::Error;
use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};

/// What an executable mapping maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MappedObject {
    /// A file, reachable by this path from the process's mount namespace.
    File(PathBuf),
    /// A file deleted (or replaced) since it was mapped, or a memfd: the
    /// path no longer names the mapped contents.
    Deleted(PathBuf),
    /// The kernel's vDSO.
    Vdso,
    /// Memory not backed by a file: JIT code, `[vsyscall]`,
    /// `[anon:NAME]`; the name maps gives, empty when none.
    Anonymous(String),
}

/// One executable mapping of a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// Offset in the file of the byte mapped at `start`.
    pub offset: u64,
    pub object: MappedObject,
}

impl Mapping {
    fn contains(&self, ip: u64) -> bool {
        (self.start..self.end).contains(&ip)
    }

    /// The offset in the mapped object of the byte at `ip` (which this
    /// mapping contains).
    pub fn file_offset(&self, ip: u64) -> u64 {
        self.offset + (ip - self.start)
    }
}

/// The executable mappings of a process at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessMaps {
    /// Sorted by `start`; the kernel lists them so, and mappings never
    /// overlap.
    mappings: Vec<Mapping>,
}

impl ProcessMaps {
    /// Read `/proc/PID/maps`. A process that does not exist (or has
    /// exited) is an [`Error::Input`] saying so.
    pub fn read(pid: u32) -> Result<ProcessMaps, Error> {
        let path = format!("/proc/{pid}/maps");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(ProcessMaps::parse(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::Input(format!(
                "no process {pid} (it may have exited): cannot read its memory map for stacks"
            ))),
            Err(error) => Err(Error::Os {
                what: format!("reading {path}"),
                error,
            }),
        }
    }

    /// Parse the text of a `/proc/PID/maps` file, keeping the executable
    /// mappings (the only ones an instruction pointer can be in).
    /// Lines it does not understand are skipped: a snapshot that lacks a
    /// mapping only leaves that mapping's frames unnamed.
    pub fn parse(text: &str) -> ProcessMaps {
        let mut mappings: Vec<Mapping> = text.lines().filter_map(parse_line).collect();
        mappings.sort_by_key(|m| m.start);
        ProcessMaps { mappings }
    }

    pub fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }

    /// The mapping that holds `ip`.
    pub fn find(&self, ip: u64) -> Option<&Mapping> {
        let after = self.mappings.partition_point(|m| m.start <= ip);
        let candidate = self.mappings[..after].last()?;
        candidate.contains(ip).then_some(candidate)
    }

    /// The file and offset in it of `ip`, when `ip` is in a mapped file
    /// (deleted ones included, by their former path).
    pub fn file_offset(&self, ip: u64) -> Option<(&Path, u64)> {
        let mapping = self.find(ip)?;
        match &mapping.object {
            MappedObject::File(path) | MappedObject::Deleted(path) => {
                Some((path, mapping.file_offset(ip)))
            }
            MappedObject::Vdso | MappedObject::Anonymous(_) => None,
        }
    }
}

/// One line of `/proc/PID/maps`:
/// `START-END PERMS OFFSET MAJOR:MINOR INODE   PATH`, PATH optional and
/// possibly holding spaces, hence the field-by-field split.
fn parse_line(line: &str) -> Option<Mapping> {
    fn field<'a>(rest: &mut &'a str) -> &'a str {
        let s = rest.trim_start_matches(' ');
        let end = s.find(' ').unwrap_or(s.len());
        let (f, r) = s.split_at(end);
        *rest = r;
        f
    }
    let mut rest = line;
    let (start, end) = field(&mut rest).split_once('-')?;
    let perms = field(&mut rest);
    let offset = field(&mut rest);
    let _device = field(&mut rest);
    let _inode = field(&mut rest);
    if perms.as_bytes().get(2) != Some(&b'x') {
        return None;
    }
    let name = rest.trim_start_matches(' ');
    let object = if name.is_empty() {
        MappedObject::Anonymous(String::new())
    } else if name == "[vdso]" {
        MappedObject::Vdso
    } else if name.starts_with('[') || !name.starts_with('/') {
        MappedObject::Anonymous(name.to_string())
    } else if let Some(path) = name.strip_suffix(" (deleted)") {
        MappedObject::Deleted(unescape_path(path))
    } else {
        MappedObject::File(unescape_path(name))
    };
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        offset: u64::from_str_radix(offset, 16).ok()?,
        object,
    })
}

/// The kernel writes a newline in a mapped path as `\012` so that each
/// mapping stays on one line; undo that (the only escape it makes).
fn unescape_path(path: &str) -> PathBuf {
    PathBuf::from(path.replace("\\012", "\n"))
}

/// One frame of a user stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// As the kernel collected it: the probed instruction for the first
    /// frame, a return address for the others.
    pub ip: u64,
    /// The mapped file (its path when mapped, also when deleted since),
    /// `[vdso]`, or the name of an anonymous mapping; `None` when `ip` is
    /// in no executable mapping known for the process.
    pub module: Option<PathBuf>,
    /// The function, demangled.
    pub symbol: Option<String>,
    /// From the function's start to `ip`.
    pub offset_in_symbol: u64,
    /// Source file and line (DWARF), in `symbol` itself: at a call to an
    /// inlined function, the line of that call.
    pub file: Option<PathBuf>,
    pub line: Option<u32>,
    /// Functions inlined into `symbol` at `ip`, outermost first; the last
    /// one is where `ip` really is.
    pub inlined: Vec<InlinedCall>,
}

/// A function inlined at a frame's address (there is no call, hence no
/// frame of its own, but the source says it is one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlinedCall {
    pub symbol: String,
    pub file: Option<PathBuf>,
    pub line: Option<u32>,
}

impl Frame {
    /// A frame with nothing known but its address.
    pub fn unknown(ip: u64) -> Frame {
        Frame {
            ip,
            module: None,
            symbol: None,
            offset_in_symbol: 0,
            file: None,
            line: None,
            inlined: Vec::new(),
        }
    }

    /// The frame's names as a stack reads, innermost first: the inlined
    /// functions (deepest first), then the function itself;
    /// `[module]` or `[unknown]` when it has no symbol.
    fn names_innermost_first(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inlined
            .iter()
            .rev()
            .map(|i| i.symbol.clone())
            .collect();
        names.push(match (&self.symbol, &self.module) {
            (Some(symbol), _) => symbol.clone(),
            (None, Some(module)) => format!(
                "[{}]",
                module
                    .file_name()
                    .unwrap_or(module.as_os_str())
                    .to_string_lossy()
            ),
            (None, None) => "[unknown]".to_string(),
        });
        names
    }
}

/// `  0x55d0c0ab1234 level2+0x1c (/tmp/x/fixture) [fixture.c:12]`: the
/// source file by its name only, to keep lines short (the full path is in
/// [`Frame::file`]). Functions inlined at the address come first, each on
/// its own line as GDB shows them, marked `(inlined)`.
impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn source(
            f: &mut fmt::Formatter<'_>,
            file: &Option<PathBuf>,
            line: Option<u32>,
        ) -> fmt::Result {
            if let Some(file) = file {
                let name = file.file_name().unwrap_or(file.as_os_str());
                write!(f, " [{}", name.to_string_lossy())?;
                if let Some(line) = line {
                    write!(f, ":{line}")?;
                }
                f.write_str("]")?;
            }
            Ok(())
        }
        for inlined in self.inlined.iter().rev() {
            write!(f, "  0x{:x} {} (inlined)", self.ip, inlined.symbol)?;
            source(f, &inlined.file, inlined.line)?;
            writeln!(f)?;
        }
        write!(f, "  0x{:x} ", self.ip)?;
        match &self.symbol {
            Some(symbol) => write!(f, "{symbol}+0x{:x}", self.offset_in_symbol)?,
            None => f.write_str("??")?,
        }
        if let Some(module) = &self.module {
            write!(f, " ({})", module.display())?;
        }
        source(f, &self.file, self.line)
    }
}

/// A stack (innermost frame first, as collected) in the folded form
/// `flamegraph.pl` and `inferno` read: `main;level1;level2`, outermost
/// first. Frames without a symbol appear as `[libfoo.so]` (or `[unknown]`)
/// so that they still group by object; `;` in a name (never in C, Rust or
/// C++ names, but a JIT may write anything) becomes `:`.
pub fn folded(frames: &[Frame]) -> String {
    let mut names: Vec<String> = frames
        .iter()
        .flat_map(Frame::names_innermost_first)
        .map(|n| n.replace(';', ":"))
        .collect();
    names.reverse();
    names.join(";")
}

/// Why a stack is probably not whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Truncation {
    /// It has as many frames as were asked for.
    DepthLimit(usize),
    /// The frame-pointer chain ended before reaching the program's or the
    /// thread's start: a function on the way was built without frame
    /// pointers. `last` is the outermost frame that was found.
    FramePointers { last: Box<Frame> },
}

/// Functions a whole user stack ends in: where the C library starts the
/// program (`_start`, `__libc_start_call_main`, `__libc_start_main`) or a
/// thread (`start_thread`, `clone3`, musl's `start`), and `main` itself,
/// because glibc's start-up code is not built with frame pointers and,
/// stripped as distributions ship it, has no names for the frames below.
const STACK_ROOTS: &[&str] = &[
    "_start",
    "__libc_start_main",
    "__libc_start_main_impl",
    "__libc_start_call_main",
    "main",
    "start_thread",
    "clone",
    "clone3",
    "__clone",
    "__clone3",
    "__clone_internal",
    "thread_start",
    "start",
    "start_c",
    "_start_c",
];

/// Whether `frames` (as [`StackSymbolizer::symbolize`] gives them, with
/// at most `max_depth` asked of the kernel) looks cut short, and why; its
/// `Display` tells the user what to do. A heuristic: a stack is taken as
/// whole when one of its frames is a start-up function (see the list
/// above), or when the outermost one is an unnamed address in the C
/// library, which is where `start_thread` and `__libc_start_call_main`
/// are in a stripped libc.
pub fn truncation(frames: &[Frame], max_depth: usize) -> Option<Truncation> {
    let last = frames.last()?;
    let is_root = |name: &str| STACK_ROOTS.contains(&name);
    let reaches_root = frames.iter().any(|frame| {
        frame.symbol.as_deref().is_some_and(is_root)
            || frame.inlined.iter().any(|i| is_root(&i.symbol))
    });
    let ends_in_libc = last.symbol.is_none()
        && last.module.as_ref().is_some_and(|m| {
            m.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libc.so"))
        });
    if reaches_root || ends_in_libc {
        None
    } else if frames.len() >= max_depth {
        Some(Truncation::DepthLimit(max_depth))
    } else {
        Some(Truncation::FramePointers {
            last: Box::new(last.clone()),
        })
    }
}

impl fmt::Display for Truncation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Truncation::DepthLimit(depth) => write!(
                f,
                "the stack has the {depth} frames asked for and may go deeper"
            ),
            Truncation::FramePointers { last } => {
                let at = last.names_innermost_first().pop().unwrap_or_default();
                write!(f, "the stack may be cut short after {at}")?;
                if let Some(module) = &last.module {
                    write!(f, " in {}", module.display())?;
                }
                f.write_str(
                    ": the kernel follows frame pointers, and a function there or just above it \
                     was built without them. Rebuild that code with -fno-omit-frame-pointer \
                     (Rust: RUSTFLAGS='-C force-frame-pointers=yes'); most distributions build \
                     their libraries without frame pointers (Fedora 38 and Ubuntu 24.04 and \
                     later keep them)",
                )
            }
        }
    }
}

/// What was learnt of a process when it was first seen.
struct Remembered {
    maps: ProcessMaps,
    /// Files the process maps that cannot be opened by their path later
    /// (deleted, or in another mount namespace), kept open from
    /// `/proc/PID/map_files` while the process lived; by mapping start.
    opened: HashMap<u64, Rc<File>>,
    /// Addresses in no mapping even after reading the map again.
    misses: HashSet<u64>,
}

/// Symbolizes the user stacks of many processes, including ones that have
/// exited since [`remember`](Self::remember) saw them. Not `Send`: the
/// parsed files are reference-counted without atomics.
pub struct StackSymbolizer {
    symbolizer: Symbolizer,
    processes: HashMap<u32, Remembered>,
    /// Our own vDSO, written to a file once: every process of this kernel
    /// (and our architecture) maps the same image, and blazesym reads
    /// objects from files.
    vdso: Option<Option<tempfile::NamedTempFile>>,
    perf_maps: HashMap<u32, PerfMap>,
    /// The files of [`Remembered::opened`] by (device, inode), so that
    /// processes mapping the same file (all the processes of a container
    /// map its libc) share one descriptor, and blazesym parses it once.
    open_files: HashMap<(u64, u64), Weak<File>>,
}

impl Default for StackSymbolizer {
    fn default() -> Self {
        Self::new()
    }
}

impl StackSymbolizer {
    /// With source files and lines where there is DWARF.
    pub fn new() -> StackSymbolizer {
        Self::with_source_lines(true)
    }

    /// `source_lines: false` skips DWARF line tables and inlined
    /// functions: names come from ELF symbols only, which is quicker on
    /// big binaries (`--stack` without `--source`).
    pub fn with_source_lines(source_lines: bool) -> StackSymbolizer {
        StackSymbolizer {
            symbolizer: Symbolizer::builder()
                .enable_code_info(source_lines)
                .enable_inlined_fns(source_lines)
                .enable_demangling(false)
                .build(),
            processes: HashMap::new(),
            vdso: None,
            perf_maps: HashMap::new(),
            open_files: HashMap::new(),
        }
    }

    /// Snapshot the memory map of `pid` if it is not known yet, so that
    /// its stacks can be symbolized after it exits. Call it at the first
    /// record of each process, while the process still runs.
    pub fn remember(&mut self, pid: u32) -> Result<(), Error> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.processes.entry(pid) {
            slot.insert(snapshot(pid, &mut self.open_files)?);
        }
        Ok(())
    }

    /// Drop what is known of `pid` (it exited, or its pid may be reused,
    /// or it called exec and maps other files now).
    pub fn forget(&mut self, pid: u32) {
        self.processes.remove(&pid);
        self.perf_maps.remove(&pid);
    }

    /// Name the frames of a stack of `pid`, innermost first as the kernel
    /// collected it: one [`Frame`] per address, in the same order.
    /// Remembers `pid` first if needed, which fails if it has exited
    /// (then [`Frame::unknown`] gives frames with addresses only).
    pub fn symbolize(&mut self, pid: u32, ips: &[u64]) -> Result<Vec<Frame>, Error> {
        self.remember(pid)?;
        // A library loaded after the snapshot (dlopen) is not in it: read
        // the map again if the process still runs. Only for addresses not
        // tried before: a stack cut short often ends in the same junk
        // address, and reading a big map at every record would cost more
        // than the record.
        let known = &self.processes[&pid];
        let unknown: Vec<u64> = ips
            .iter()
            .copied()
            .filter(|&ip| known.maps.find(ip).is_none() && !known.misses.contains(&ip))
            .collect();
        if !unknown.is_empty() {
            if let Ok(mut fresh) = snapshot(pid, &mut self.open_files) {
                // The fresh map replaces the old one whole: addresses are
                // looked up in it only, so a library unmapped since cannot
                // be named any more.
                if let Some(old) = self.processes.get_mut(&pid) {
                    fresh.misses = std::mem::take(&mut old.misses);
                }
                self.processes.insert(pid, fresh);
            }
            let process = self.processes.get_mut(&pid).expect("remembered");
            if process.misses.len() > 4096 {
                // Bounded memory; at worst a few more reads of the map.
                process.misses.clear();
            }
            for ip in unknown {
                if process.maps.find(ip).is_none() {
                    process.misses.insert(ip);
                }
            }
        }
        let process = &self.processes[&pid];

        let mut frames: Vec<Frame> = ips.iter().map(|&ip| Frame::unknown(ip)).collect();
        // Addresses to look up per object, batched: one call per file.
        let mut by_object: HashMap<PathBuf, Vec<(usize, u64)>> = HashMap::new();
        for (index, frame) in frames.iter_mut().enumerate() {
            // Every frame but the first holds a return address: the
            // instruction after the call, which may already belong to the
            // next function or line (a call that does not return ends a
            // function). Look up the byte before it, in the call.
            let lookup = if index == 0 {
                frame.ip
            } else {
                frame.ip.saturating_sub(1)
            };
            let Some(mapping) = process.maps.find(lookup) else {
                continue;
            };
            let offset = mapping.file_offset(lookup);
            let readable = match &mapping.object {
                MappedObject::File(path) | MappedObject::Deleted(path) => {
                    frame.module = Some(path.clone());
                    match process.opened.get(&mapping.start) {
                        Some(file) => {
                            Some(PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())))
                        }
                        None if matches!(mapping.object, MappedObject::File(_)) => {
                            Some(path.clone())
                        }
                        None => None,
                    }
                }
                MappedObject::Vdso => {
                    frame.module = Some(PathBuf::from("[vdso]"));
                    vdso_file(&mut self.vdso)
                }
                MappedObject::Anonymous(name) => {
                    if !name.is_empty() {
                        frame.module = Some(PathBuf::from(name));
                    }
                    None
                }
            };
            if let Some(readable) = readable {
                by_object.entry(readable).or_default().push((index, offset));
            }
        }

        for (path, lookups) in by_object {
            let offsets: Vec<u64> = lookups.iter().map(|&(_, offset)| offset).collect();
            let source = Source::Elf(Elf::new(&path));
            // An object that cannot be read or parsed leaves its frames
            // unnamed rather than failing the whole stack.
            let Ok(results) = self
                .symbolizer
                .symbolize(&source, Input::FileOffset(&offsets))
            else {
                continue;
            };
            for ((index, _), result) in lookups.into_iter().zip(results) {
                if let Symbolized::Sym(sym) = result {
                    let frame = &mut frames[index];
                    let adjusted = index > 0;
                    frame.symbol = Some(demangle(&sym.name));
                    // The offset of the address shown, not of the byte
                    // looked up.
                    frame.offset_in_symbol = sym.offset as u64 + u64::from(adjusted);
                    if let Some(code) = sym.code_info {
                        frame.file = Some(code.to_path().into_owned());
                        frame.line = code.line;
                    }
                    frame.inlined = sym
                        .inlined
                        .iter()
                        .map(|i| InlinedCall {
                            symbol: demangle(&i.name),
                            file: i.code_info.as_ref().map(|c| c.to_path().into_owned()),
                            line: i.code_info.as_ref().and_then(|c| c.line),
                        })
                        .collect();
                }
            }
        }

        // JIT code: names from the perf map the runtime writes, if any.
        for (index, frame) in frames.iter_mut().enumerate() {
            if frame.symbol.is_some() {
                continue;
            }
            let lookup = if index == 0 {
                frame.ip
            } else {
                frame.ip.saturating_sub(1)
            };
            let in_anonymous = match process.maps.find(lookup) {
                Some(mapping) => matches!(mapping.object, MappedObject::Anonymous(_)),
                None => true,
            };
            if in_anonymous {
                let perf_map = self.perf_maps.entry(pid).or_default();
                if let Some((name, start)) = perf_map.lookup(pid, lookup) {
                    frame.symbol = Some(name.to_string());
                    frame.offset_in_symbol = frame.ip - start;
                }
            }
        }
        Ok(frames)
    }
}

/// Read the map of `pid`, and open what cannot be opened by path later.
fn snapshot(
    pid: u32,
    open_files: &mut HashMap<(u64, u64), Weak<File>>,
) -> Result<Remembered, Error> {
    let maps = ProcessMaps::read(pid)?;
    // A process in another mount namespace (a container) names files by
    // paths that mean something else, or nothing, here.
    let foreign_mounts = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()
        != std::fs::read_link("/proc/self/ns/mnt").ok();
    let mut opened = HashMap::new();
    for mapping in maps.mappings() {
        let needs_opening = match &mapping.object {
            MappedObject::Deleted(_) => true,
            MappedObject::File(_) => foreign_mounts,
            _ => false,
        };
        if !needs_opening {
            continue;
        }
        // Only with CAP_SYS_ADMIN (tracers run as root); without it,
        // those frames get no names.
        let link = format!(
            "/proc/{pid}/map_files/{:x}-{:x}",
            mapping.start, mapping.end
        );
        let Ok(file) = File::open(link) else {
            continue;
        };
        let Ok(meta) = file.metadata() else {
            continue;
        };
        let key = (meta.dev(), meta.ino());
        let shared = match open_files.get(&key).and_then(Weak::upgrade) {
            Some(shared) => shared,
            None => {
                let shared = Rc::new(file);
                open_files.insert(key, Rc::downgrade(&shared));
                shared
            }
        };
        opened.insert(mapping.start, shared);
    }
    // Entries of files no process holds any more.
    open_files.retain(|_, file| file.strong_count() > 0);
    Ok(Remembered {
        maps,
        opened,
        misses: HashSet::new(),
    })
}

/// The path of a copy of our vDSO, made at the first need; `None` if it
/// cannot be made.
fn vdso_file(slot: &mut Option<Option<tempfile::NamedTempFile>>) -> Option<PathBuf> {
    slot.get_or_insert_with(|| copy_own_vdso().ok())
        .as_ref()
        .map(|f| f.path().to_path_buf())
}

fn copy_own_vdso() -> io::Result<tempfile::NamedTempFile> {
    let maps = ProcessMaps::read(std::process::id()).map_err(io::Error::other)?;
    let vdso = maps
        .mappings()
        .iter()
        .find(|m| m.object == MappedObject::Vdso)
        .ok_or_else(|| io::Error::other("no vDSO"))?;
    let mut image = vec![0; (vdso.end - vdso.start) as usize];
    File::open("/proc/self/mem")?.read_exact_at(&mut image, vdso.start)?;
    let mut file = tempfile::Builder::new()
        .prefix("stap-sdt-vdso-")
        .tempfile()?;
    file.write_all(&image)?;
    Ok(file)
}

/// `/tmp/perf-PID.map`, which JIT runtimes (V8, the JVM with an agent,
/// LuaJIT, CPython 3.12 with `-X perf`) write: `START SIZE NAME` per
/// line, hexadecimal. It outlives the process, and grows as code is
/// compiled, so it is read again when it has grown.
#[derive(Default)]
struct PerfMap {
    read_len: u64,
    /// (start, end, name), sorted by start.
    symbols: Vec<(u64, u64, String)>,
}

impl PerfMap {
    fn lookup(&mut self, pid: u32, ip: u64) -> Option<(&str, u64)> {
        let path = format!("/tmp/perf-{pid}.map");
        let len = std::fs::metadata(&path).ok()?.len();
        if len != self.read_len {
            let text = std::fs::read_to_string(&path).ok()?;
            self.symbols = parse_perf_map(&text);
            self.read_len = len;
        }
        // Later lines win: a runtime that reuses memory for new code
        // appends the new name.
        self.symbols
            .iter()
            .rev()
            .find(|(start, end, _)| (*start..*end).contains(&ip))
            .map(|(start, _, name)| (name.as_str(), *start))
    }
}

fn parse_perf_map(text: &str) -> Vec<(u64, u64, String)> {
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ' ');
            let start = hex(parts.next()?)?;
            let size = hex(parts.next()?)?;
            let name = parts.next()?.trim_end();
            Some((start, start.checked_add(size)?, name.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0aa0000-55d0c0aa1000 r--p 00000000 fe:01 1234                       /tmp/x/fixture
55d0c0aa1000-55d0c0aa2000 r-xp 00001000 fe:01 1234                       /tmp/x/fixture
55d0c0aa4000-55d0c0ac5000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000001000 r-xp 00000000 00:00 0 
7f1000000000-7f1000100000 r-xp 00028000 fe:01 99                         /usr/lib/with space/libx.so (deleted)
7f2000000000-7f2000001000 r-xp 00000000 00:01 7                          /memfd:jit (deleted)
7f3000000000-7f3000001000 r-xp 00000000 00:00 0                          [anon:v8 code]
7ffd1a3f0000-7ffd1a3f2000 r-xp 00000000 00:00 0                          [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";

    #[test]
    fn parses_executable_mappings_only() {
        let maps = ProcessMaps::parse(MAPS);
        let objects: Vec<&MappedObject> = maps.mappings().iter().map(|m| &m.object).collect();
        assert_eq!(
            objects,
            [
                &MappedObject::File("/tmp/x/fixture".into()),
                &MappedObject::Anonymous(String::new()),
                &MappedObject::Deleted("/usr/lib/with space/libx.so".into()),
                &MappedObject::Deleted("/memfd:jit".into()),
                &MappedObject::Anonymous("[anon:v8 code]".into()),
                &MappedObject::Vdso,
                &MappedObject::Anonymous("[vsyscall]".into()),
            ]
        );
    }

    #[test]
    fn translates_addresses_to_file_offsets() {
        let maps = ProcessMaps::parse(MAPS);
        assert_eq!(
            maps.file_offset(0x55d0c0aa1234),
            Some((Path::new("/tmp/x/fixture"), 0x1234))
        );
        assert_eq!(
            maps.file_offset(0x7f1000000010),
            Some((Path::new("/usr/lib/with space/libx.so"), 0x28010))
        );
        // The end is exclusive; the heap is not executable; vDSO and JIT
        // code have no file.
        assert_eq!(maps.find(0x55d0c0aa2000), None);
        assert_eq!(maps.find(0x55d0c0aa4100), None);
        assert_eq!(maps.file_offset(0x7ffd1a3f0010), None);
        assert!(maps.find(0x7ffd1a3f0010).is_some());
        assert_eq!(maps.find(0), None);
        assert_eq!(maps.find(u64::MAX), None);
    }

    #[test]
    fn newline_in_a_path() {
        let maps = ProcessMaps::parse("1000-2000 r-xp 00000000 fe:01 5 /tmp/a\\012b\n");
        assert_eq!(maps.file_offset(0x1000), Some((Path::new("/tmp/a\nb"), 0)));
    }

    fn frame(ip: u64, symbol: Option<&str>, module: Option<&str>) -> Frame {
        Frame {
            symbol: symbol.map(str::to_string),
            module: module.map(PathBuf::from),
            ..Frame::unknown(ip)
        }
    }

    #[test]
    fn display_and_folded() {
        let mut level2 = frame(0x55d0c0ab1234, Some("level2"), Some("/tmp/x/fixture"));
        level2.offset_in_symbol = 0x1c;
        level2.file = Some("/tmp/x/fixture.c".into());
        level2.line = Some(12);
        assert_eq!(
            level2.to_string(),
            "  0x55d0c0ab1234 level2+0x1c (/tmp/x/fixture) [fixture.c:12]"
        );
        let unknown = frame(0x7f00, None, Some("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert_eq!(
            unknown.to_string(),
            "  0x7f00 ?? (/usr/lib/x86_64-linux-gnu/libc.so.6)"
        );

        let mut with_inlined = frame(0x10, Some("outer"), None);
        with_inlined.inlined = vec![
            InlinedCall {
                symbol: "mid".into(),
                file: None,
                line: None,
            },
            InlinedCall {
                symbol: "in;ner".into(),
                file: Some("/s/i.rs".into()),
                line: Some(3),
            },
        ];
        assert_eq!(
            with_inlined.to_string(),
            "  0x10 in;ner (inlined) [i.rs:3]\n  0x10 mid (inlined)\n  0x10 outer+0x0"
        );
        let stack = [with_inlined, level2, unknown, Frame::unknown(1)];
        assert_eq!(
            folded(&stack),
            "[unknown];[libc.so.6];level2;outer;mid;in:ner"
        );
    }

    #[test]
    fn truncation_heuristic() {
        let main = frame(3, Some("main"), Some("/x"));
        let leaf = frame(1, Some("leaf"), Some("/x"));
        let libc_unnamed = frame(4, None, Some("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        let lib = frame(5, Some("lib_fn"), Some("/usr/lib/libfoo.so.1"));
        assert_eq!(truncation(&[], 127), None);
        assert_eq!(
            truncation(&[leaf.clone(), main.clone(), libc_unnamed.clone()], 127),
            None
        );
        assert_eq!(truncation(&[leaf.clone(), libc_unnamed], 127), None);
        let cut = truncation(&[leaf.clone(), lib.clone()], 127).expect("cut short");
        let message = cut.to_string();
        assert!(
            message.contains("after lib_fn in /usr/lib/libfoo.so.1"),
            "{message}"
        );
        assert!(message.contains("-fno-omit-frame-pointer"), "{message}");
        assert_eq!(truncation(&[leaf, lib], 2), Some(Truncation::DepthLimit(2)));
    }

    #[test]
    fn perf_map_lines() {
        let symbols =
            parse_perf_map("7f3000000000 40 LazyCompile:~f a.js:1\n0x7f3000000040 0x10 g\nbad\n");
        assert_eq!(
            symbols,
            [
                (
                    0x7f3000000000,
                    0x7f3000000040,
                    "LazyCompile:~f a.js:1".to_string()
                ),
                (0x7f3000000040, 0x7f3000000050, "g".to_string()),
            ]
        );
    }
}

/// A symbol's name for people. Only names in a mangling scheme are
/// demangled: a C function named `a` or `b` is also valid Itanium
/// mangling for a *type* (`signed char`, `bool`), so names are tried as
/// Rust (`_R…`, `_ZN…17h…E`) and C++ (`_Z…`) only with those prefixes.
pub fn demangle(name: &str) -> String {
    if name.starts_with("_R") || name.starts_with("_ZN") {
        if let Ok(rust) = rustc_demangle::try_demangle(name) {
            // `{:#}` leaves out the hash.
            return format!("{rust:#}");
        }
    }
    if name.starts_with("_Z") {
        if let Ok(symbol) = cpp_demangle::Symbol::new(name) {
            if let Ok(text) = symbol.demangle(&cpp_demangle::DemangleOptions::default()) {
                return text;
            }
        }
    }
    name.to_string()
}

#[cfg(test)]
mod demangle_tests {
    #[test]
    fn only_mangled_names_are_demangled() {
        assert_eq!(super::demangle("a"), "a");
        assert_eq!(super::demangle("b"), "b");
        assert_eq!(super::demangle("main"), "main");
        assert_eq!(
            super::demangle("_ZN2ns6Widget4pokeEi"),
            "ns::Widget::poke(int)"
        );
        assert_eq!(
            super::demangle("_ZN4rfix4deep10level_rust17h0123456789abcdefE"),
            "rfix::deep::level_rust"
        );
    }
}
