//! Properties of `--filter` expressions (`uprobe_engine::expr`), shared by
//! the `filter` fuzz target and `uprobe-engine/tests/fuzz_regressions.rs`.

use stapsdt_reader::{parse_args, Arch};
use uprobe_engine::expr::{BinOp, Expr, Field, Filter, UnOp};
use uprobe_engine::lower::{self, Layout, Maps};
use uprobe_engine::plan::{plan_args, ArgRequest, Site};
use uprobe_engine::ProbeInfo;

/// A synthetic x86-64 site with an argument of each kind a filter meets:
/// registers, a memory operand, a constant, a string (arg3), a pointer +
/// length pair would need types, so plain strings stand for strings.
fn site() -> ProbeInfo {
    let args = parse_args(
        "8@%rdi -4@%esi 8@$5 8@%rdx -8@-24(%rbp) 2@%ax 1@%ah 8@%r9 -4@(%rax,%rbx,4) 8@%rcx 4@%r8d 8@%r10",
        Arch::X86_64,
    );
    let site = Site {
        arch: Arch::X86_64,
        address: 0x1140,
        fixed_addresses: false,
        rsp_adjust: 0,
        ip_adjust: 0,
    };
    let request = ArgRequest {
        strings: vec![3, 9],
        only: None,
        ..ArgRequest::default()
    };
    ProbeInfo {
        index: 0,
        label: "app:request__start".into(),
        path: "/fuzz/app".into(),
        offset: 0x1140,
        semaphore_offset: None,
        cheap_site: false,
        retprobe: false,
        args: plan_args(&args, &site, &request, None),
    }
}

/// - an error's column lies inside the text (or one past its end);
/// - a filter that parses prints back (fully parenthesised) to text that
///   parses to the same expression;
/// - its arguments are arg0..arg11;
/// - for the synthetic site, it either fails with a message naming the
///   filter, or lowers to a BPF program of bounded size.
pub fn filter_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let filter = match Filter::parse(text) {
        Ok(filter) => filter,
        Err(e) => {
            let chars = text.chars().count();
            assert!(
                (1..=chars + 1).contains(&e.column),
                "column {} of a {chars}-character filter: {}",
                e.column,
                e.message
            );
            assert_eq!(e.text, text);
            return;
        }
    };
    let printed = print(&filter.expr);
    let again = Filter::parse(&printed)
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?} does not parse: {e}"));
    assert_eq!(again.expr, filter.expr, "{text:?} printed as {printed:?}");
    let (ints, strings) = filter.args();
    assert!(ints
        .iter()
        .chain(&strings)
        .all(|&n| n <= uprobe_engine::expr::MAX_ARG));

    let site = site();
    match lower::filter::for_site(&filter, &site) {
        Err(message) => assert!(message.contains(text), "{message}"),
        Ok(expr) => {
            assert!(lower::filter::depth(&expr) <= lower::filter::MAX_DEPTH);
            let layout = Layout::of(&site, lower::DEFAULT_STRING_BYTES);
            let program = lower::record_program(&layout, Some(&expr), Maps::none());
            // The kernel takes at most a million instructions.
            assert!(!program.is_empty() && program.len() < 1_000_000);
        }
    }
}

/// Fully parenthesised text of an expression.
pub fn print(e: &Expr) -> String {
    match e {
        Expr::Int(v) if *v < 0 => format!("(-{})", v.unsigned_abs()),
        Expr::Int(v) => v.to_string(),
        Expr::Str(bytes) => {
            let mut s = String::from("\"");
            for &b in bytes {
                match b {
                    b'"' => s.push_str("\\\""),
                    b'\\' => s.push_str("\\\\"),
                    b' '..=b'~' => s.push(b as char),
                    _ => s.push_str(&format!("\\x{b:02x}")),
                }
            }
            s.push('"');
            s
        }
        Expr::Field(f) => match f {
            Field::Pid => "pid",
            Field::Tid => "tid",
            Field::Cpu => "cpu",
            Field::Comm => "comm",
            Field::Probe => "probe",
        }
        .to_string(),
        Expr::Arg(n) => format!("arg{n}"),
        Expr::ArgStr(n) => format!("str(arg{n})"),
        Expr::Unary(op, a) => {
            let op = match op {
                UnOp::Not => "!",
                UnOp::Neg => "-",
                UnOp::BitNot => "~",
            };
            format!("{op}({})", print(a))
        }
        Expr::Binary(op, a, b) => {
            use BinOp::*;
            let op = match op {
                Mul => "*",
                Div => "/",
                Mod => "%",
                Add => "+",
                Sub => "-",
                Shl => "<<",
                Shr => ">>",
                Lt => "<",
                Le => "<=",
                Gt => ">",
                Ge => ">=",
                Eq => "==",
                Ne => "!=",
                BitAnd => "&",
                BitXor => "^",
                BitOr => "|",
                And => "&&",
                Or => "||",
            };
            format!("({}) {op} ({})", print(a), print(b))
        }
    }
}
