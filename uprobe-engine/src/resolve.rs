//! Object names → files. The lookup (process maps, the loader cache, the
//! library directories, `PATH`) lives in [`stapsdt_reader::resolve`], shared
//! with `stap-sdt list`; its errors convert into the engine's
//! [`Error`](crate::Error) with `?`.

pub use stapsdt_reader::resolve::*;
