//! Tokens of a D provider file. Comments and preprocessor lines
//! (`#pragma D attributes ...`, `#define` when `cpp` was not run) are
//! skipped; `cpp` line markers (`# 12 "probes.d"`) move the position, so
//! errors in preprocessed input name the original file and line.

use crate::error::{ParseError, Position};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// Identifiers and keywords (`provider`, `probe`, type names).
    Ident(String),
    /// Integer literals (array sizes).
    Number(String),
    /// Any other single character: `{ } ( ) ; , * : [ ]`...
    Punct(char),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub position: Position,
}

impl Token {
    /// The token as written, for messages and argument type text.
    pub fn text(&self) -> String {
        match &self.kind {
            TokenKind::Ident(s) | TokenKind::Number(s) => s.clone(),
            TokenKind::Punct(c) => c.to_string(),
        }
    }

    pub fn is_punct(&self, c: char) -> bool {
        self.kind == TokenKind::Punct(c)
    }

    pub fn is_ident(&self, word: &str) -> bool {
        matches!(&self.kind, TokenKind::Ident(s) if s == word)
    }
}

struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    file: String,
    line: u32,
    column: u32,
    /// Only whitespace so far on this line (a `#` here starts a directive).
    line_start: bool,
}

impl Cursor<'_> {
    fn position(&self) -> Position {
        Position {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
            self.line_start = true;
        } else {
            self.column += 1;
            if !c.is_whitespace() {
                self.line_start = false;
            }
        }
        Some(c)
    }

    fn rest_of_line(&mut self) -> String {
        let mut text = String::new();
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            text.push(c);
            self.bump();
        }
        text
    }
}

/// Split `source` (named `file` in messages) into tokens.
pub fn tokenize(source: &str, file: &str) -> Result<Vec<Token>, ParseError> {
    let mut cur = Cursor {
        chars: source.chars().peekable(),
        file: file.to_string(),
        line: 1,
        column: 1,
        line_start: true,
    };
    let mut tokens = Vec::new();
    while let Some(c) = cur.peek() {
        let start = cur.position();
        if c.is_whitespace() {
            cur.bump();
        } else if c == '#' && cur.line_start {
            cur.bump();
            let directive = cur.rest_of_line();
            apply_line_marker(&mut cur, &directive);
        } else if c == '/' {
            cur.bump();
            match cur.peek() {
                Some('/') => {
                    cur.rest_of_line();
                }
                Some('*') => {
                    cur.bump();
                    skip_block_comment(&mut cur, &start)?;
                }
                _ => tokens.push(Token {
                    kind: TokenKind::Punct('/'),
                    position: start,
                }),
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == '$' {
            let mut word = String::new();
            while let Some(c) = cur.peek() {
                if c.is_ascii_alphanumeric() || c == '_' || c == '$' {
                    word.push(c);
                    cur.bump();
                } else {
                    break;
                }
            }
            tokens.push(Token {
                kind: TokenKind::Ident(word),
                position: start,
            });
        } else if c.is_ascii_digit() {
            let mut number = String::new();
            while let Some(c) = cur.peek() {
                if c.is_ascii_alphanumeric() {
                    number.push(c);
                    cur.bump();
                } else {
                    break;
                }
            }
            tokens.push(Token {
                kind: TokenKind::Number(number),
                position: start,
            });
        } else if c.is_ascii_punctuation() {
            cur.bump();
            tokens.push(Token {
                kind: TokenKind::Punct(c),
                position: start,
            });
        } else {
            return Err(ParseError::new(
                &start,
                format!("unexpected character {c:?}"),
            ));
        }
    }
    Ok(tokens)
}

fn skip_block_comment(cur: &mut Cursor<'_>, start: &Position) -> Result<(), ParseError> {
    let mut star = false;
    while let Some(c) = cur.bump() {
        if star && c == '/' {
            return Ok(());
        }
        star = c == '*';
    }
    Err(ParseError::new(start, "unterminated comment"))
}

/// `# 12 "file"` and `#line 12 "file"` (from cpp) set the position of the
/// next line; every other directive (`#pragma D ...`, `#define` without
/// `-C`) is ignored, as SystemTap's dtrace does.
fn apply_line_marker(cur: &mut Cursor<'_>, directive: &str) {
    let text = directive.trim_start();
    let text = text.strip_prefix("line").unwrap_or(text).trim_start();
    let mut parts = text.splitn(2, char::is_whitespace);
    let Some(Ok(line)) = parts.next().map(str::parse::<u32>) else {
        return;
    };
    if let Some(rest) = parts.next() {
        let rest = rest.trim_start();
        if let Some(quoted) = rest.strip_prefix('"') {
            if let Some(end) = quoted.find('"') {
                cur.file = quoted[..end].to_string();
            }
        }
    }
    // The newline that ends the directive increments the line.
    cur.line = line.saturating_sub(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(tokens: &[Token]) -> Vec<String> {
        tokens.iter().map(Token::text).collect()
    }

    #[test]
    fn skips_comments_and_directives() {
        let src =
            "/* a\n comment */ provider p { // line\n#pragma D attributes x\n probe a__b(int); };";
        let tokens = tokenize(src, "t.d").unwrap();
        assert_eq!(
            texts(&tokens),
            ["provider", "p", "{", "probe", "a__b", "(", "int", ")", ";", "}", ";"]
        );
        assert_eq!(tokens[3].position.line, 4);
        assert_eq!(tokens[3].position.column, 2);
    }

    #[test]
    fn follows_cpp_line_markers() {
        let src = "# 1 \"probes.d\"\n# 1 \"<built-in>\"\n# 1 \"probes.d\"\n\n\nprovider";
        let tokens = tokenize(src, "/tmp/x.i").unwrap();
        assert_eq!(tokens[0].position.to_string(), "probes.d:3:1");
    }

    #[test]
    fn unterminated_comment_is_an_error_at_its_start() {
        let err = tokenize("provider p {\n  /* oops\n", "t.d").unwrap_err();
        assert_eq!(err.to_string(), "t.d:2:3: unterminated comment");
    }

    #[test]
    fn hash_inside_a_line_is_punctuation() {
        let tokens = tokenize("a # b", "t.d").unwrap();
        assert_eq!(texts(&tokens), ["a", "#", "b"]);
    }
}
