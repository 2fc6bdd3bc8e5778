//! `--format`: a printf-like template. Each conversion takes the next
//! argument (`%d %i %u %x %X %o %p %s %c %f`, with `-`, `0` and a width),
//! or the one C's positional form names (`%2$s` is arg1). A precision on
//! `%s` keeps at most that many characters: `%.5s`, or from an argument as
//! in C, `%.*s` (the length argument first, then the string) or `%1$.*2$s`
//! (string arg0 cut to arg1's value: a pointer+length pair);
//! `%%` is a percent sign; `\n`, `\t`, `\\` are escapes. An argument shown
//! with `%s` is fetched as a string by the kernel.
//!
//! Newlines: each hit ends a line. A template that ends with `\n` (as printf
//! and bpftrace want it written) ends its line with that newline, not with a
//! blank line after it; one without gets a newline, because the output is
//! line-oriented (`--stack` frames go under their hit, `grep` and `head`
//! count lines), unlike bpftrace's printf, which adds nothing.

use uprobe_engine::Value;

/// The widest field `--format` accepts.
const MAX_WIDTH: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Conversion {
        left: bool,
        zero: bool,
        width: usize,
        precision: Option<Precision>,
        conv: char,
        arg: usize,
    },
}

/// At most this many characters of a string.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Precision {
    Fixed(usize),
    /// The value of this argument.
    FromArg(usize),
}

/// `N$` at the front of `chars`: argument N (1..=12), consumed; else None.
fn positional(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    text: &str,
) -> Result<Option<usize>, String> {
    let digits: String = chars.clone().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || chars.clone().nth(digits.len()) != Some('$') {
        return Ok(None);
    }
    chars.nth(digits.len());
    match digits.parse::<usize>() {
        Ok(n @ 1..=12) => Ok(Some(n - 1)),
        _ => Err(format!(
            "--format `{text}`: `%{digits}$`: arguments are 1..12"
        )),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template(Vec<Piece>);

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        let mut next_arg = 0;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => literal.push('\n'),
                    Some('t') => literal.push('\t'),
                    Some('\\') => literal.push('\\'),
                    Some(other) => {
                        literal.push('\\');
                        literal.push(other);
                    }
                    None => literal.push('\\'),
                },
                '%' if chars.peek() == Some(&'%') => {
                    chars.next();
                    literal.push('%');
                }
                '%' => {
                    // C's positional form: `%2$s` is the second argument (arg1).
                    let at = positional(&mut chars, text)?;
                    let mut arg = at.unwrap_or(next_arg);
                    let (mut left, mut zero, mut width) = (false, false, 0usize);
                    while let Some(&f) = chars.peek() {
                        match f {
                            '-' => left = true,
                            '0' if width == 0 => zero = true,
                            '0'..='9' => {
                                width = width * 10 + (f as usize - '0' as usize);
                                // A field wider than a page is a typo, not a layout.
                                if width > MAX_WIDTH {
                                    return Err(format!(
                                        "--format `{text}`: field width over {MAX_WIDTH}"
                                    ));
                                }
                            }
                            _ => break,
                        }
                        chars.next();
                    }
                    let mut precision = None;
                    if chars.peek() == Some(&'.') {
                        chars.next();
                        if chars.peek() == Some(&'*') {
                            chars.next();
                            let from = match positional(&mut chars, text)? {
                                Some(n) => n,
                                // Sequential: the length comes first, then the value.
                                None => {
                                    let n = arg;
                                    if at.is_none() {
                                        arg += 1;
                                    }
                                    n
                                }
                            };
                            precision = Some(Precision::FromArg(from));
                        } else {
                            let digits: String =
                                chars.clone().take_while(char::is_ascii_digit).collect();
                            if !digits.is_empty() {
                                chars.nth(digits.len() - 1);
                            }
                            let n = digits.parse::<usize>().unwrap_or(0);
                            precision = Some(Precision::Fixed(n.min(MAX_WIDTH)));
                        }
                    }
                    // Length modifiers of C printf are accepted and ignored.
                    while chars.peek().is_some_and(|c| matches!(c, 'l' | 'h' | 'z')) {
                        chars.next();
                    }
                    let conv = chars
                        .next()
                        .ok_or_else(|| format!("--format `{text}`: ends inside a conversion"))?;
                    if !"diuxXopscf".contains(conv) {
                        return Err(format!("--format `{text}`: unknown conversion `%{conv}`"));
                    }
                    if precision.is_some() && conv != 's' {
                        return Err(format!("--format `{text}`: a precision applies to %s only"));
                    }
                    if arg >= 12 {
                        return Err(format!("--format `{text}`: more than 12 arguments"));
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Conversion {
                        left,
                        zero,
                        width,
                        precision,
                        conv,
                        arg,
                    });
                    next_arg = arg + 1;
                }
                _ => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template(pieces))
    }

    /// Arguments the template shows with `%s`.
    pub fn string_args(&self) -> Vec<usize> {
        self.0
            .iter()
            .filter_map(|p| match p {
                Piece::Conversion { conv: 's', arg, .. } => Some(*arg),
                _ => None,
            })
            .collect()
    }

    /// Every argument the template shows, in order of appearance.
    pub fn args(&self) -> Vec<usize> {
        let mut args: Vec<usize> = self
            .0
            .iter()
            .filter_map(|p| match p {
                Piece::Conversion { arg, .. } => Some(*arg),
                _ => None,
            })
            .collect();
        args.sort_unstable();
        args.dedup();
        args
    }

    pub fn render(&self, args: &[Value]) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Conversion {
                    left,
                    zero,
                    width,
                    precision,
                    conv,
                    arg,
                } => {
                    let mut body = convert(*conv, args.get(*arg).unwrap_or(&Value::Unavailable));
                    let most = match precision {
                        Some(Precision::Fixed(n)) => Some(*n),
                        Some(Precision::FromArg(a)) => args
                            .get(*a)
                            .and_then(|v| v.as_i128())
                            .map(|n| n.clamp(0, MAX_WIDTH as i128) as usize),
                        None => None,
                    };
                    if let (Some(n), Value::Str(_)) =
                        (most, args.get(*arg).unwrap_or(&Value::Unavailable))
                    {
                        body = body.chars().take(n).collect();
                    }
                    pad(
                        &mut out,
                        &body,
                        *width,
                        *left,
                        *zero && !*left && *conv != 's',
                    );
                }
            }
        }
        out
    }
}

