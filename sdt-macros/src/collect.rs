//! `probe!`'s argument list, turned into argument slots.
//!
//! A `macro_rules!` muncher walks the comma-separated arguments once, left
//! to right, and for each one
//! - binds it to a fresh local (so every expression is evaluated exactly
//!   once, in the order written, before the probe site), and
//! - takes slot names from a pool of 12 (`(v0 T0 s0 w0 f0)`: the local /
//!   site parameter, its type parameter, and the names of its size, width
//!   and type-code `const` operands in the `asm!`).
//!
//! `str(expr)` takes two slots (pointer, length), wrapped in
//! `arg::StrPtr`/`arg::StrLen` so that the types note calls them
//! `strptr`/`strlen`. An argument left when the
//! pool is empty is a `compile_error!` naming the limit: the 12 comes from
//! the consumers (GDB, libbpf, bpftrace and `sys/sdt.h` stop at 12).

#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_collect {
    // Nothing left: bind the arguments, then emit the site.
    ($p:ident $n:ident [$($lets:tt)*] [$($slots:tt)*] [$($pool:tt)*] []) => {{
        $($lets)*
        $crate::__sdt_site!($p $n $($slots)*);
    }};
    // `str(expr)`: the bytes' address and their length, borrowed, not copied.
    // `let x = &expr;` extends a temporary's life to the end of the block.
    ($p:ident $n:ident [$($lets:tt)*] [$($slots:tt)*]
     [($v1:ident $($r1:ident)*) ($v2:ident $($r2:ident)*) $($pool:tt)*]
     [str ( $e:expr ) $(, $($rest:tt)*)?]) => {
        $crate::__sdt_collect!($p $n
            [$($lets)*
             let $v2 = &$e;
             let $v1 = $crate::arg::bytes_of($v2);
             let $v2 = $crate::arg::StrLen($v1.len());
             let $v1 = $crate::arg::StrPtr($v1.as_ptr());]
            [$($slots)* ($v1 $($r1)*) ($v2 $($r2)*)]
            [$($pool)*]
            [$($($rest)*)?])
    };
    ($p:ident $n:ident $lets:tt $slots:tt [$($pool:tt)?] [str ( $e:expr ) $(, $($rest:tt)*)?]) => {
        ::core::compile_error!(
            "probe!: too many arguments: `str(..)` takes two of the 12 argument slots \
             (pointer and length)"
        )
    };
    ($p:ident $n:ident [$($lets:tt)*] [$($slots:tt)*] [($v:ident $($r:ident)*) $($pool:tt)*]
     [$e:expr $(, $($rest:tt)*)?]) => {
        $crate::__sdt_collect!($p $n
            [$($lets)* let $v = $e;]
            [$($slots)* ($v $($r)*)]
            [$($pool)*]
            [$($($rest)*)?])
    };
    ($p:ident $n:ident $lets:tt $slots:tt [] [$($rest:tt)+]) => {
        ::core::compile_error!(
            "probe!: too many arguments: a probe has at most 12 (the limit of sys/sdt.h, \
             GDB, libbpf and bpftrace)"
        )
    };
}

/// The site: a local generic function whose type parameters are the
/// arguments' types, so that the `asm!` can take each argument's size from
/// `<T as SdtArg>::SIZE` as a `const` operand (generic parameters are
/// allowed there; a `macro_rules!` macro could not name the types itself).
/// `#[inline(always)]` puts a copy of the site wherever the probe is used;
/// every copy gets its own note, all naming the same provider, name and
/// semaphore.
#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_site {
    ($p:ident $n:ident $(($v:ident $t:ident $s:ident $w:ident $f:ident))*) => {{
        #[inline(always)]
        #[allow(clippy::too_many_arguments, clippy::inline_always)]
        fn __sdt_site<$($t: $crate::SdtArg),*>($($v: $t),*) {
            $crate::__sdt_asm_probe!($p $n $(($v $t $s $w $f))*);
        }
        __sdt_site($($v),*);
    }};
}
