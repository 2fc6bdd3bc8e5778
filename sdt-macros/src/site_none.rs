//! Targets without SDT support: probes compile to nothing. Arguments are
//! still type-checked (and, being bound to locals, evaluated), so code
//! builds the same everywhere; `enabled!` is a constant `false`, so lazy
//! probes' arguments are never evaluated.

#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_asm_probe {
    ($p:ident $n:ident $(($v:ident $t:ident $s:ident $w:ident $f:ident))*) => {
        $(let _ = $v;)*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_asm_enabled {
    ($p:ident $n:ident) => {
        false
    };
}
