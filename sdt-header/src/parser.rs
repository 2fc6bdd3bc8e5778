//! The grammar of D provider files as projects write them:
//!
//! ```text
//! file     := ( provider | declaration )*
//! provider := "provider" NAME "{" probe* "}" ";"?
//! probe    := "probe" NAME "(" args? ")" [ ":" "(" args? ")" ] ";"?   -- `;` only before `}`/`probe` may go
//! args     := arg ( "," arg )*      -- arg: any tokens, balanced () and []
//! ```
//!
//! Top-level `typedef`, `struct`, `union`, `enum`, `inline` and
//! `translator` declarations are skipped up to their `;`. A lone `void`
//! argument list means no arguments. The optional `: (...)` translated
//! argument list of Solaris DTrace is accepted and ignored.

use crate::error::{ParseError, Position};
use crate::lexer::{tokenize, Token, TokenKind};
use crate::model::{ProbeDecl, Provider, ProviderFile, MAX_ARGS};

/// Parse the text of a provider file; `file` names it in errors.
pub fn parse(source: &str, file: &str) -> Result<ProviderFile, ParseError> {
    let tokens = tokenize(source, file)?;
    let end = Position {
        file: file.to_string(),
        line: source.lines().count().max(1) as u32,
        column: source.lines().last().map_or(1, |l| l.len() as u32 + 1),
    };
    let mut parser = Parser {
        tokens,
        next: 0,
        end,
    };
    let file = parser.file()?;
    check_duplicates(&file)?;
    Ok(file)
}

