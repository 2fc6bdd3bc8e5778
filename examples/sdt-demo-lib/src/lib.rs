//! A library with probes, used by `sdt-demo` and built as a cdylib too.

use sdt_macros::probe;

sdt_macros::provider! {
    /// The library's probes, declared once with their types.
    pub mod demo_lib {
        /// A request finished: id, path (pointer, length), status.
        fn request(id: u64, path: &str, status: i32);
        /// A checksum pass started over `len` items.
        fn checksum_start(len: usize);
    }
}

/// Sums items, firing `demo_lib:item` for each: a probe in a generic
/// function, so every instantiation is one more location of the probe
/// (with the argument size of its `T`), all sharing one semaphore.
pub fn checksum<T: Copy + Into<u64> + sdt_macros::SdtArg>(items: &[T]) -> u64 {
    demo_lib::checksum_start(items.len());
    items.iter().fold(0u64, |sum, &item| {
        probe!(demo_lib, item, item);
        sum.wrapping_add(item.into())
    })
}

/// A probe in an `#[inline]` function: callers in other crates get their
/// own copy of the site.
#[inline]
pub fn tick(n: u32) -> u32 {
    probe!(demo_lib, tick, n);
    n.wrapping_add(1)
}

/// Serves a request: the typed provider's function is the probe.
pub fn serve(id: u64, path: &str) -> i32 {
    let status = if path.starts_with('/') { 200 } else { -400 };
    demo_lib::request(id, path, status);
    status
}

/// The cdylib's C entry point, so the shared object holds the probes too.
///
/// # Safety
/// `path` must point to `len` readable bytes of UTF-8.
#[no_mangle]
pub unsafe extern "C" fn sdt_demo_serve(id: u64, path: *const u8, len: usize) -> i32 {
    // SAFETY: the caller's contract.
    let bytes = unsafe { core::slice::from_raw_parts(path, len) };
    serve(id, core::str::from_utf8(bytes).unwrap_or("?"))
}
