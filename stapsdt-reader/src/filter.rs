//! Probe selection by `provider:name` globs, shared by `list` and `trace`.

/// A shell-style glob: `*` any run of characters, `?` one character,
/// everything else literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob(pattern.to_string())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_literal(&self) -> bool {
        !self.0.contains(['*', '?'])
    }

    pub fn matches(&self, text: &str) -> bool {
        glob_match(self.0.as_bytes(), text.as_bytes())
    }
}

/// Iterative matcher with single-star backtracking: linear in practice and
/// never exponential, whatever the pattern.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// `provider:name`, each a glob; a lone `name` means any provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSelector {
    pub provider: Glob,
    pub name: Glob,
}

impl ProbeSelector {
    pub fn parse(text: &str) -> Result<ProbeSelector, String> {
        if text.is_empty() {
            return Err("empty probe selector".to_string());
        }
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            [name] => Ok(ProbeSelector {
                provider: Glob::new("*"),
                name: Glob::new(name),
            }),
            [provider, name] if !provider.is_empty() && !name.is_empty() => Ok(ProbeSelector {
                provider: Glob::new(provider),
                name: Glob::new(name),
            }),
            _ => Err(format!(
                "bad probe selector `{text}`: expected PROVIDER:NAME (globs allowed, e.g. `python:function__*`)"
            )),
        }
    }

    pub fn matches(&self, provider: &str, name: &str) -> bool {
        self.provider.matches(provider) && self.name.matches(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let g = Glob::new("function__*");
        assert!(g.matches("function__entry"));
        assert!(!g.matches("line"));
        assert!(Glob::new("*start").matches("gc__start"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("a?c").matches("abc"));
        assert!(!Glob::new("a?c").matches("ac"));
        assert!(Glob::new("*a*b*c").matches("xxaxxbxxc"));
        assert!(!Glob::new("*a*b*c").matches("xxaxxbxx"));
        // Pathological pattern stays fast.
        let long = "a".repeat(5000);
        assert!(!Glob::new(&"*a".repeat(50)).matches(&(long + "b")));
    }

    #[test]
    fn selectors() {
        let s = ProbeSelector::parse("python:function__*").unwrap();
        assert!(s.matches("python", "function__entry"));
        assert!(!s.matches("perl", "function__entry"));
        let s = ProbeSelector::parse("*start").unwrap();
        assert!(s.matches("any", "gc__start"));
        for bad in ["", "a:", ":b", "a:b:c"] {
            let err = ProbeSelector::parse(bad).unwrap_err();
            assert!(err.contains("selector"), "{err}");
        }
    }
}
