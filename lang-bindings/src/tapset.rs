//! Tapsets as data: which SDT probe of which runtime becomes which named
//! event, and how each of its arguments is decoded.

use std::fmt;

/// A language runtime whose probes have a tapset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Runtime {
    Python,
    Java,
    Perl,
}

impl Runtime {
    pub const ALL: [Runtime; 3] = [Runtime::Python, Runtime::Java, Runtime::Perl];

    /// The `-l` spelling (bcc's ucalls/uflow use the same words).
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Python => "python",
            Runtime::Java => "java",
            Runtime::Perl => "perl",
        }
    }

    /// Accepts `python`, `java` (or `hotspot`, `jvm`) and `perl`.
    pub fn from_name(name: &str) -> Result<Runtime, String> {
        match name {
            "python" => Ok(Runtime::Python),
            "java" | "hotspot" | "jvm" => Ok(Runtime::Java),
            "perl" => Ok(Runtime::Perl),
            other => Err(format!(
                "`{other}`: unknown language (expected python, java or perl)"
            )),
        }
    }

    /// Whether every string its probes pass lives in memory the runtime
    /// has already written or read, so that the engine may read strings
    /// without faulting pages in (`SessionOptions::no_fault_in`): no
    /// sleepable programs, whose detach waits for an RCU Tasks Trace grace
    /// period (tens of ms on this machine, `events -l java -p` ~0.25 s
    /// instead of ~0.1 s). HotSpot's names are `Symbol`s in metaspace and
    /// arrays in the heap, created at run time. Perl passes pointers into
    /// its binary's read-only literals, which may sit on never-touched
    /// pages; CPython 3.11's deep-frozen code objects are static data too.
    pub fn strings_in_touched_memory(self) -> bool {
        matches!(self, Runtime::Java)
    }

    /// SDT providers of this runtime.
    pub fn providers(self) -> &'static [&'static str] {
        match self {
            Runtime::Python => &["python"],
            Runtime::Java => &["hotspot", "hotspot_jni"],
            Runtime::Perl => &["perl"],
        }
    }

    /// The static table of named probes (HotSpot's JNI probes are derived
    /// from the notes, see [`crate::hotspot::jni_probe`]).
    pub fn table(self) -> &'static [ProbeDef] {
        match self {
            Runtime::Python => &crate::python::PROBES,
            Runtime::Java => &crate::hotspot::PROBES,
            Runtime::Perl => &crate::perl::PROBES,
        }
    }

    /// The event names of a function entry and return, for the call views.
    pub fn call_events(self) -> (&'static str, &'static str) {
        match self {
            Runtime::Python => ("python.function.entry", "python.function.return"),
            Runtime::Java => ("hotspot.method.entry", "hotspot.method.return"),
            Runtime::Perl => ("perl.sub.entry", "perl.sub.return"),
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How one argument becomes a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decode {
    /// A pointer to a NUL-terminated string.
    CStr,
    /// A pointer to bytes whose length is argument `len` (HotSpot: no NUL).
    /// Fetched in the kernel as a string, then cut to the length.
    LenStr {
        len: usize,
    },
    Signed,
    Unsigned,
    /// An address, shown in hex.
    Pointer,
    Bool,
}

impl Decode {
    pub fn is_string(self) -> bool {
        matches!(self, Decode::CStr | Decode::LenStr { .. })
    }
}

/// A named field: argument `arg` decoded as `decode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    pub name: &'static str,
    pub arg: usize,
    pub decode: Decode,
}

/// Probes that fire only when the runtime was started with a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Gate {
    /// HotSpot method entry/return (`DTraceMethodProbes`).
    JavaMethods,
    /// HotSpot object allocation (`DTraceAllocProbes`).
    JavaAlloc,
    /// HotSpot monitor probes (`DTraceMonitorProbes`).
    JavaMonitors,
}

/// One named probe of a tapset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeDef {
    /// `python.function.entry`, `hotspot.jni.GetVersion.entry`, ...
    pub event: String,
    pub provider: &'static str,
    pub probe: String,
    pub fields: Vec<FieldDef>,
    pub gate: Option<Gate>,
}

impl ProbeDef {
    /// Argument indices fetched as strings.
    pub fn string_args(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .fields
            .iter()
            .filter(|f| f.decode.is_string())
            .map(|f| f.arg)
            .collect();
        v.sort_unstable();
        v
    }

    /// Argument indices the fields read (lengths included).
    pub fn used_args(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .fields
            .iter()
            .flat_map(|f| match f.decode {
                Decode::LenStr { len } => vec![f.arg, len],
                _ => vec![f.arg],
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Table rows are written as `def(event, provider, probe, fields, gate)`.
pub(crate) fn def(
    event: &str,
    provider: &'static str,
    probe: &str,
    fields: &[(&'static str, usize, Decode)],
    gate: Option<Gate>,
) -> ProbeDef {
    ProbeDef {
        event: event.to_string(),
        provider,
        probe: probe.to_string(),
        fields: fields
            .iter()
            .map(|&(name, arg, decode)| FieldDef { name, arg, decode })
            .collect(),
        gate,
    }
}
