//! `--filter` expressions to BPF: evaluated over a filled record (R7), so
//! that a filter sees exactly the values a printed line would show.
//!
//! Code generation is a stack machine over the BPF stack: a binary
//! operator evaluates its left side into R0, parks it in a stack slot for
//! its depth, evaluates the right side, and combines. Only R0-R5 are used,
//! so the callers' R6-R9 survive.

use super::{arg_slot, Builder, Layout, COMM, CPU, PID_TGID};
use crate::bpf::insn::{self, Alu, Cond, R0, R1, R10, R2, R3};
use crate::expr::{BinOp, Expr, Field, Filter, UnOp};
use crate::plan::{Fetch, ProbeInfo, ValueKind};

/// Stack slots for operands waiting for their right-hand side, below the
/// slots the record code uses.
const TEMPS: i16 = -64;
/// Operators nested deeper than this are refused (the BPF stack is 512 bytes).
pub const MAX_DEPTH: usize = 48;

/// The filter as one site's program evaluates it: `probe` comparisons and
/// constant arguments folded, every argument checked to be fetchable and of
/// the kind it is used as. Errors name the probe.
pub fn for_site(filter: &Filter, site: &ProbeInfo) -> Result<Expr, String> {
    let expr = filter.for_probe(&site.label);
    if depth(&expr) > MAX_DEPTH {
        return Err(format!(
            "--filter `{}`: nested deeper than {MAX_DEPTH} operators",
            filter.text
        ));
    }
    resolve(&expr, site).map_err(|e| format!("--filter `{}`: {e}", filter.text))
}

/// Filters nested at most this deep leave the bottom of the stack free
/// (temporaries down to -64 - 8 * 24 = -256).
pub const SHALLOW: usize = 24;

/// Header fields a filter reads.
#[derive(Default)]
pub struct Fields {
    pub thread: bool,
    pub cpu: bool,
    pub comm: bool,
}

pub fn fields(e: &Expr) -> Fields {
    let mut f = Fields::default();
    fn walk(e: &Expr, f: &mut Fields) {
        match e {
            Expr::Field(Field::Pid | Field::Tid) => f.thread = true,
            Expr::Field(Field::Cpu) => f.cpu = true,
            Expr::Field(Field::Comm) => f.comm = true,
            Expr::Unary(_, a) => walk(a, f),
            Expr::Binary(_, a, b) => {
                walk(a, f);
                walk(b, f);
            }
            _ => {}
        }
    }
    walk(e, &mut f);
    f
}

pub fn depth(e: &Expr) -> usize {
    match e {
        Expr::Unary(_, a) => depth(a),
        Expr::Binary(_, a, b) => 1 + depth(a).max(depth(b)),
        _ => 0,
    }
}

/// Check an argument `n` of `site` for use as an integer or a string.
pub fn check_arg(site: &ProbeInfo, n: usize, as_string: bool) -> Result<Option<i64>, String> {
    let name = if as_string {
        format!("str(arg{n})")
    } else {
        format!("arg{n}")
    };
    let Some(arg) = site.args.get(n) else {
        return Err(format!(
            "{name}: {} has {} argument{}",
            site.label,
            site.args.len(),
            if site.args.len() == 1 { "" } else { "s" }
        ));
    };
    let is_string = matches!(arg.kind, ValueKind::Str | ValueKind::StrN { .. });
    match &arg.fetch {
        Fetch::Constant(v) if !as_string => return Ok(Some(*v)),
        Fetch::At(_) => {}
        Fetch::Constant(_) => {
            return Err(format!(
                "{name}: arg{n} of {} is a constant ({}), not a string",
                site.label, arg.raw
            ))
        }
        Fetch::Unavailable(why) => {
            return Err(format!(
                "{name}: arg{n} of {} cannot be fetched: {why}",
                site.label
            ))
        }
        Fetch::NotRequested => {
            return Err(format!("{name}: arg{n} of {} was not fetched", site.label))
        }
    }
    match (as_string, is_string) {
        (true, false) => Err(format!(
            "{name}: arg{n} of {} is not fetched as a string",
            site.label
        )),
        (false, true) => Err(format!(
            "{name}: arg{n} of {} is a string; compare str(arg{n}) with a literal",
            site.label
        )),
        _ => Ok(None),
    }
}

