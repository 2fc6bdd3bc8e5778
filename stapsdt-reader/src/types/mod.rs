//! What each argument of a probe is: an integer, a C string, the two
//! halves of a pointer+length string, or a float.
//!
//! The SDT note itself only says how wide an argument is and where it is.
//! Whether a 64-bit value is a number or the address of a string comes
//! from
//! 1. the types note our emitters write next to the probe notes
//!    ([`note`]: `sdt-macros`, `stap-sdt dtrace -G`), else
//! 2. a built-in table of well-known providers ([`known`]: PostgreSQL 15).
//!
//! A probe whose types are unknown, or whose declared types do not match
//! its argument count, stays untyped ([`crate::Probe::types`] is `None`):
//! tracers then show numbers, as before.

pub mod known;
pub mod note;

use crate::Probe;
use std::collections::HashMap;

/// The kind of one probe argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgType {
    /// An integer or anything else shown as a number (the default).
    Int,
    /// A pointer to a NUL-terminated string.
    Str,
    /// The pointer of a pointer+length string; its length is the NEXT argument.
    #[serde(rename = "strptr")]
    StrPtr,
    /// The length of the StrPtr argument just before it.
    #[serde(rename = "strlen")]
    StrLen,
    /// An IEEE float/double passed as its bits or in an integer register.
    Float,
}

impl ArgType {
    /// The word of the note's text form (and of `--json`).
    pub fn word(self) -> &'static str {
        match self {
            ArgType::Int => "int",
            ArgType::Str => "str",
            ArgType::StrPtr => "strptr",
            ArgType::StrLen => "strlen",
            ArgType::Float => "float",
        }
    }

    fn from_word(word: &str) -> Option<ArgType> {
        Some(match word {
            "int" => ArgType::Int,
            "str" => ArgType::Str,
            "strptr" => ArgType::StrPtr,
            "strlen" => ArgType::StrLen,
            "float" => ArgType::Float,
            _ => return None,
        })
    }
}

/// Parse the note's text form: words separated by single or repeated
/// spaces (`int str strptr strlen float`), one per argument. The empty
/// text is a probe without arguments. A `strptr` must be followed by a
/// `strlen` and a `strlen` preceded by a `strptr`.
pub fn parse_type_list(text: &str) -> Result<Vec<ArgType>, String> {
    let mut types = Vec::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let ty = ArgType::from_word(word).ok_or_else(|| {
            let shown: String = word.chars().take(32).collect();
            format!("unknown argument type `{}`", shown.escape_debug())
        })?;
        types.push(ty);
    }
    for (i, ty) in types.iter().enumerate() {
        let next = types.get(i + 1);
        let previous = i.checked_sub(1).map(|p| types[p]);
        if *ty == ArgType::StrPtr && next != Some(&ArgType::StrLen) {
            return Err(format!(
                "argument {i} is `strptr` but is not followed by `strlen`"
            ));
        }
        if *ty == ArgType::StrLen && previous != Some(ArgType::StrPtr) {
            return Err(format!(
                "argument {i} is `strlen` but does not follow a `strptr`"
            ));
        }
    }
    Ok(types)
}

/// The text form of `types`, as the note holds it (`strptr strlen int`).
pub fn to_text(types: &[ArgType]) -> String {
    types.iter().map(|t| t.word()).collect::<Vec<_>>().join(" ")
}

/// One probe's types as a types note declared them.
#[derive(Debug, Clone)]
pub(crate) struct Declared {
    pub provider: String,
    pub name: String,
    pub types: Vec<ArgType>,
}

/// Fill in [`Probe::types`]: from the declarations found in the object's
/// types notes, else from the built-in table. Problems become
/// diagnostics; the probe concerned stays untyped.
pub(crate) fn assign(probes: &mut [Probe], declared: Vec<Declared>, diagnostics: &mut Vec<String>) {
    let index: HashMap<(&str, &str), usize> = probes
        .iter()
        .enumerate()
        .map(|(i, p)| ((p.provider.as_str(), p.name.as_str()), i))
        .collect();
    // Per probe: its declared types, or `None` once two declarations disagreed.
    let mut found: HashMap<usize, Option<Vec<ArgType>>> = HashMap::new();
    for d in declared {
        // A note for a probe without a location (its site was dropped by
        // the linker) says nothing about this object.
        let Some(&i) = index.get(&(d.provider.as_str(), d.name.as_str())) else {
            continue;
        };
        match found.get_mut(&i) {
            None => {
                found.insert(i, Some(d.types));
            }
            Some(Some(previous)) if *previous != d.types => {
                diagnostics.push(format!(
                    "{}:{}: types notes disagree (`{}` and `{}`); the probe is left untyped",
                    d.provider,
                    d.name,
                    to_text(previous),
                    to_text(&d.types)
                ));
                found.insert(i, None);
            }
            Some(_) => {}
        }
    }
    let mut from_notes = vec![false; probes.len()];
    for (i, types) in found {
        from_notes[i] = true;
        let Some(types) = types else { continue };
        let probe = &mut probes[i];
        if let Some(count) = mismatched_count(probe, types.len()) {
            diagnostics.push(format!(
                "{}:{}: its types note names {} argument types but a location has {} arguments; \
                 the probe is left untyped",
                probe.provider,
                probe.name,
                types.len(),
                count
            ));
            continue;
        }
        probe.types = Some(types);
    }
    for (probe, noted) in probes.iter_mut().zip(from_notes) {
        if noted {
            continue;
        }
        // The table describes one release; another release's probe of the
        // same name with other arguments stays untyped, quietly.
        if let Some(types) = known::lookup(&probe.provider, &probe.name) {
            if mismatched_count(probe, types.len()).is_none() {
                probe.types = Some(types.to_vec());
            }
        }
    }
}

/// The argument count of the first location whose count is not `count`.
fn mismatched_count(probe: &Probe, count: usize) -> Option<usize> {
    probe
        .locations
        .iter()
        .map(|l| l.args.len())
        .find(|&n| n != count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ArgType::*;

    #[test]
    fn text_round_trips() {
        let types = vec![Int, Str, StrPtr, StrLen, Float];
        let text = to_text(&types);
        assert_eq!(text, "int str strptr strlen float");
        assert_eq!(parse_type_list(&text).unwrap(), types);
        assert_eq!(parse_type_list("").unwrap(), []);
        assert_eq!(parse_type_list("  int   str ").unwrap(), [Int, Str]);
    }

    #[test]
    fn rejects_unknown_words_and_broken_pairs() {
        let err = parse_type_list("int bogus").unwrap_err();
        assert!(err.contains("unknown argument type `bogus`"), "{err}");
        assert!(parse_type_list("Int").is_err());
        assert!(parse_type_list("int\tstr").is_err());
        let err = parse_type_list("strptr int").unwrap_err();
        assert!(err.contains("not followed by `strlen`"), "{err}");
        let err = parse_type_list("strlen").unwrap_err();
        assert!(err.contains("does not follow"), "{err}");
        assert!(parse_type_list("strptr").is_err());
    }

    #[test]
    fn serializes_as_the_note_words() {
        let json = serde_json::to_string(&[Int, Str, StrPtr, StrLen, Float]).unwrap();
        assert_eq!(json, r#"["int","str","strptr","strlen","float"]"#);
    }
}
