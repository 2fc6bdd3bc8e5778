//! The Rust API: a provider collects probes, is loaded (its object written
//! and `dlopen`ed), fires them, and is unloaded (explicitly or on drop).

use crate::arch::Arch;
use crate::arg::{Arg, ArgKind, MAX_SLOTS};
use crate::elf::{self, ProbeSpec};
use crate::load::{Loaded, Placement};
use crate::Error;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};

/// A fire function: `void fire(const uint64_t *block)`.
type FireFn = unsafe extern "C" fn(*const u64);

/// A provider of probes defined at run time.
///
/// ```no_run
/// use sdt_dynamic::{Arg, ArgKind, Provider};
/// let mut app = Provider::new("app")?;
/// let request = app.add_probe("request", &[ArgKind::I32, ArgKind::Str])?;
/// app.load()?;
/// let probe = app.probe(request).unwrap();
/// if probe.enabled() {
///     probe.fire(&[Arg::Int(7), Arg::Str(c"GET /")])?;
/// }
/// # Ok::<(), sdt_dynamic::Error>(())
/// ```
#[derive(Debug)]
pub struct Provider {
    name: String,
    probes: Vec<ProbeSpec>,
    placement: Placement,
    loaded: Option<LoadedProvider>,
}

#[derive(Debug)]
struct LoadedProvider {
    // Field order: the probes' pointers into the object go before it.
    probes: Vec<ProbeSlot>,
    object: Loaded,
}

/// A loaded probe's addresses in the process: what the C ABI's
/// `sdt_probe *` points to.
#[derive(Debug)]
pub struct ProbeSlot {
    pub(crate) fire: FireFn,
    pub(crate) semaphore: *const AtomicU16,
}

// SAFETY: both pointers point into the loaded object, which outlives every
// `&ProbeSlot` (they are dropped together, the slots first); the fire
// function may be called and the semaphore read from any thread.
unsafe impl Send for ProbeSlot {}
// SAFETY: as for Send: shared access only reads the semaphore atomically
// and calls the fire function, which reads nothing.
unsafe impl Sync for ProbeSlot {}

/// Names of providers and probes: C identifiers, as D providers have (the
/// symbols and every consumer's `provider:name` syntax take them).
fn check_name(what: &str, name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{what} `{}` is not an identifier (letters, digits and `_`, at most 64)",
            name.escape_debug()
        )))
    }
}

