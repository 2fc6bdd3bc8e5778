//! sdt-header: `include/sdt.h`, a drop-in `<sys/sdt.h>`, and the D
//! provider file parser and `dtrace -h` / `dtrace -G` generators behind
//! `stap-sdt dtrace`.
//!
//! ```
//! let file = sdt_header::parse("provider app { probe start(const char *); };", "app.d").unwrap();
//! let header = sdt_header::generate_header(&file, "app.d");
//! assert!(header.contains("#define APP_START(arg1)"));
//! assert!(header.contains("#define APP_START_ENABLED()"));
//! ```

pub mod cpp;
pub mod error;
pub mod header;
pub mod lexer;
pub mod model;
pub mod object;
pub mod parser;

pub use error::{ParseError, Position};
pub use header::{generate_header, SDT_H};
pub use model::{arg_type_word, ProbeDecl, Provider, ProviderFile, MAX_ARGS};
pub use object::{generate_semaphores_source, types_notes_asm, CompilerInvocation};
pub use parser::parse;
