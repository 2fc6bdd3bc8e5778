//! What to attach to, in the spellings users bring along:
//!
//! | spelling | meaning |
//! | --- | --- |
//! | `PATH:provider:name`, `usdt:PATH:provider:name` | SDT probes (globs in provider and name) |
//! | `usdt:PATH:name` | SDT probes of any provider |
//! | `provider:name` (with a process) | SDT probes in every object the process maps |
//! | `PATH:fn:SYMBOL`, `uprobe:PATH:SYMBOL` | function entry (globs in SYMBOL) |
//! | `PATH:fn:SYMBOL%return`, `uretprobe:PATH:SYMBOL` | function return |
//!
//! PATH is a file, or a library or program name resolved at attach time.

use crate::Error;
use stapsdt_reader::filter::Glob;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Usdt {
        /// `None`: every object mapped by the target process.
        path: Option<String>,
        provider: Glob,
        name: Glob,
    },
    Function {
        path: String,
        symbol: Glob,
        retprobe: bool,
    },
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, Error> {
        let bad = |why: &str| {
            Error::Input(format!(
                "bad probe `{text}`: {why} (expected PATH:PROVIDER:NAME, usdt:PATH:PROVIDER:NAME, \
                 PATH:fn:SYMBOL[%return], uprobe:PATH:SYMBOL or uretprobe:PATH:SYMBOL)"
            ))
        };
        let parts: Vec<&str> = text.split(':').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("empty field"));
        }
        let function = |path: &str, symbol: &str, retprobe: bool| Selector::Function {
            path: path.to_string(),
            symbol: Glob::new(symbol),
            retprobe,
        };
        let usdt = |path: Option<&str>, provider: &str, name: &str| Selector::Usdt {
            path: path.map(str::to_string),
            provider: Glob::new(provider),
            name: Glob::new(name),
        };
        Ok(match parts.as_slice() {
            ["uprobe" | "u", path, symbol] => function(path, symbol, false),
            ["uretprobe" | "ur", path, symbol] => function(path, symbol, true),
            ["usdt" | "U", path, name] => usdt(Some(path), "*", name),
            ["usdt" | "U", path, provider, name] => usdt(Some(path), provider, name),
            [path, "fn", symbol] => match symbol.strip_suffix("%return") {
                Some(symbol) if !symbol.is_empty() => function(path, symbol, true),
                Some(_) => return Err(bad("empty symbol")),
                None => function(path, symbol, false),
            },
            [provider, name] => usdt(None, provider, name),
            [path, provider, name] => usdt(Some(path), provider, name),
            _ => return Err(bad("wrong number of `:` fields")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(
            Selector::parse("/bin/x:prov:na*").unwrap(),
            Selector::Usdt {
                path: Some("/bin/x".into()),
                provider: Glob::new("prov"),
                name: Glob::new("na*")
            }
        );
        assert_eq!(
            Selector::parse("usdt:/bin/x:prov:n").unwrap(),
            Selector::parse("/bin/x:prov:n").unwrap()
        );
        assert_eq!(
            Selector::parse("uretprobe:libc.so.6:malloc").unwrap(),
            Selector::parse("libc.so.6:fn:malloc%return").unwrap()
        );
        assert!(matches!(
            Selector::parse("uprobe:/bin/x:main").unwrap(),
            Selector::Function {
                retprobe: false,
                ..
            }
        ));
        assert!(matches!(
            Selector::parse("p:n").unwrap(),
            Selector::Usdt { path: None, .. }
        ));
    }

    #[test]
    fn bad_spellings_name_the_input() {
        for bad in ["", "a:b:c:d:e", "x::y", "/bin/x:fn:%return"] {
            let e = Selector::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}`")), "{e}");
        }
    }
}