impl Provider {
    /// A provider named `name`, without probes, not loaded.
    pub fn new(name: &str) -> Result<Provider, Error> {
        check_name("provider name", name)?;
        Ok(Provider {
            name: name.to_string(),
            probes: Vec::new(),
            placement: Placement::Default,
            loaded: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where [`load`](Self::load) puts the object (default: a memfd, or
    /// `$STAP_SDT_DYNAMIC_DIR`).
    pub fn set_placement(&mut self, placement: Placement) {
        self.placement = placement;
    }

    /// Add a probe; returns its index. Not after loading.
    pub fn add_probe(&mut self, name: &str, args: &[ArgKind]) -> Result<usize, Error> {
        let what = || format!("{}:{}", self.name, name);
        if self.loaded.is_some() {
            return Err(Error::new(format!(
                "{}: the provider is loaded; unload it to add probes",
                what()
            )));
        }
        check_name("probe name", name)?;
        if self.probes.iter().any(|p| p.name == name) {
            return Err(Error::new(format!("{}: defined twice", what())));
        }
        let slots: usize = args.iter().map(|a| a.slots().len()).sum();
        if slots > MAX_SLOTS {
            return Err(Error::new(format!(
                "{}: {} arguments take {slots} slots, more than the {MAX_SLOTS} an SDT note \
                 holds (a pointer+length string takes two)",
                what(),
                args.len()
            )));
        }
        self.probes.push(ProbeSpec {
            name: name.to_string(),
            args: args.to_vec(),
        });
        Ok(self.probes.len() - 1)
    }

    /// The object's bytes for `arch`, as [`load`](Self::load) writes them
    /// (for inspection, and to check other architectures' output).
    pub fn object_bytes(&self, arch: Arch) -> Vec<u8> {
        elf::write(arch, &self.name, &self.soname(), &self.probes).bytes
    }

    fn soname(&self) -> String {
        format!("libstapsdt-{}.so", self.name)
    }

    /// Write the object and load it; the probes become visible to tracers.
    pub fn load(&mut self) -> Result<(), Error> {
        if self.loaded.is_some() {
            return Err(Error::new(format!(
                "provider `{}` is already loaded",
                self.name
            )));
        }
        let arch = Arch::native().ok_or_else(|| {
            Error::new(format!(
                "provider `{}`: this architecture has no probe sites (x86-64 and aarch64 do)",
                self.name
            ))
        })?;
        let image = elf::write(arch, &self.name, &self.soname(), &self.probes);
        let object = Loaded::load(&self.name, &image.bytes, &self.placement)?;
        let mut probes = Vec::with_capacity(image.probes.len());
        for place in &image.probes {
            let fire = object.symbol(&place.fire_symbol)?;
            let semaphore = object.symbol(&place.semaphore_symbol)?;
            probes.push(ProbeSlot {
                // SAFETY: `fire` is the address of a fire function this
                // object defines (`elf.rs`): it reads nothing and returns.
                fire: unsafe { std::mem::transmute::<usize, FireFn>(fire) },
                semaphore: semaphore as *const AtomicU16,
            });
        }
        self.loaded = Some(LoadedProvider { probes, object });
        Ok(())
    }

    /// Unload: the probes disappear for tracers (attached ones detach).
    /// Dropping the provider does the same.
    pub fn unload(&mut self) {
        self.loaded = None;
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.is_some()
    }

    /// The name the dynamic loader (and a debugger) knows the object by:
    /// `/proc/PID/fd/N` for a memfd, or the file's path.
    pub fn object_path(&self) -> Option<&Path> {
        self.loaded.as_ref().map(|l| l.object.path.as_path())
    }

    pub(crate) fn object_c_path(&self) -> Option<&std::ffi::CStr> {
        self.loaded.as_ref().map(|l| l.object.c_path.as_c_str())
    }

    /// Probe `index` of a loaded provider.
    pub fn probe(&self, index: usize) -> Option<Probe<'_>> {
        let loaded = self.loaded.as_ref()?;
        Some(Probe {
            provider: &self.name,
            spec: self.probes.get(index)?,
            slot: loaded.probes.get(index)?,
        })
    }

    /// The index of the probe named `name`.
    pub fn probe_index(&self, name: &str) -> Option<usize> {
        self.probes.iter().position(|p| p.name == name)
    }

    pub(crate) fn slot(&self, index: usize) -> Option<&ProbeSlot> {
        self.loaded.as_ref()?.probes.get(index)
    }

    pub(crate) fn args_of(&self, index: usize) -> Option<&[ArgKind]> {
        self.probes.get(index).map(|p| p.args.as_slice())
    }
}

impl ProbeSlot {
    /// Whether a tracer is attached: the semaphore, raised by the kernel.
    #[inline]
    pub fn enabled(&self) -> bool {
        // SAFETY: the semaphore is a 2-aligned u16 in the object's writable
        // segment, mapped while `self` lives; the kernel updates it
        // concurrently, hence the atomic load.
        unsafe { (*self.semaphore).load(Ordering::Relaxed) != 0 }
    }

    /// Fire with a block of at least as many slots as the probe's note reads.
    ///
    /// # Safety
    /// `block` must point to as many readable `u64` as the probe has slots,
    /// and its `str`/`strlen` slots must hold what their types say if a
    /// tracer is to read them (a tracer reads them safely in any case).
    #[inline]
    pub unsafe fn fire(&self, block: *const u64) {
        // SAFETY: the fire function reads nothing (a tracer does, through
        // the kernel, which fails safely on bad addresses).
        unsafe { (self.fire)(block) }
    }
}

/// A probe of a loaded provider.
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    provider: &'a str,
    spec: &'a ProbeSpec,
    slot: &'a ProbeSlot,
}

impl Probe<'_> {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn args(&self) -> &[ArgKind] {
        &self.spec.args
    }

