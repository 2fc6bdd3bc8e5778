//! Register name tables, so that every `Register::name` and
//! `Register::canonical` is a `&'static str` (no allocation per operand).

/// `[PREFIX0 SUFFIX, PREFIX1 SUFFIX, ..., PREFIX31 SUFFIX]` as string literals.
macro_rules! names32 {
    ($prefix:literal) => {
        names32!($prefix, "")
    };
    ($prefix:literal, $suffix:literal) => {
        [
            concat!($prefix, "0", $suffix),
            concat!($prefix, "1", $suffix),
            concat!($prefix, "2", $suffix),
            concat!($prefix, "3", $suffix),
            concat!($prefix, "4", $suffix),
            concat!($prefix, "5", $suffix),
            concat!($prefix, "6", $suffix),
            concat!($prefix, "7", $suffix),
            concat!($prefix, "8", $suffix),
            concat!($prefix, "9", $suffix),
            concat!($prefix, "10", $suffix),
            concat!($prefix, "11", $suffix),
            concat!($prefix, "12", $suffix),
            concat!($prefix, "13", $suffix),
            concat!($prefix, "14", $suffix),
            concat!($prefix, "15", $suffix),
            concat!($prefix, "16", $suffix),
            concat!($prefix, "17", $suffix),
            concat!($prefix, "18", $suffix),
            concat!($prefix, "19", $suffix),
            concat!($prefix, "20", $suffix),
            concat!($prefix, "21", $suffix),
            concat!($prefix, "22", $suffix),
            concat!($prefix, "23", $suffix),
            concat!($prefix, "24", $suffix),
            concat!($prefix, "25", $suffix),
            concat!($prefix, "26", $suffix),
            concat!($prefix, "27", $suffix),
            concat!($prefix, "28", $suffix),
            concat!($prefix, "29", $suffix),
            concat!($prefix, "30", $suffix),
            concat!($prefix, "31", $suffix),
        ]
    };
}

pub(crate) type Names = [&'static str; 32];

pub(crate) const X: Names = names32!("x");
pub(crate) const W: Names = names32!("w");
pub(crate) const R: Names = names32!("r");
pub(crate) const R_D: Names = names32!("r", "d");
pub(crate) const R_W: Names = names32!("r", "w");
pub(crate) const R_B: Names = names32!("r", "b");
pub(crate) const V: Names = names32!("v");
pub(crate) const Q: Names = names32!("q");
pub(crate) const D: Names = names32!("d");
pub(crate) const S: Names = names32!("s");
pub(crate) const H: Names = names32!("h");
pub(crate) const B: Names = names32!("b");
pub(crate) const F: Names = names32!("f");
pub(crate) const XMM: Names = names32!("xmm");
/// Bare register numbers (powerpc writes `3` for r3).
pub(crate) const NUM: Names = names32!("");
/// RISC-V integer registers by ABI name, indexed by register number.
pub(crate) const RISCV_ABI: Names = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];

/// `PREFIX` followed by a decimal register number below `limit`, no leading zeros.
pub(crate) fn numbered(name: &str, prefix: &str, limit: usize) -> Option<usize> {
    let digits = name.strip_prefix(prefix)?;
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 2 {
        return None;
    }
    let n: usize = digits.parse().ok()?;
    (n < limit).then_some(n)
}

/// The static name from `table` if `name` is `table`'s prefix and a number below `limit`.
pub(crate) fn lookup(
    name: &str,
    table: &Names,
    prefix: &str,
    limit: usize,
) -> Option<(usize, &'static str)> {
    numbered(name, prefix, limit).map(|n| (n, table[n]))
}
