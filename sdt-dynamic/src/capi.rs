//! The C ABI (`include/sdt_dynamic.h`). Every function that can fail
//! returns `-1` or `NULL` and leaves a message for [`sdt_last_error`]
//! (per thread). Probe handles are valid from `sdt_provider_load` until
//! `sdt_provider_unload` or `sdt_provider_free`.

use crate::provider::ProbeSlot;
use crate::{ArgKind, Error, Placement, Provider};
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::path::PathBuf;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn fail(error: Error) -> c_int {
    let text = CString::new(error.to_string().replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
    -1
}

/// A C string argument, or an error naming `what`.
///
/// # Safety
/// `s` is NULL or NUL-terminated.
unsafe fn text<'a>(s: *const c_char, what: &str) -> Result<&'a str, Error> {
    if s.is_null() {
        return Err(Error::new(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(s) }
        .to_str()
        .map_err(|_| Error::new(format!("{what} is not UTF-8")))
}

/// The message of the last failure on this thread ("" if none). Valid
/// until the next failing call on this thread.
#[no_mangle]
pub extern "C" fn sdt_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// A new provider named `name`, or NULL.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sdt_provider_new(name: *const c_char) -> *mut Provider {
    // SAFETY: forwarded contract.
    let made = unsafe { text(name, "provider name") }.and_then(Provider::new);
    match made {
        Ok(p) => Box::into_raw(Box::new(p)),
        Err(e) => {
            fail(e);
            std::ptr::null_mut()
        }
    }
}

/// # Safety
/// `provider` is NULL or came from `sdt_provider_new` and is not freed.
unsafe fn provider_mut<'a>(provider: *mut Provider) -> Result<&'a mut Provider, Error> {
    // SAFETY: by the contract, a live exclusive pointer or NULL.
    unsafe { provider.as_mut() }.ok_or_else(|| Error::new("provider is NULL"))
}

/// Add a probe with `count` arguments of types `types` (`SDT_ARG_*`);
/// returns its index, or -1.
///
/// # Safety
/// `provider` from `sdt_provider_new`; `name` NUL-terminated; `types`
/// points to `count` ints (may be NULL when `count` is 0).
#[no_mangle]
pub unsafe extern "C" fn sdt_provider_add_probe(
    provider: *mut Provider,
    name: *const c_char,
    types: *const c_int,
    count: usize,
) -> c_int {
    let result = (|| {
        // SAFETY: forwarded contract.
        let provider = unsafe { provider_mut(provider) }?;
        // SAFETY: forwarded contract.
        let name = unsafe { text(name, "probe name") }?;
        let codes: &[c_int] = if count == 0 {
            &[]
        } else if types.is_null() {
            return Err(Error::new(format!("{name}: types is NULL")));
        } else {
            // SAFETY: `types` points to `count` ints by the contract.
            unsafe { std::slice::from_raw_parts(types, count) }
        };
        let kinds = codes
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                u32::try_from(c)
                    .ok()
                    .and_then(ArgKind::from_code)
                    .ok_or_else(|| Error::new(format!("{name}: argument {i}: no type {c}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        provider.add_probe(name, &kinds)
    })();
    match result {
        Ok(index) => index as c_int,
        Err(e) => fail(e),
    }
}

/// Write the object to files in `dir` instead of a memfd (NULL: the
/// default, `$STAP_SDT_DYNAMIC_DIR` or a memfd). Before loading.
///
/// # Safety
/// `provider` from `sdt_provider_new`; `dir` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn sdt_provider_set_dir(
    provider: *mut Provider,
    dir: *const c_char,
) -> c_int {
    let result = (|| {
        // SAFETY: forwarded contract.
        let provider = unsafe { provider_mut(provider) }?;
        let placement = if dir.is_null() {
            Placement::Default
        } else {
            // SAFETY: forwarded contract.
            Placement::Directory(PathBuf::from(unsafe { text(dir, "directory") }?))
        };
        provider.set_placement(placement);
        Ok(0)
    })();
    result.unwrap_or_else(fail)
}

/// Load the provider: 0, or -1.
///
/// # Safety
/// `provider` from `sdt_provider_new`.
#[no_mangle]
pub unsafe extern "C" fn sdt_provider_load(provider: *mut Provider) -> c_int {
    // SAFETY: forwarded contract.
    let result = unsafe { provider_mut(provider) }.and_then(|p| p.load());
    match result {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// Unload the provider (its probe handles become invalid); it may be
/// loaded again. 0, or -1.
///
/// # Safety
/// `provider` from `sdt_provider_new`; no other thread uses its probes.
#[no_mangle]
pub unsafe extern "C" fn sdt_provider_unload(provider: *mut Provider) -> c_int {
    // SAFETY: forwarded contract.
    match unsafe { provider_mut(provider) } {
        Ok(p) => {
            p.unload();
            0
        }
        Err(e) => fail(e),
    }
}

/// Unload and free the provider. NULL is ignored.
///
/// # Safety
/// `provider` NULL or from `sdt_provider_new`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn sdt_provider_free(provider: *mut Provider) {
    if !provider.is_null() {
        // SAFETY: the pointer came from Box::into_raw and is freed once.
        drop(unsafe { Box::from_raw(provider) });
    }
}

/// The path the loader (and a debugger, and a tracer given a path) knows
/// the loaded object by: `/proc/PID/fd/N` for a memfd, else the file in
/// the directory. NULL when not loaded. Valid until unload.
///
/// # Safety
/// `provider` from `sdt_provider_new`.
#[no_mangle]
pub unsafe extern "C" fn sdt_provider_path(provider: *const Provider) -> *const c_char {
    // SAFETY: by the contract, a live pointer or NULL.
    match unsafe { provider.as_ref() }.and_then(Provider::object_c_path) {
        Some(path) => path.as_ptr(),
        None => std::ptr::null(),
    }
}

/// The handle of probe `index` of a loaded provider, or NULL.
///
/// # Safety
/// `provider` from `sdt_provider_new`.
#[no_mangle]
pub unsafe extern "C" fn sdt_provider_probe(
    provider: *const Provider,
    index: usize,
) -> *const ProbeSlot {
    // SAFETY: by the contract, a live pointer or NULL.
    let Some(provider) = (unsafe { provider.as_ref() }) else {
        fail(Error::new("provider is NULL"));
        return std::ptr::null();
    };
    match provider.slot(index) {
        Some(slot) => slot,
        None => {
            let why = if provider.args_of(index).is_none() {
                "no such probe"
            } else {
                "the provider is not loaded"
            };
            fail(Error::new(format!(
                "provider `{}`: probe {index}: {why}",
                provider.name()
            )));
            std::ptr::null()
        }
    }
}

/// The address of the probe's semaphore (an `unsigned short`, non-zero
/// while a tracer is attached), for callers that test it inline.
///
/// # Safety
/// `probe` from `sdt_provider_probe`, its provider still loaded.
#[no_mangle]
pub unsafe extern "C" fn sdt_probe_semaphore(probe: *const ProbeSlot) -> *const u16 {
    // SAFETY: a live probe handle by the contract.
    unsafe { (*probe).semaphore.cast() }
}

/// 1 while a tracer is attached to the probe, else 0.
///
/// # Safety
/// `probe` from `sdt_provider_probe`, its provider still loaded.
#[no_mangle]
pub unsafe extern "C" fn sdt_probe_enabled(probe: *const ProbeSlot) -> c_int {
    // SAFETY: a live probe handle by the contract.
    c_int::from(unsafe { &*probe }.enabled())
}

/// Fire the probe with its argument block: one `uint64_t` per slot
/// (integers extended to 64 bits, doubles as their bits, a pointer then a
/// length for a pointer+length string).
///
/// # Safety
/// `probe` from `sdt_provider_probe`, its provider still loaded; `args`
/// points to as many `uint64_t` as the probe has slots.
#[no_mangle]
pub unsafe extern "C" fn sdt_probe_fire(probe: *const ProbeSlot, args: *const u64) {
    // SAFETY: forwarded contract.
    unsafe { (*probe).fire(args) }
}

/// The probe's fire function, `void (*)(const uint64_t *args)`: what
/// `sdt_probe_fire` calls, for bindings that call it directly.
///
/// # Safety
/// `probe` from `sdt_provider_probe`, its provider still loaded.
#[no_mangle]
pub unsafe extern "C" fn sdt_probe_fire_function(
    probe: *const ProbeSlot,
) -> unsafe extern "C" fn(*const u64) {
    // SAFETY: a live probe handle by the contract.
    unsafe { (*probe).fire }
}