fn convert(conv: char, value: &Value) -> String {
    let bits = match value {
        Value::Signed(v) => *v as u64,
        Value::Unsigned(v) => *v,
        Value::Float(f) => f.to_bits(),
        Value::Str(s) => {
            return if conv == 's' {
                s.clone()
            } else {
                format!("{s:?}")
            }
        }
        Value::Unavailable | Value::Fault => return value.to_string(),
    };
    match (conv, value) {
        ('d' | 'i', Value::Unsigned(v)) => format!("{}", *v as i64),
        ('d' | 'i' | 's', _) | ('u', Value::Signed(_)) => value.to_string(),
        ('u', _) => format!("{bits}"),
        ('x', _) => format!("{bits:x}"),
        ('X', _) => format!("{bits:X}"),
        ('o', _) => format!("{bits:o}"),
        ('p', _) => format!("0x{bits:x}"),
        ('c', _) => char::from_u32(bits as u32).map_or("?".into(), String::from),
        ('f', Value::Float(f)) => format!("{f:.6}"),
        ('f', _) => format!("{:.6}", bits as i64 as f64),
        _ => value.to_string(),
    }
}

fn pad(out: &mut String, body: &str, width: usize, left: bool, zero: bool) {
    let fill = width.saturating_sub(body.chars().count());
    if left {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if zero {
        let (sign, digits) = body.strip_prefix('-').map_or(("", body), |d| ("-", d));
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_conversions_in_order() {
        let t = Template::parse("q=%s n=%5d x=%08x %% %-3u|\\n").unwrap();
        assert_eq!(t.string_args(), vec![0]);
        let out = t.render(&[
            Value::Str("select 1".into()),
            Value::Signed(-42),
            Value::Unsigned(0xbeef),
            Value::Unsigned(7),
        ]);
        assert_eq!(out, "q=select 1 n=  -42 x=0000beef % 7  |\n");
    }

    #[test]
    fn missing_and_unavailable_arguments_say_so() {
        let t = Template::parse("%d %d").unwrap();
        assert_eq!(t.render(&[Value::Signed(1)]), "1 <unavailable>");
    }

    #[test]
    fn positional_arguments() {
        let t = Template::parse("%2$s=%1$d %3$u").unwrap();
        assert_eq!(t.string_args(), vec![1]);
        let args = [Value::Signed(5), Value::Str("k".into()), Value::Unsigned(9)];
        assert_eq!(t.render(&args), "k=5 9");
        assert!(Template::parse("%13$d").is_err());
    }

    #[test]
    fn precision_cuts_strings() {
        let args = [
            Value::Str("Ada Lovelace".into()),
            Value::Unsigned(3),
            Value::Signed(5),
        ];
        assert_eq!(Template::parse("%.4s|").unwrap().render(&args), "Ada |");
        // Pointer+length: the string is arg0, its length arg1.
        let t = Template::parse("%1$.*2$s.").unwrap();
        assert_eq!(t.string_args(), vec![0]);
        assert_eq!(t.render(&args), "Ada.");
        // C order: the length first.
        let t = Template::parse("%.*s!").unwrap();
        assert_eq!(t.string_args(), vec![1]);
        assert_eq!(
            t.render(&[Value::Signed(2), Value::Str("abc".into())]),
            "ab!"
        );
        assert!(Template::parse("%.3d").unwrap_err().contains("%s only"));
    }

    #[test]
    fn absurd_widths_are_errors_not_allocations() {
        let err = Template::parse("%99999999999999999999999d").unwrap_err();
        assert!(err.contains("field width over 4096"), "{err}");
        assert!(Template::parse("%4096d").is_ok());
    }

    #[test]
    fn arguments_shown() {
        let t = Template::parse("%x %p %5d %2$s").unwrap();
        assert_eq!(t.args(), vec![0, 1, 2]);
    }

    #[test]
    fn rejects_bad_templates() {
        assert!(Template::parse("%q").unwrap_err().contains("%q"));
        assert!(Template::parse("abc %").is_err());
    }
}
