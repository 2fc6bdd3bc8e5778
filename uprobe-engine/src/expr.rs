//! The filter language of `--filter`: a C-like expression over a hit,
//! parsed and checked here (pure), compiled to BPF by `lower::filter`.
//!
//! ```text
//! operands  arg0 … arg11     an integer argument (sign-extended per its type)
//!           str(argN)        argument N as a string (fetched as one)
//!           pid tid cpu      integers of the hitting thread
//!           comm             its command name (a string)
//!           probe            the probe as PROVIDER:NAME (a string; only
//!                            compared with a literal, which may be a glob)
//!           123 0x7f -1      integer literals (64-bit)
//!           "GET /"          string literals (\" \\ \n \t \xNN escapes)
//! operators ! - ~  * / %  + -  << >>  < <= > >=  == !=  &  ^  |  &&  ||
//!           (C's precedence; comparisons are signed; x / 0 is 0, x % 0 is x)
//! strings   compare with == and != only, against a literal
//! ```
//!
//! A hit is kept when the expression is non-zero. Errors name the column.

use std::fmt;

/// An operand naming part of the hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Pid,
    Tid,
    Cpu,
    /// String: the thread's command name.
    Comm,
    /// String: `PROVIDER:NAME`, known when the program is built.
    Probe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnOp {
    Not,
    Neg,
    BitNot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    Mul,
    Div,
    Mod,
    Add,
    Sub,
    Shl,
    Shr,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    BitAnd,
    BitXor,
    BitOr,
    And,
    Or,
}

impl BinOp {
    fn binding(self) -> u8 {
        use BinOp::*;
        match self {
            Or => 1,
            And => 2,
            BitOr => 3,
            BitXor => 4,
            BitAnd => 5,
            Eq | Ne => 6,
            Lt | Le | Gt | Ge => 7,
            Shl | Shr => 8,
            Add | Sub => 9,
            Mul | Div | Mod => 10,
        }
    }

    pub fn is_comparison(self) -> bool {
        use BinOp::*;
        matches!(self, Lt | Le | Gt | Ge | Eq | Ne)
    }
}

/// An expression tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    Int(i64),
    Str(Vec<u8>),
    Field(Field),
    /// `argN` as an integer.
    Arg(usize),
    /// `str(argN)`.
    ArgStr(usize),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
}

/// What an expression evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Int,
    Str,
}

/// A parsed, type-checked filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filter {
    pub text: String,
    pub expr: Expr,
}

/// A malformed filter: the message and the column (1-based) it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub text: String,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "column {}: {}", self.column, self.message)?;
        writeln!(f, "  {}", self.text)?;
        write!(f, "  {}^", " ".repeat(self.column.saturating_sub(1)))
    }
}

impl std::error::Error for ParseError {}

/// The highest argument number.
pub const MAX_ARG: usize = 11;

/// The deepest expression tree a filter may build (operators and operands
/// on the longest path). Every later pass (folding, checking, lowering,
/// even dropping the tree) recurses over it, and the parser recurses
/// once per unary operator or parenthesis: without a bound, a filter of a
/// few hundred `~` or `(` overflowed the stack (found by the `filter` fuzz
/// target). Lowering refuses more than `lower::filter::MAX_DEPTH` (48)
/// binary operators anyway.
pub const MAX_NESTING: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Int(i64),
    Str(Vec<u8>),
    Ident(String),
    Punct(&'static str),
    End,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Int(n) => write!(f, "`{n}`"),
            Token::Str(_) => f.write_str("a string"),
            Token::Ident(s) => write!(f, "`{s}`"),
            Token::Punct(p) => write!(f, "`{p}`"),
            Token::End => f.write_str("the end"),
        }
    }
}

/// Longest first, so that `<=` is not read as `<` and `=`.
const PUNCTS: [&str; 24] = [
    "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "(", ")", "!", "~", "*", "/", "%", "+", "-",
    "<", ">", "&", "^", "|", ",", "=",
];

struct Lexer<'a> {
    text: &'a str,
    tokens: Vec<(Token, usize)>,
}

impl<'a> Lexer<'a> {
    fn error(&self, at: usize, message: String) -> ParseError {
        ParseError {
            text: self.text.to_string(),
            column: self.text[..at.min(self.text.len())].chars().count() + 1,
            message,
        }
    }

