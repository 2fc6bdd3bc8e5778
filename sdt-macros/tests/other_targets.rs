//! What `probe!` and `enabled!` become on targets without SDT support,
//! checked here by calling those expansions directly: they compile, bind
//! nothing new, emit nothing, and report "not enabled".

use std::cell::Cell;

#[test]
fn probes_compile_to_nothing_elsewhere() {
    let evaluated = Cell::new(0);
    let v0 = {
        evaluated.set(evaluated.get() + 1);
        7u32
    };
    let v1 = "text".as_ptr();
    sdt_macros::__sdt_none_probe!(p n (v0 T0 s0 w0 f0) (v1 T1 s1 w1 f1));
    assert_eq!(evaluated.get(), 1);
    // A constant: lazy probes there never evaluate their arguments.
    const { assert!(!sdt_macros::__sdt_none_enabled!(p n)) };
}
