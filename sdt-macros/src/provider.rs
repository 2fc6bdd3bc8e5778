//! `provider!`: probes declared once with their argument types.

/// Declare a provider's probes with typed arguments.
///
/// ```
/// sdt_macros::provider! {
///     /// Probes of the order service.
///     pub mod shop {
///         /// An order was placed.
///         fn order_placed(id: u64, cents: i64, customer: &str);
///         fn order_failed(id: u64, code: i32);
///     }
/// }
///
/// shop::order_placed(7, -250, "ada");
/// if shop::order_failed::enabled() {
///     shop::order_failed(7, compute_code());
/// }
/// # fn compute_code() -> i32 { 3 }
/// ```
///
/// For each `fn NAME(args);` this generates, inside `mod PROVIDER`,
/// - `fn NAME(args)`: fires `PROVIDER:NAME` (an inlined [`probe!`](crate::probe)),
/// - `mod NAME { fn enabled() -> bool }`: its semaphore check
///   ([`enabled!`](crate::enabled)).
///
/// A misspelt probe is then an unresolved function. Parameters of type
/// `&str`, `&[u8]` or `&String` become two note arguments (pointer and
/// length); every other type must implement [`SdtArg`](crate::SdtArg).
///
/// ```compile_fail
/// sdt_macros::provider! { mod shop { fn order_placed(id: u64); } }
/// shop::order_plcaed(1);
/// ```
#[macro_export]
macro_rules! provider {
    ($(#[$attr:meta])* $vis:vis mod $provider:ident { $($probes:tt)* }) => {
        $(#[$attr])*
        $vis mod $provider {
            $crate::__sdt_provider_probes!($provider $($probes)*);
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_provider_probes {
    ($provider:ident) => {};
    ($provider:ident $(#[$attr:meta])* fn $name:ident ( $($params:tt)* ) ; $($rest:tt)*) => {
        $crate::__sdt_provider_params!($provider $name [$(#[$attr])*] [] [] [$($params)*]);
        $crate::__sdt_provider_probes!($provider $($rest)*);
    };
}

/// Walks one probe's parameters, building its signature and the matching
/// `probe!` argument list (byte strings as `str(param)`).
#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_provider_params {
    ($provider:ident $name:ident [$($attr:tt)*] [$($sig:tt)*] [$($args:tt)*] []) => {
        $($attr)*
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        pub fn $name($($sig)*) {
            $crate::probe!($provider, $name, $($args)*);
        }

        #[doc = concat!("The semaphore of `", stringify!($provider), ":", stringify!($name), "`.")]
        pub mod $name {
            /// Whether a tracer is attached to this probe.
            #[inline(always)]
            pub fn enabled() -> bool {
                $crate::enabled!($provider, $name)
            }
        }
    };
    ($provider:ident $name:ident $attr:tt [$($sig:tt)*] [$($args:tt)*]
     [$param:ident : & str $(, $($rest:tt)*)?]) => {
        $crate::__sdt_provider_params!($provider $name $attr
            [$($sig)* $param: &str,] [$($args)* str($param),] [$($($rest)*)?]);
    };
    ($provider:ident $name:ident $attr:tt [$($sig:tt)*] [$($args:tt)*]
     [$param:ident : & [u8] $(, $($rest:tt)*)?]) => {
        $crate::__sdt_provider_params!($provider $name $attr
            [$($sig)* $param: &[u8],] [$($args)* str($param),] [$($($rest)*)?]);
    };
    ($provider:ident $name:ident $attr:tt [$($sig:tt)*] [$($args:tt)*]
     [$param:ident : & String $(, $($rest:tt)*)?]) => {
        $crate::__sdt_provider_params!($provider $name $attr
            [$($sig)* $param: &String,] [$($args)* str($param),] [$($($rest)*)?]);
    };
    ($provider:ident $name:ident $attr:tt [$($sig:tt)*] [$($args:tt)*]
     [$param:ident : $ty:ty $(, $($rest:tt)*)?]) => {
        $crate::__sdt_provider_params!($provider $name $attr
            [$($sig)* $param: $ty,] [$($args)* $param,] [$($($rest)*)?]);
    };
}