const SKIPPED_DECLARATIONS: [&str; 6] =
    ["typedef", "struct", "union", "enum", "inline", "translator"];

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    /// Where "end of file" errors point.
    end: Position,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn bump(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).cloned();
        self.next += 1;
        token
    }

    fn here(&self) -> Position {
        self.peek().map_or(self.end.clone(), |t| t.position.clone())
    }

    fn found(&self) -> String {
        self.peek()
            .map_or("end of file".to_string(), |t| format!("`{}`", t.text()))
    }

    fn expect_punct(&mut self, c: char, context: &str) -> Result<Token, ParseError> {
        match self.peek() {
            Some(t) if t.is_punct(c) => Ok(self.bump().unwrap()),
            _ => Err(ParseError::new(
                &self.here(),
                format!("expected `{c}` {context}, found {}", self.found()),
            )),
        }
    }

    fn expect_name(&mut self, what: &str) -> Result<(String, Position), ParseError> {
        match self.peek().map(|t| t.kind.clone()) {
            Some(TokenKind::Ident(name)) => {
                let position = self.bump().unwrap().position;
                Ok((name, position))
            }
            _ => Err(ParseError::new(
                &self.here(),
                format!("expected {what}, found {}", self.found()),
            )),
        }
    }

    fn file(&mut self) -> Result<ProviderFile, ParseError> {
        let mut providers = Vec::new();
        while let Some(token) = self.peek() {
            if token.is_ident("provider") {
                providers.push(self.provider()?);
            } else if SKIPPED_DECLARATIONS.iter().any(|w| token.is_ident(w)) {
                self.skip_declaration()?;
            } else if token.is_punct(';') {
                self.bump();
            } else {
                return Err(ParseError::new(
                    &self.here(),
                    format!("expected `provider`, found {}", self.found()),
                ));
            }
        }
        Ok(ProviderFile { providers })
    }

    /// Skip to the `;` that ends a declaration, over balanced brackets.
    fn skip_declaration(&mut self) -> Result<(), ParseError> {
        let start = self.here();
        let mut depth = 0usize;
        while let Some(token) = self.bump() {
            match token.kind {
                TokenKind::Punct('{' | '(' | '[') => depth += 1,
                TokenKind::Punct('}' | ')' | ']') => depth = depth.saturating_sub(1),
                TokenKind::Punct(';') if depth == 0 => return Ok(()),
                _ => {}
            }
        }
        Err(ParseError::new(&start, "declaration is not ended by `;`"))
    }

    fn provider(&mut self) -> Result<Provider, ParseError> {
        self.bump(); // provider
        let (name, position) = self.expect_name("a provider name")?;
        self.expect_punct('{', &format!("after `provider {name}`"))?;
        let mut probes = Vec::new();
        loop {
            match self.peek() {
                Some(t) if t.is_punct('}') => {
                    self.bump();
                    break;
                }
                Some(t) if t.is_ident("probe") => probes.push(self.probe()?),
                Some(t) if t.is_punct(';') => {
                    self.bump();
                }
                _ => {
                    return Err(ParseError::new(
                        &self.here(),
                        format!(
                            "expected `probe` or `}}` in provider {name}, found {}",
                            self.found()
                        ),
                    ))
                }
            }
        }
        if self.peek().is_some_and(|t| t.is_punct(';')) {
            self.bump();
        }
        Ok(Provider {
            name,
            position,
            probes,
        })
    }

    fn probe(&mut self) -> Result<ProbeDecl, ParseError> {
        self.bump(); // probe
        let (name, position) = self.expect_name("a probe name")?;
        self.expect_punct('(', &format!("after `probe {name}`"))?;
        let args = self.arg_list(&name)?;
        if args.len() > MAX_ARGS {
            return Err(ParseError::new(
                &position,
                format!(
                    "probe {name} has {} arguments; at most {MAX_ARGS} are possible",
                    args.len()
                ),
            ));
        }
        if self.peek().is_some_and(|t| t.is_punct(':')) {
            self.bump();
            self.expect_punct('(', "after `:` (translated arguments)")?;
            self.arg_list(&name)?;
        }
        // The `;` may be left out before `}` or the next `probe`, as
        // SystemTap's dtrace allows.
        let ends_list = self
            .peek()
            .is_some_and(|t| t.is_punct('}') || t.is_ident("probe"));
        if !ends_list {
            self.expect_punct(';', &format!("after probe {name}"))?;
        }
        Ok(ProbeDecl {
            name,
            position,
            args,
        })
    }

    /// Arguments up to the closing `)` (consumed).
    fn arg_list(&mut self, probe: &str) -> Result<Vec<String>, ParseError> {
        let mut args: Vec<Vec<Token>> = vec![Vec::new()];
        let mut depth = 0usize;
        loop {
            let Some(token) = self.bump() else {
                return Err(ParseError::new(
                    &self.end,
                    format!("argument list of probe {probe} is not closed by `)`"),
                ));
            };
            match token.kind {
                TokenKind::Punct(')') if depth == 0 => break,
                TokenKind::Punct(',') if depth == 0 => {
                    if args.last().unwrap().is_empty() {
                        return Err(ParseError::new(
                            &token.position,
                            format!("empty argument in probe {probe}"),
                        ));
                    }
                    args.push(Vec::new());
                    continue;
                }
                TokenKind::Punct(';' | '{' | '}') => {
                    return Err(ParseError::new(
                        &token.position,
                        format!(
                            "expected `)` to close the arguments of probe {probe}, found `{}`",
                            token.text()
                        ),
                    ))
                }
                TokenKind::Punct('(' | '[') => depth += 1,
                TokenKind::Punct(')' | ']') => depth = depth.saturating_sub(1),
                _ => {}
            }
            args.last_mut().unwrap().push(token);
        }
        if args.len() == 1 && args[0].is_empty() {
            return Ok(Vec::new());
        }
        if args.len() > 1 && args.last().unwrap().is_empty() {
            return Err(ParseError::new(
                &self.tokens[self.next - 1].position,
                format!("empty argument in probe {probe}"),
            ));
        }
        if args.len() == 1 && args[0].len() == 1 && args[0][0].is_ident("void") {
            return Ok(Vec::new());
        }
        Ok(args.iter().map(|arg| join_tokens(arg)).collect())
    }
}

/// Tokens as C text: a space between two words, after a comma and before
/// a `*` that follows a word (`const char *`, `struct x **`, `void (*)(int, long)`).
fn join_tokens(tokens: &[Token]) -> String {
    let mut text = String::new();
    let mut prev: Option<&Token> = None;
    for token in tokens {
        let word = matches!(token.kind, TokenKind::Ident(_) | TokenKind::Number(_));
        let prev_word =
            prev.is_some_and(|p| matches!(p.kind, TokenKind::Ident(_) | TokenKind::Number(_)));
        let prev_comma = prev.is_some_and(|p| p.is_punct(','));
        // `/` then `/` or `*` would start a comment, and `*` then `/` end
        // one, in the header this text is written into and when the text
        // is read back (found by the `provider` fuzz target): keep them apart.
        let comment = prev.is_some_and(|p| {
            (p.is_punct('/') && (token.is_punct('/') || token.is_punct('*')))
                || (p.is_punct('*') && token.is_punct('/'))
        });
        if (word && (prev_word || prev_comma))
            || (token.is_punct('*') && prev_word)
            || (token.is_punct('(') && prev_word)
            || comment
        {
            text.push(' ');
        }
        text.push_str(&token.text());
        prev = Some(token);
    }
    text
}