    fn run(mut self) -> Result<Vec<(Token, usize)>, ParseError> {
        let bytes = self.text.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            let c = bytes[at];
            if c.is_ascii_whitespace() {
                at += 1;
            } else if c.is_ascii_digit() {
                let start = at;
                while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                    at += 1;
                }
                let word = self.text[start..at].replace('_', "");
                // Literals are 64-bit patterns: 0xffffffffffffffff is -1.
                let value = match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
                    Some(hex) => u64::from_str_radix(hex, 16).ok(),
                    None => word.parse::<u64>().ok(),
                };
                let value = value.map(|v| v as i64).ok_or_else(|| {
                    self.error(start, format!("`{word}` is not a 64-bit integer"))
                })?;
                self.tokens.push((Token::Int(value), start));
            } else if c.is_ascii_alphabetic() || c == b'_' {
                let start = at;
                while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                    at += 1;
                }
                self.tokens
                    .push((Token::Ident(self.text[start..at].to_string()), start));
            } else if c == b'"' {
                let start = at;
                at += 1;
                let mut value = Vec::new();
                loop {
                    match bytes.get(at) {
                        None => return Err(self.error(start, "unterminated string".into())),
                        Some(b'"') => {
                            at += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let escaped = match bytes.get(at + 1) {
                                Some(b'n') => b'\n',
                                Some(b't') => b'\t',
                                Some(b'\\') => b'\\',
                                Some(b'"') => b'"',
                                Some(b'0') => 0,
                                Some(b'x') => {
                                    let hex = self.text.get(at + 2..at + 4).unwrap_or("");
                                    let v = u8::from_str_radix(hex, 16).map_err(|_| {
                                        self.error(at, "\\x needs two hex digits".into())
                                    })?;
                                    at += 2;
                                    v
                                }
                                _ => {
                                    return Err(self.error(
                                        at,
                                        "unknown escape (\\\" \\\\ \\n \\t \\0 \\xNN)".into(),
                                    ))
                                }
                            };
                            value.push(escaped);
                            at += 2;
                        }
                        Some(&b) => {
                            value.push(b);
                            at += 1;
                        }
                    }
                }
                if value.contains(&0) {
                    return Err(self.error(start, "a string cannot contain NUL".into()));
                }
                self.tokens.push((Token::Str(value), start));
            } else {
                let rest = &self.text[at..];
                let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) else {
                    let ch = rest.chars().next().unwrap_or(' ');
                    return Err(self.error(at, format!("unexpected `{ch}`")));
                };
                self.tokens.push((Token::Punct(p), at));
                at += p.len();
            }
        }
        self.tokens.push((Token::End, self.text.len()));
        Ok(self.tokens)
    }
}

/// A node with the byte offset it starts at, for type errors.
struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(Token, usize)>,
    at: usize,
    /// Unary operators and parentheses open around the current token.
    open: usize,
}

/// A parsed subexpression: the tree, its type, the byte offset it starts
/// at (for type errors) and its depth (for [`MAX_NESTING`]).
type Parsed = (Expr, Type, usize, usize);