    /// Whether a tracer is attached (the semaphore): one load.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.slot.enabled()
    }

    /// The run-time address of the probe's site (the note's pc: the first
    /// byte of its fire function).
    pub fn site_address(&self) -> usize {
        self.slot.fire as usize
    }

    /// The run-time address of the probe's semaphore.
    pub fn semaphore_address(&self) -> usize {
        self.slot.semaphore as usize
    }

    /// Fire with typed values, checked against the probe's arguments.
    pub fn fire(&self, args: &[Arg<'_>]) -> Result<(), Error> {
        let block = pack(self.provider, self.spec, args)?;
        // SAFETY: `pack` filled one slot per note argument; pointers in the
        // block borrow from `args`, alive for the call.
        unsafe { self.slot.fire(block.as_ptr()) };
        Ok(())
    }

    /// Fire with the block as the note reads it: one `u64` per slot
    /// (integers sign- or zero-extended, doubles as their bits, a pointer
    /// and a length for `strlen`).
    #[inline]
    pub fn fire_raw(&self, block: &[u64; MAX_SLOTS]) {
        // SAFETY: the block has MAX_SLOTS slots, all a note can read.
        unsafe { self.slot.fire(block.as_ptr()) }
    }
}

/// The block of `args` for `spec`, or an error naming the mismatch.
fn pack(provider: &str, spec: &ProbeSpec, args: &[Arg<'_>]) -> Result<[u64; MAX_SLOTS], Error> {
    let what = || format!("{provider}:{}", spec.name);
    if args.len() != spec.args.len() {
        return Err(Error::new(format!(
            "{}: fired with {} arguments, defined with {}",
            what(),
            args.len(),
            spec.args.len()
        )));
    }
    let mut block = [0u64; MAX_SLOTS];
    let mut slot = 0;
    for (i, (kind, arg)) in spec.args.iter().zip(args).enumerate() {
        let values: [u64; 2] = match (kind, arg) {
            (ArgKind::F64, Arg::F64(v)) => [v.to_bits(), 0],
            (ArgKind::Str, Arg::Str(s)) => [s.as_ptr() as u64, 0],
            (ArgKind::StrLen, Arg::Bytes(b)) => [b.as_ptr() as u64, b.len() as u64],
            (ArgKind::F64 | ArgKind::Str | ArgKind::StrLen, _) => {
                return Err(Error::new(format!(
                    "{}: argument {i} is {kind}, given {arg:?}",
                    what()
                )))
            }
            (_, Arg::Int(v)) => [*v as u64, 0],
            (_, Arg::UInt(v)) => [*v, 0],
            (_, other) => {
                return Err(Error::new(format!(
                    "{}: argument {i} is {kind}, given {other:?}",
                    what()
                )))
            }
        };
        let n = kind.slots().len();
        block[slot..slot + n].copy_from_slice(&values[..n]);
        slot += n;
    }
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_definitions_are_errors_naming_them() {
        assert!(Provider::new("9app")
            .unwrap_err()
            .to_string()
            .contains("`9app`"));
        assert!(Provider::new("a-b").is_err());
        assert!(Provider::new("").is_err());
        let mut p = Provider::new("app").unwrap();
        p.add_probe("x", &[ArgKind::I32]).unwrap();
        let twice = p.add_probe("x", &[]).unwrap_err().to_string();
        assert!(twice.contains("app:x: defined twice"), "{twice}");
        assert!(p.add_probe("bad name", &[]).is_err());
        let many = p
            .add_probe("y", &[ArgKind::StrLen; 7])
            .unwrap_err()
            .to_string();
        assert!(many.contains("app:y: 7 arguments take 14 slots"), "{many}");
        p.add_probe("twelve", &[ArgKind::U8; 12]).unwrap();
    }

    #[test]
    fn values_are_checked_against_the_definition() {
        let spec = ProbeSpec {
            name: "p".into(),
            args: vec![ArgKind::I8, ArgKind::StrLen, ArgKind::F64],
        };
        let bytes = b"abc";
        let block = pack(
            "a",
            &spec,
            &[Arg::Int(-1), Arg::Bytes(bytes), Arg::F64(1.5)],
        )
        .unwrap();
        assert_eq!(block[0], u64::MAX);
        assert_eq!(block[1], bytes.as_ptr() as u64);
        assert_eq!(block[2], 3);
        assert_eq!(block[3], 1.5f64.to_bits());
        let err = pack("a", &spec, &[Arg::Int(1)]).unwrap_err().to_string();
        assert!(
            err.contains("a:p: fired with 1 arguments, defined with 3"),
            "{err}"
        );
        let err = pack(
            "a",
            &spec,
            &[Arg::F64(1.0), Arg::Bytes(bytes), Arg::F64(1.5)],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("argument 0 is i8"), "{err}");
        let err = pack("a", &spec, &[Arg::Int(1), Arg::Int(2), Arg::F64(1.5)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("argument 1 is strlen"), "{err}");
    }
}