fn check_duplicates(file: &ProviderFile) -> Result<(), ParseError> {
    for (i, provider) in file.providers.iter().enumerate() {
        if let Some(first) = file.providers[..i].iter().find(|p| p.name == provider.name) {
            return Err(ParseError::new(
                &provider.position,
                format!(
                    "provider {} is already declared at {}",
                    provider.name, first.position
                ),
            ));
        }
        for (j, probe) in provider.probes.iter().enumerate() {
            if let Some(first) = provider.probes[..j].iter().find(|p| p.name == probe.name) {
                return Err(ParseError::new(
                    &probe.position,
                    format!(
                        "probe {}:{} is already declared at {}",
                        provider.name, probe.name, first.position
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> ProviderFile {
        parse(src, "t.d").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn providers_probes_and_argument_text() {
        let file = parse_ok(
            "provider a { probe one(); probe two(void); probe three(const char *, unsigned char c, struct x **); };\n\
             provider b__c { probe d__e(int[4], void (*)(int, long)) : (int, int); }",
        );
        assert_eq!(file.providers.len(), 2);
        let a = &file.providers[0];
        let args: Vec<_> = a.probes.iter().map(|p| p.args.len()).collect();
        assert_eq!(args, [0, 0, 3]);
        assert_eq!(
            a.probes[2].args,
            ["const char *", "unsigned char c", "struct x **"]
        );
        assert_eq!(
            file.providers[1].probes[0].args,
            ["int[4]", "void (*)(int, long)"]
        );
    }

    #[test]
    fn semicolon_may_be_left_out_before_brace_or_probe() {
        let file = parse_ok("provider a { probe x(int) probe y() }");
        assert_eq!(file.providers[0].probes.len(), 2);
    }

    #[test]
    fn skips_typedefs_and_pragmas() {
        let file = parse_ok(
            "typedef struct { int a; } foo_t;\n#pragma D attributes Evolving/Evolving/Common provider a provider\nprovider a { probe x(foo_t *); };",
        );
        assert_eq!(file.providers[0].probes[0].args, ["foo_t *"]);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let cases = [
            (
                "provider a {\n  probe x(int) int;\n};",
                "t.d:2:16: expected `;` after probe x, found `int`",
            ),
            (
                "provider a {\n  probe (int);\n};",
                "t.d:2:9: expected a probe name, found `(`",
            ),
            (
                "provider a {\n  prob x();\n};",
                "t.d:2:3: expected `probe` or `}` in provider a, found `prob`",
            ),
            (
                "provider a {\n  probe x(int,);\n};",
                "t.d:2:15: empty argument in probe x",
            ),
            (
                "provider a {\n  probe x(int;\n};",
                "t.d:2:14: expected `)` to close the arguments of probe x, found `;`",
            ),
            (
                "provider a { probe x(); probe x(); };",
                "t.d:1:31: probe a:x is already declared at t.d:1:20",
            ),
            (
                "  probe x();",
                "t.d:1:3: expected `provider`, found `probe`",
            ),
            (
                "provider a {\n probe x();\n",
                "t.d:2:12: expected `probe` or `}` in provider a, found end of file",
            ),
            (
                "provider a { probe x(int,int,int,int,int,int,int,int,int,int,int,int,int); };",
                "t.d:1:20: probe x has 13 arguments; at most 12 are possible",
            ),
        ];
        for (src, expected) in cases {
            assert_eq!(
                parse(src, "t.d").unwrap_err().to_string(),
                expected,
                "{src}"
            );
        }
    }

    #[test]
    fn argument_text_never_forms_a_comment() {
        let file = parse_ok("provider p { probe a(int / / x, char * / * y, int * / z); };");
        let args = &file.providers[0].probes[0].args;
        assert_eq!(args, &["int/ /x", "char * / *y", "int * /z"]);
        for arg in args {
            assert!(
                !arg.contains("//") && !arg.contains("/*") && !arg.contains("*/"),
                "{arg}"
            );
        }
    }
}
