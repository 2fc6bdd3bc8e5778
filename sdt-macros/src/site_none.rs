//! Targets without SDT support: probes compile to nothing. Arguments are
//! still type-checked (and, being bound to locals, evaluated), so code
//! builds the same everywhere; `enabled!` is a constant `false`, so lazy
//! probes' arguments are never evaluated.
//!
//! Compiled on every host under `__sdt_none_*` names (aliased in `lib.rs`
//! on such targets), so that `tests/other_targets.rs` checks them here.

#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_none_probe {
    ($p:ident $n:ident $(($v:ident $t:ident $s:ident $w:ident $f:ident))*) => {
        $(let _ = $v;)*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_none_enabled {
    ($p:ident $n:ident) => {
        false
    };
}
