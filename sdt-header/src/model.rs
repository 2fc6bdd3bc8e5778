//! What a provider file declares, and the C names derived from it.

use crate::error::Position;

/// At most this many arguments per probe (the note format's limit).
pub const MAX_ARGS: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderFile {
    pub providers: Vec<Provider>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub name: String,
    pub position: Position,
    pub probes: Vec<ProbeDecl>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeDecl {
    pub name: String,
    pub position: Position,
    /// Each argument's declaration as written, tokens joined by spaces
    /// (`const char *`, `unsigned int`, `struct foo * f`).
    pub args: Vec<String>,
}

/// The word of the types note (`.note.stapsdt.types`) for a D argument
/// type: `str` for `char *`, `const char *` and `string`, `float` for
/// `float`, `double` and `long double`, `int` for everything else
/// (integers, other pointers, structs). A parameter name after the type
/// (`char * name`) is allowed. The text is what the parser keeps: tokens
/// joined by spaces, after cpp when `-C` was given.
pub fn arg_type_word(decl: &str) -> &'static str {
    let mut words: Vec<&str> = decl
        .split(|c: char| c.is_whitespace() || c == '*')
        .filter(|w| !w.is_empty() && !matches!(*w, "const" | "volatile" | "restrict"))
        .collect();
    let stars = decl.matches('*').count();
    // `char * name`, `double d`, `string s`: drop the name.
    if words.len() == 2 && matches!(words[0], "char" | "string" | "float" | "double") {
        words.pop();
    }
    match (words.as_slice(), stars) {
        (["char"], 1) | (["string"], 0) => "str",
        (["float" | "double"] | ["long", "double"], 0) => "float",
        _ => "int",
    }
}

impl Provider {
    /// `provider_name_semaphore`: the symbol shared by sdt.h, `-h` and `-G`.
    pub fn semaphore(&self, probe: &ProbeDecl) -> String {
        format!("{}_{}_semaphore", self.name, probe.name)
    }

    /// `PROVIDER_NAME`: SystemTap dtrace's macro name, the provider upper
    /// case as is, the probe upper case with `__` turned into `_`.
    pub fn macro_name(&self, probe: &ProbeDecl) -> String {
        format!(
            "{}_{}",
            self.name.to_uppercase(),
            probe.name.replace("__", "_").to_uppercase()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_words_from_d_types() {
        for (decl, word) in [
            ("const char *", "str"),
            ("char *", "str"),
            ("char * name", "str"),
            ("const char * const", "str"),
            ("string", "str"),
            ("float", "float"),
            ("double", "float"),
            ("long double", "float"),
            ("double d", "float"),
            ("int", "int"),
            ("unsigned int", "int"),
            ("char", "int"),
            ("unsigned char *", "int"),
            ("char * *", "int"),
            ("double *", "int"),
            ("struct foo * f", "int"),
            ("void *", "int"),
        ] {
            assert_eq!(arg_type_word(decl), word, "{decl}");
        }
    }

    #[test]
    fn names_follow_systemtap_dtrace() {
        let position = Position {
            file: "t.d".into(),
            line: 1,
            column: 1,
        };
        let provider = Provider {
            name: "my__prov".into(),
            position: position.clone(),
            probes: vec![],
        };
        let probe = ProbeDecl {
            name: "query__start".into(),
            position,
            args: vec![],
        };
        assert_eq!(provider.macro_name(&probe), "MY__PROV_QUERY_START");
        assert_eq!(
            provider.semaphore(&probe),
            "my__prov_query__start_semaphore"
        );
    }
}