impl Parser<'_> {
    fn error(&self, at: usize, message: String) -> ParseError {
        ParseError {
            text: self.text.to_string(),
            column: self.text[..at.min(self.text.len())].chars().count() + 1,
            message,
        }
    }

    fn peek(&self) -> &(Token, usize) {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> (Token, usize) {
        let t = self.peek().clone();
        self.at += 1;
        t
    }

    fn expect(&mut self, p: &'static str) -> Result<(), ParseError> {
        let (t, at) = self.next();
        if t == Token::Punct(p) {
            Ok(())
        } else {
            Err(self.error(at, format!("expected `{p}`, found {t}")))
        }
    }

    fn binary_op(&self) -> Option<BinOp> {
        use BinOp::*;
        let Token::Punct(p) = self.peek().0 else {
            return None;
        };
        Some(match p {
            "*" => Mul,
            "/" => Div,
            "%" => Mod,
            "+" => Add,
            "-" => Sub,
            "<<" => Shl,
            ">>" => Shr,
            "<" => Lt,
            "<=" => Le,
            ">" => Gt,
            ">=" => Ge,
            "==" => Eq,
            "!=" => Ne,
            "&" => BitAnd,
            "^" => BitXor,
            "|" => BitOr,
            "&&" => And,
            "||" => Or,
            _ => return None,
        })
    }

    /// Precedence climbing: operators binding tighter than `min`.
    fn expr(&mut self, min: u8) -> Result<Parsed, ParseError> {
        let (mut left, mut left_type, start, mut depth) = self.unary()?;
        while let Some(op) = self.binary_op() {
            if op.binding() < min {
                break;
            }
            let (_, op_at) = self.next();
            // Comparisons do not chain: `a < b < c` is an error in C's
            // spirit of least surprise here.
            let (right, right_type, right_at, right_depth) = self.expr(op.binding() + 1)?;
            depth = 1 + depth.max(right_depth);
            if depth > MAX_NESTING {
                return Err(
                    self.error(op_at, format!("nested deeper than {MAX_NESTING} operators"))
                );
            }
            left_type = self.check(
                op,
                op_at,
                (&left, left_type),
                (&right, right_type, right_at),
            )?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok((left, left_type, start, depth))
    }

    fn check(
        &self,
        op: BinOp,
        at: usize,
        (left, lt): (&Expr, Type),
        (right, rt, right_at): (&Expr, Type, usize),
    ) -> Result<Type, ParseError> {
        let is_probe = |e: &Expr| *e == Expr::Field(Field::Probe);
        if lt == Type::Str || rt == Type::Str {
            if !matches!(op, BinOp::Eq | BinOp::Ne) {
                return Err(self.error(at, "strings compare with `==` and `!=` only".into()));
            }
            if lt != rt {
                return Err(self.error(at, "compares a string with an integer".into()));
            }
            let literal = |e: &Expr| matches!(e, Expr::Str(_));
            if literal(left) == literal(right) {
                return Err(self.error(
                    right_at,
                    "a string compares with a string literal (\"…\")".into(),
                ));
            }
            if (is_probe(left) || is_probe(right)) && !(literal(left) || literal(right)) {
                return Err(self.error(at, "`probe` compares with a literal only".into()));
            }
        }
        Ok(Type::Int)
    }

    /// One operand with its unary operators; counts how many of those and
    /// of parentheses are open, so that recursion stays bounded.
    fn unary(&mut self) -> Result<Parsed, ParseError> {
        let at = self.peek().1;
        self.open += 1;
        // Parentheses and unary operators both recurse; the printed form of
        // a tree of depth N opens at most 2N of them.
        if self.open > 2 * MAX_NESTING + 2 {
            return Err(self.error(
                at,
                format!("nested deeper than {MAX_NESTING} operators or parentheses"),
            ));
        }
        let parsed = self.operand();
        self.open -= 1;
        let parsed = parsed?;
        if parsed.3 > MAX_NESTING {
            return Err(self.error(at, format!("nested deeper than {MAX_NESTING} operators")));
        }
        Ok(parsed)
    }

    fn operand(&mut self) -> Result<Parsed, ParseError> {
        let (t, at) = self.next();
        let op = match t {
            Token::Punct("!") => Some(UnOp::Not),
            Token::Punct("-") => Some(UnOp::Neg),
            Token::Punct("~") => Some(UnOp::BitNot),
            _ => None,
        };
        if let Some(op) = op {
            let (e, ty, e_at, depth) = self.unary()?;
            if ty != Type::Int {
                return Err(self.error(e_at, "expected an integer, found a string".into()));
            }
            // Fold `-123` so that i64::MIN is writable.
            if let (UnOp::Neg, Expr::Int(n)) = (op, &e) {
                return Ok((Expr::Int(n.wrapping_neg()), Type::Int, at, depth));
            }
            return Ok((Expr::Unary(op, Box::new(e)), Type::Int, at, depth + 1));
        }
        let (expr, ty, depth) = match t {
            Token::Int(n) => (Expr::Int(n), Type::Int, 1),
            Token::Str(s) => (Expr::Str(s), Type::Str, 1),
            Token::Punct("(") => {
                let (e, ty, _, depth) = self.expr(0)?;
                self.expect(")")?;
                (e, ty, depth)
            }
            Token::Ident(name) => match name.as_str() {
                "pid" => (Expr::Field(Field::Pid), Type::Int, 1),
                "tid" => (Expr::Field(Field::Tid), Type::Int, 1),
                "cpu" => (Expr::Field(Field::Cpu), Type::Int, 1),
                "comm" => (Expr::Field(Field::Comm), Type::Str, 1),
                "probe" => (Expr::Field(Field::Probe), Type::Str, 1),
                "str" => {
                    self.expect("(")?;
                    let (t, arg_at) = self.next();
                    let n = match t {
                        Token::Ident(a) => arg_number(&a),
                        _ => None,
                    }
                    .ok_or_else(|| self.error(arg_at, "str() takes arg0 … arg11".into()))?;
                    self.expect(")")?;
                    (Expr::ArgStr(n), Type::Str, 1)
                }
                other => match arg_number(other) {
                    Some(n) => (Expr::Arg(n), Type::Int, 1),
                    None => {
                        return Err(self.error(
                            at,
                            format!(
                                "unknown name `{other}` (arg0 … arg11, str(argN), pid, tid, \
                                 cpu, comm, probe)"
                            ),
                        ))
                    }
                },
            },
            Token::Punct("=") => {
                return Err(self.error(at, "`=` is not an operator: compare with `==`".into()))
            }
            other => return Err(self.error(at, format!("expected an operand, found {other}"))),
        };
        Ok((expr, ty, at, depth))
    }
}

/// `arg0` … `arg11`: the one spelling of an argument every option takes.
pub fn arg_number(word: &str) -> Option<usize> {
    let n: usize = word.strip_prefix("arg")?.parse().ok()?;
    (n <= MAX_ARG && !word[3..].starts_with('0') || word == "arg0").then_some(n)
}

impl Filter {
    /// Parse and type-check `text`.
    pub fn parse(text: &str) -> Result<Filter, ParseError> {
        let tokens = Lexer {
            text,
            tokens: Vec::new(),
        }
        .run()?;
        let mut p = Parser {
            text,
            tokens,
            at: 0,
            open: 0,
        };
        if p.peek().0 == Token::End {
            return Err(p.error(0, "empty filter".into()));
        }
        let (expr, ty, at, _) = p.expr(0)?;
        let (t, end_at) = p.next();
        if t != Token::End {
            let hint = if t == Token::Punct("=") {
                " (compare with `==`)"
            } else {
                ""
            };
            return Err(p.error(end_at, format!("unexpected {t}{hint}")));
        }
        if ty == Type::Str {
            return Err(p.error(
                at,
                "a filter is a condition: compare the string (== \"…\")".into(),
            ));
        }
        Ok(Filter {
            text: text.to_string(),
            expr,
        })
    }

    /// The arguments the filter reads, as integers and as strings.
    pub fn args(&self) -> (Vec<usize>, Vec<usize>) {
        let (mut ints, mut strings) = (Vec::new(), Vec::new());
        visit(&self.expr, &mut |e| match e {
            Expr::Arg(n) => ints.push(*n),
            Expr::ArgStr(n) => strings.push(*n),
            _ => {}
        });
        ints.sort_unstable();
        ints.dedup();
        strings.sort_unstable();
        strings.dedup();
        (ints, strings)
    }

    /// The expression for one probe: `probe == "GLOB"` becomes 1 or 0.
    pub fn for_probe(&self, provider_and_name: &str) -> Expr {
        fold_probe(&self.expr, provider_and_name)
    }
}

fn visit(e: &Expr, f: &mut impl FnMut(&Expr)) {
    f(e);
    match e {
        Expr::Unary(_, a) => visit(a, f),
        Expr::Binary(_, a, b) => {
            visit(a, f);
            visit(b, f);
        }
        _ => {}
    }
}

fn fold_probe(e: &Expr, probe: &str) -> Expr {
    match e {
        Expr::Binary(op @ (BinOp::Eq | BinOp::Ne), a, b) => {
            let pattern = match (&**a, &**b) {
                (Expr::Field(Field::Probe), Expr::Str(s))
                | (Expr::Str(s), Expr::Field(Field::Probe)) => Some(s),
                _ => None,
            };
            match pattern {
                Some(p) => {
                    let hit = glob(&String::from_utf8_lossy(p), probe);
                    Expr::Int(i64::from(hit == (*op == BinOp::Eq)))
                }
                None => Expr::Binary(
                    *op,
                    Box::new(fold_probe(a, probe)),
                    Box::new(fold_probe(b, probe)),
                ),
            }
        }
        Expr::Binary(op, a, b) => Expr::Binary(
            *op,
            Box::new(fold_probe(a, probe)),
            Box::new(fold_probe(b, probe)),
        ),
        Expr::Unary(op, a) => Expr::Unary(*op, Box::new(fold_probe(a, probe))),
        other => other.clone(),
    }
}

/// `*` and `?` globbing, as in selectors, by the selectors' own matcher:
/// the recursive one that was here took exponential time on a pattern of
/// many `*` that does not match (`probe == "ap****…*3"` ran for minutes;
/// found by the `filter` fuzz target).
fn glob(pattern: &str, text: &str) -> bool {
    stapsdt_reader::filter::Glob::new(pattern).matches(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ParseError {
        Filter::parse(text).unwrap_err()
    }

    #[test]
    fn precedence_is_cs() {
        let f = Filter::parse("arg0 % 2 == 0 && pid != 1 || !arg1").unwrap();
        let Expr::Binary(BinOp::Or, left, right) = f.expr else {
            panic!()
        };
        assert!(matches!(*left, Expr::Binary(BinOp::And, _, _)));
        assert_eq!(*right, Expr::Unary(UnOp::Not, Box::new(Expr::Arg(1))));
        let f = Filter::parse("1 + 2 * 3 << 1 > 4 & 1").unwrap();
        assert!(matches!(f.expr, Expr::Binary(BinOp::BitAnd, _, _)));
    }

    #[test]
    fn literals_and_strings() {
        let f = Filter::parse(r#"str(arg1) == "a\"b\x41" && comm != "x""#).unwrap();
        let (ints, strings) = f.args();
        assert!(ints.is_empty());
        assert_eq!(strings, [1]);
        let Expr::Binary(_, a, _) = f.expr else {
            panic!()
        };
        let Expr::Binary(_, _, lit) = *a else {
            panic!()
        };
        assert_eq!(*lit, Expr::Str(b"a\"bA".to_vec()));
        assert_eq!(
            Filter::parse("arg0 == -9223372036854775808").unwrap().expr,
            Expr::Binary(
                BinOp::Eq,
                Box::new(Expr::Arg(0)),
                Box::new(Expr::Int(i64::MIN))
            )
        );
        assert_eq!(Filter::parse("0xff").unwrap().expr, Expr::Int(255));
    }

    #[test]
    fn errors_point_at_the_column() {
        let e = err("arg0 = 5");
        assert_eq!(e.column, 6);
        assert!(e.message.contains("=="), "{e}");
        assert!(e.to_string().ends_with("  arg0 = 5\n       ^"), "{e}");
        assert_eq!(err("arg0 == ").column, 9);
        assert_eq!(err("arg12 > 1").column, 1);
        assert_eq!(err("(arg0 > 1").message, "expected `)`, found the end");
        assert_eq!(err("comm > \"a\"").column, 6);
        assert!(err("comm == 3").message.contains("string with an integer"));
        assert!(err("comm").message.contains("condition"));
        assert!(err("\"abc").message.contains("unterminated"));
        assert!(err("arg0 == 99999999999999999999")
            .message
            .contains("64-bit"));
        assert!(err("str(pid) == \"a\"").message.contains("arg0"));
        assert!(err("probe == comm").message.contains("literal"));
        assert!(err("").message.contains("empty"));
        assert_eq!(err("arg0 $ 1").column, 6);
        // Column in characters, not bytes (the operand missing at the end).
        assert_eq!(err("comm == \"é\" +").column, 14);
    }

    #[test]
    fn probe_comparisons_fold_per_probe() {
        let f = Filter::parse(r#"probe == "app:req*" && arg0 > 1"#).unwrap();
        let yes = f.for_probe("app:request__start");
        let Expr::Binary(BinOp::And, a, _) = yes else {
            panic!()
        };
        assert_eq!(*a, Expr::Int(1));
        let Expr::Binary(BinOp::And, a, _) = f.for_probe("app:done") else {
            panic!()
        };
        assert_eq!(*a, Expr::Int(0));
    }

    #[test]
    fn nesting_is_bounded_before_the_stack_is() {
        // Each of these once overflowed the stack (fuzz/regressions/filter/).
        for text in [
            format!("{}1", "~".repeat(100_000)),
            format!("{}1", "(".repeat(100_000)),
            format!("{}1", "!-".repeat(50_000)),
            format!("{}1", "1+".repeat(50_000)),
            format!("1{}", " || arg0 == 1 && pid".repeat(5_000)),
        ] {
            let e = Filter::parse(&text).unwrap_err();
            assert!(e.message.contains("nested deeper than 64"), "{}", e.message);
            assert!(e.column <= text.len() + 1);
        }
        // As deep as allowed still parses, in either shape.
        assert!(Filter::parse(&format!("{}1", "~".repeat(MAX_NESTING - 1))).is_ok());
        let parens = format!("{}1{}", "(".repeat(120), ")".repeat(120));
        assert!(Filter::parse(&parens).is_ok());
        assert!(Filter::parse(&format!("1{}", "+1".repeat(MAX_NESTING - 1))).is_ok());
    }

    #[test]
    fn many_stars_match_in_linear_time() {
        // fuzz/regressions/filter/glob-many-stars once took minutes.
        let pattern = format!("ap{}3", "*".repeat(5000));
        let f = Filter::parse(&format!("probe == \"{pattern}\"")).unwrap();
        let start = std::time::Instant::now();
        assert_eq!(f.for_probe("app:request__start"), Expr::Int(0));
        assert_eq!(f.for_probe("app:request__3"), Expr::Int(1));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        assert!(glob("a?c*", "abcdef") && !glob("a?c*", "acdef") && glob("*", ""));
    }
}
