//! Semaphores from inside: `enabled!` and `probe_lazy!` follow the
//! semaphore, raised here by hand as a tracer would. (With real tracers:
//! the root `tests/macros_probes.rs`.)

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use std::sync::atomic::{AtomicU32, Ordering};

use sdt_macros::{enabled, probe, probe_lazy};

/// The address of a probe's semaphore, found the way the probe site finds
/// it: by its symbol.
macro_rules! semaphore_of {
    ($p:ident, $n:ident) => {{
        let address: *mut u16;
        // SAFETY: computes an address; the symbol is defined by the probe.
        unsafe {
            std::arch::asm!(
                concat!("lea {0}, [rip + _.stapsdt.sema.", stringify!($p), ".", stringify!($n), "]"),
                out(reg) address,
                options(nomem, nostack, preserves_flags)
            )
        };
        address
    }};
}

#[test]
fn lazy_arguments_follow_the_semaphore() {
    static EVALUATIONS: AtomicU32 = AtomicU32::new(0);
    let side_effect = || EVALUATIONS.fetch_add(1, Ordering::SeqCst) + 100;

    for _ in 0..3 {
        probe_lazy!(unit, lazy, side_effect());
    }
    assert!(!enabled!(unit, lazy));
    assert_eq!(EVALUATIONS.load(Ordering::SeqCst), 0, "nothing attached");

    let semaphore = semaphore_of!(unit, lazy);
    // SAFETY: the semaphore is a writable u16 in `.probes`; tracers write
    // it the same way. Only this test uses `unit:lazy`.
    unsafe { semaphore.write_volatile(1) };
    assert!(enabled!(unit, lazy));
    probe_lazy!(unit, lazy, side_effect());
    assert_eq!(EVALUATIONS.load(Ordering::SeqCst), 1, "attached");

    // SAFETY: as above.
    unsafe { semaphore.write_volatile(0) };
    probe_lazy!(unit, lazy, side_effect());
    assert_eq!(EVALUATIONS.load(Ordering::SeqCst), 1, "detached again");
}

/// Two expansions of one probe (and `enabled!` with no site at all in
/// between) name one semaphore.
#[test]
fn one_semaphore_per_probe_across_sites() {
    fn first_site() {
        probe!(unit, shared, 1u8);
    }
    fn second_site() {
        probe!(unit, shared, 2u64);
    }
    first_site();
    second_site();
    let semaphore = semaphore_of!(unit, shared);
    assert!(!enabled!(unit, shared));
    // SAFETY: as above; only this test uses `unit:shared`.
    unsafe { semaphore.write_volatile(2) };
    assert!(enabled!(unit, shared));
    // SAFETY: as above.
    unsafe { semaphore.write_volatile(0) };
    assert!(!enabled!(unit, shared));
    assert_ne!(semaphore, semaphore_of!(unit, lazy));
}

/// Arguments of a plain `probe!` are evaluated exactly once, in order.
#[test]
fn arguments_are_evaluated_once_in_order() {
    let mut order = Vec::new();
    let mut note = |v: u32| {
        order.push(v);
        v
    };
    probe!(unit, order, note(1), str(format!("{}", note(2))), note(3));
    assert_eq!(order, [1, 2, 3]);
}
