//! Integer literals as the assemblers write them in operands.

/// Parse `[+-]DIGITS` where DIGITS is decimal, `0x` hex or `0` octal (GAS syntax).
/// Values past `i64` wrap, as the assembler's 64-bit arithmetic does
/// (`0xffffffffffffffff` is -1).
pub(crate) fn parse_int(text: &str) -> Result<i64, String> {
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) =
        if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, hex)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() {
        return Err(format!("`{text}` is not a number"));
    }
    let magnitude = u64::from_str_radix(digits, radix)
        .map_err(|_| format!("`{text}` is not a number that fits in 64 bits"))?;
    let value = magnitude as i64;
    Ok(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// True if `text` starts like a number (after an optional sign).
pub(crate) fn starts_numeric(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    body.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(parse_int("42"), Ok(42));
        assert_eq!(parse_int("-20"), Ok(-20));
        assert_eq!(parse_int("+8"), Ok(8));
        assert_eq!(parse_int("0x10"), Ok(16));
        assert_eq!(parse_int("-0x10"), Ok(-16));
        assert_eq!(parse_int("010"), Ok(8));
        assert_eq!(parse_int("0"), Ok(0));
        assert_eq!(parse_int("0xffffffffffffffff"), Ok(-1));
        assert!(parse_int("").is_err());
        assert!(parse_int("-").is_err());
        assert!(parse_int("0x").is_err());
        assert!(parse_int("12a").is_err());
        assert!(parse_int("0x1ffffffffffffffff").is_err());
    }
}