fn resolve(e: &Expr, site: &ProbeInfo) -> Result<Expr, String> {
    Ok(match e {
        Expr::Arg(n) => match check_arg(site, *n, false)? {
            Some(constant) => Expr::Int(constant),
            None => Expr::Arg(*n),
        },
        Expr::ArgStr(n) => {
            check_arg(site, *n, true)?;
            Expr::ArgStr(*n)
        }
        Expr::Unary(op, a) => Expr::Unary(*op, Box::new(resolve(a, site)?)),
        Expr::Binary(op, a, b) => Expr::Binary(
            *op,
            Box::new(resolve(a, site)?),
            Box::new(resolve(b, site)?),
        ),
        other => other.clone(),
    })
}

/// `R0 = expr`, over the record at R7 laid out as `layout`.
pub(crate) fn condition(b: &mut Builder, e: &Expr, layout: &Layout) {
    gen(b, e, layout, 0);
}

fn temp(depth: usize) -> i16 {
    TEMPS - 8 * depth as i16
}

fn imm(b: &mut Builder, value: i64) {
    match i32::try_from(value) {
        Ok(v) => b.push(insn::mov_imm(R0, v)),
        Err(_) => b.extend(insn::load_imm64(R0, value as u64)),
    }
}

/// `R0 = argument n` as a 64-bit integer: sign- or zero-extended from its
/// width (a register may hold garbage above a narrow argument).
pub(crate) fn load_int_arg(b: &mut Builder, r: insn::Reg, layout: &Layout, n: usize) {
    b.push(insn::load64(r, super::R7, arg_slot(n) as i16));
    if let Some(Some(arg)) = layout.args.get(n) {
        if let ValueKind::Int { bytes, signed } = arg.kind {
            if bytes < 8 {
                let bits = 64 - 8 * i32::from(bytes);
                b.push(insn::lsh_imm(r, bits));
                b.push(insn::alu_imm(
                    if signed { Alu::Arsh } else { Alu::Rsh },
                    r,
                    bits,
                ));
            }
        }
    }
}

fn gen(b: &mut Builder, e: &Expr, layout: &Layout, depth: usize) {
    match e {
        Expr::Int(v) => imm(b, *v),
        Expr::Field(Field::Pid) => b.push(insn::load32(R0, super::R7, PID_TGID + 4)),
        Expr::Field(Field::Tid) => b.push(insn::load32(R0, super::R7, PID_TGID)),
        Expr::Field(Field::Cpu) => b.push(insn::load32(R0, super::R7, CPU)),
        Expr::Arg(n) => load_int_arg(b, R0, layout, *n),
        // Strings only appear in comparisons (type-checked).
        Expr::Field(_) | Expr::Str(_) | Expr::ArgStr(_) => b.push(insn::mov_imm(R0, 0)),
        Expr::Unary(op, a) => {
            gen(b, a, layout, depth);
            match op {
                UnOp::Not => truth(b, Cond::Eq),
                UnOp::Neg => b.push(insn::neg(R0)),
                UnOp::BitNot => b.push(insn::alu_imm(Alu::Xor, R0, -1)),
            }
        }
        Expr::Binary(op @ (BinOp::And | BinOp::Or), l, r) => {
            // Short-circuit: `&&` ends at the first zero, `||` at the
            // first non-zero.
            let ends = if *op == BinOp::And {
                Cond::Eq
            } else {
                Cond::Ne
            };
            gen(b, l, layout, depth);
            let first = b.forward(insn::jump_if_imm(ends, R0, 0, 0));
            gen(b, r, layout, depth);
            let second = b.forward(insn::jump_if_imm(ends, R0, 0, 0));
            b.push(insn::mov_imm(R0, i32::from(*op == BinOp::And)));
            let end = b.forward(insn::jump(0));
            b.land(first);
            b.land(second);
            b.push(insn::mov_imm(R0, i32::from(*op == BinOp::Or)));
            b.land(end);
        }
        Expr::Binary(op @ (BinOp::Eq | BinOp::Ne), l, r) if is_string(l) || is_string(r) => {
            let (s, lit) = match (&**l, &**r) {
                (Expr::Str(lit), s) | (s, Expr::Str(lit)) => (s, lit),
                _ => unreachable!("type-checked: a string compares with a literal"),
            };
            string_eq(b, s, lit, layout);
            if *op == BinOp::Ne {
                truth(b, Cond::Eq);
            }
        }
        Expr::Binary(op, l, r) => {
            gen(b, l, layout, depth);
            b.push(insn::store64(R10, temp(depth), R0));
            gen(b, r, layout, depth + 1);
            b.push(insn::mov(R1, R0));
            b.push(insn::load64(R0, R10, temp(depth)));
            let alu = match op {
                BinOp::Mul => Some(Alu::Mul),
                BinOp::Div => Some(Alu::SDiv),
                BinOp::Mod => Some(Alu::SMod),
                BinOp::Add => Some(Alu::Add),
                BinOp::Sub => Some(Alu::Sub),
                BinOp::Shl => Some(Alu::Lsh),
                BinOp::Shr => Some(Alu::Arsh),
                BinOp::BitAnd => Some(Alu::And),
                BinOp::BitXor => Some(Alu::Xor),
                BinOp::BitOr => Some(Alu::Or),
                _ => None,
            };
            if let Some(alu) = alu {
                b.push(insn::alu(alu, R0, R1));
                return;
            }
            let cond = match op {
                BinOp::Lt => Cond::SLt,
                BinOp::Le => Cond::SLe,
                BinOp::Gt => Cond::SGt,
                BinOp::Ge => Cond::SGe,
                BinOp::Eq => Cond::Eq,
                _ => Cond::Ne,
            };
            b.push(insn::mov_imm(R2, 1));
            b.push(insn::jump_if(cond, R0, R1, 1));
            b.push(insn::mov_imm(R2, 0));
            b.push(insn::mov(R0, R2));
        }
    }
}

