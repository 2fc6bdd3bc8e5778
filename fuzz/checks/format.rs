//! Properties of `--format` templates, shared by the `format` fuzz target
//! and `tests/fuzz_format.rs`. The parser lives in the binary crate
//! (`src/trace/printf.rs`); both include that very file with `#[path]`
//! and refer to it as `crate::printf`, so no copy of it exists.

use crate::printf::Template;
use uprobe_engine::Value;

/// Values of every kind, including the extremes a hit can carry.
fn values() -> Vec<Value> {
    vec![
        Value::Signed(i64::MIN),
        Value::Unsigned(u64::MAX),
        Value::Str("héllo\u{0}\n".into()),
        Value::Float(f64::NAN),
        Value::Signed(-4096),
        Value::Unsigned(4097),
        Value::Fault,
        Value::Unavailable,
        Value::Float(-1e300),
        Value::Str(String::new()),
        Value::Signed(5),
        Value::Unsigned(0x10ffff),
    ]
}

/// - an error quotes the template;
/// - a template's arguments are 0..12 and its `%s` arguments among them;
/// - rendering with any values is bounded: the literal text plus at most
///   4096 columns (the widest field or precision) or the value itself per
///   conversion;
/// - a template without `%` or `\` renders to itself.
pub fn template_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let template = match Template::parse(text) {
        Ok(t) => t,
        Err(e) => {
            assert!(e.contains(text), "{e}");
            return;
        }
    };
    let args = template.args();
    assert!(args.iter().all(|&a| a < 12), "{args:?}");
    for s in template.string_args() {
        assert!(args.contains(&s));
    }
    let values = values();
    let longest_value = values
        .iter()
        .map(|v| v.to_string().len() + 64)
        .max()
        .unwrap();
    let conversions = text.matches('%').count();
    let bound = text.len() + conversions * (4096 * 4 + longest_value);
    for shift in 0..3 {
        let mut shifted = values.clone();
        shifted.rotate_left(shift * 5);
        let out = template.render(&shifted);
        assert!(out.len() <= bound, "{} bytes from {text:?}", out.len());
    }
    // Missing arguments render as unavailable, never panic.
    let _ = template.render(&[]);
    if !text.contains(['%', '\\']) {
        assert_eq!(template.render(&values), text);
    }
}
