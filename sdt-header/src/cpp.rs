//! `dtrace -C`: run the C preprocessor on the provider file, so that
//! `#define` type aliases, `#include` and `#if` work. `$CPP` (default
//! `cpp`) gets the `-I`/`-D`/`-U` options; its line markers let parse
//! errors name the original file and line.

use std::path::Path;
use std::process::Command;

pub fn preprocess(path: &Path, options: &[String]) -> Result<String, String> {
    let cpp = std::env::var("CPP").unwrap_or_else(|_| "cpp".to_string());
    let mut words = cpp.split_whitespace();
    let program = words.next().unwrap_or("cpp");
    let out = Command::new(program)
        .args(words)
        .args(options)
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run the C preprocessor `{program}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{cpp}` failed on {}:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout)
        .map_err(|_| format!("{}: the preprocessed text is not UTF-8", path.display()))
}