fn is_string(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Str(_) | Expr::ArgStr(_) | Expr::Field(Field::Comm | Field::Probe)
    )
}

/// `R0 = (R0 cond 0)` as 1 or 0.
fn truth(b: &mut Builder, cond: Cond) {
    b.push(insn::jump_if_imm(cond, R0, 0, 2));
    b.push(insn::mov_imm(R0, 0));
    b.push(insn::jump(1));
    b.push(insn::mov_imm(R0, 1));
}

/// `R0 = (string s == lit)`. The record holds `comm` at a fixed place, and
/// an argument's string where its slot's `__data_loc` says, with its NUL
/// counted in the length (a counted string has none).
fn string_eq(b: &mut Builder, s: &Expr, lit: &[u8], layout: &Layout) {
    let mut to_false = Vec::new();
    match s {
        Expr::Field(Field::Comm) => {
            if lit.len() >= super::COMM_BYTES {
                b.push(insn::mov_imm(R0, 0));
                return;
            }
            b.push(insn::mov(R1, super::R7));
            b.push(insn::add_imm(R1, COMM as i32));
            compare_bytes(b, lit, &mut to_false);
            b.push(insn::load8(R3, R1, lit.len() as i16));
            to_false.push(b.forward(insn::jump_if_imm(Cond::Ne, R3, 0, 0)));
        }
        Expr::ArgStr(n) => {
            let counted = matches!(
                layout.args.get(*n),
                Some(Some(a)) if matches!(a.kind, ValueKind::StrN { .. })
            );
            let stored = lit.len() + usize::from(!counted);
            // A literal longer than a string can be never matches.
            if stored > layout.string_bytes {
                b.push(insn::mov_imm(R0, 0));
                return;
            }
            b.push(insn::load64(R1, super::R7, arg_slot(*n) as i16));
            b.push(insn::mov(R2, R1));
            b.push(insn::rsh_imm(R2, 16));
            to_false.push(b.forward(insn::jump_if_imm(Cond::Ne, R2, stored as i32, 0)));
            b.push(insn::and_imm(R1, 0xffff));
            // Bounded for the verifier: the string lies inside the record.
            let last_start = layout.record_bytes().saturating_sub(stored) as i32;
            to_false.push(b.forward(insn::jump_if_imm(Cond::Gt, R1, last_start, 0)));
            b.push(insn::add(R1, super::R7));
            compare_bytes(b, lit, &mut to_false);
        }
        _ => {
            b.push(insn::mov_imm(R0, 0));
            return;
        }
    }
    b.push(insn::mov_imm(R0, 1));
    let end = b.forward(insn::jump(0));
    for at in to_false {
        b.land(at);
    }
    b.push(insn::mov_imm(R0, 0));
    b.land(end);
}

/// Each byte at R1 against the literal; a difference jumps (to be landed).
fn compare_bytes(b: &mut Builder, lit: &[u8], to_false: &mut Vec<usize>) {
    for (i, &byte) in lit.iter().enumerate() {
        b.push(insn::load8(R3, R1, i as i16));
        to_false.push(b.forward(insn::jump_if_imm(Cond::Ne, R3, i32::from(byte), 0)));
    }
}
