//! Engine events → named events with decoded fields.

use crate::tapset::{Decode, ProbeDef};
use std::fmt;
use std::rc::Rc;
use uprobe_engine::Value;

/// A decoded field value.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Str(String),
    Int(i64),
    Uint(u64),
    Pointer(u64),
    Bool(bool),
    /// The kernel could not read the string at the hit.
    Fault,
    /// The argument could not be fetched (said at attach time).
    Unavailable,
}

impl FieldValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Str(s) => write!(f, "{s:?}"),
            FieldValue::Int(v) => write!(f, "{v}"),
            FieldValue::Uint(v) => write!(f, "{v}"),
            FieldValue::Pointer(v) => write!(f, "0x{v:x}"),
            FieldValue::Bool(v) => write!(f, "{v}"),
            FieldValue::Fault => f.write_str("<fault>"),
            FieldValue::Unavailable => f.write_str("<unavailable>"),
        }
    }
}

/// One hit of a tapset probe.
#[derive(Debug, Clone)]
pub struct NamedEvent {
    /// `python.function.entry`, ...
    pub name: Rc<str>,
    /// Wall-clock time of the hit, nanoseconds since the epoch.
    pub time_ns: u128,
    pub pid: u32,
    pub tid: u32,
    pub cpu: u32,
    pub comm: String,
    pub fields: Vec<(&'static str, FieldValue)>,
}

impl NamedEvent {
    pub fn field(&self, name: &str) -> Option<&FieldValue> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// A string field, or "" when absent or unreadable.
    pub fn text(&self, name: &str) -> &str {
        self.field(name).and_then(FieldValue::as_str).unwrap_or("")
    }
}

fn integer(value: &Value) -> Option<i128> {
    value.as_i128()
}

/// `s` cut to `len` bytes (at a character boundary; the kernel read on to
/// the next NUL, which HotSpot's symbols do not have).
fn cut(mut s: String, len: i128) -> String {
    let Ok(mut len) = usize::try_from(len) else {
        return String::new();
    };
    if len < s.len() {
        while !s.is_char_boundary(len) {
            len -= 1;
        }
        s.truncate(len);
    }
    s
}

/// The fields of `def` from the engine's argument values.
pub fn fields(def: &ProbeDef, args: &[Value]) -> Vec<(&'static str, FieldValue)> {
    def.fields
        .iter()
        .map(|f| {
            let value = args.get(f.arg).unwrap_or(&Value::Unavailable);
            let decoded = match (f.decode, value) {
                (_, Value::Unavailable) => FieldValue::Unavailable,
                (_, Value::Fault) => FieldValue::Fault,
                (Decode::CStr, Value::Str(s)) => FieldValue::Str(s.clone()),
                (Decode::LenStr { len }, Value::Str(s)) => match args.get(len).and_then(integer) {
                    Some(n) => FieldValue::Str(cut(s.clone(), n)),
                    None => FieldValue::Unavailable,
                },
                (Decode::Signed, v) => {
                    integer(v).map_or(FieldValue::Unavailable, |n| FieldValue::Int(n as i64))
                }
                (Decode::Unsigned, v) => {
                    integer(v).map_or(FieldValue::Unavailable, |n| FieldValue::Uint(n as u64))
                }
                (Decode::Pointer, v) => {
                    integer(v).map_or(FieldValue::Unavailable, |n| FieldValue::Pointer(n as u64))
                }
                (Decode::Bool, v) => {
                    integer(v).map_or(FieldValue::Unavailable, |n| FieldValue::Bool(n & 0xff != 0))
                }
                _ => FieldValue::Unavailable,
            };
            // HotSpot passes internal class names (`java/lang/Object`):
            // every view spells them as Java does, `java.lang.Object`.
            let decoded = match decoded {
                FieldValue::Str(s) if f.name == "class" && def.provider.starts_with("hotspot") => {
                    FieldValue::Str(s.replace('/', "."))
                }
                other => other,
            };
            (f.name, decoded)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tapset::Runtime;

    fn def(event: &str) -> ProbeDef {
        Runtime::ALL
            .iter()
            .flat_map(|r| r.table().iter())
            .find(|d| d.event == event)
            .unwrap()
            .clone()
    }

    #[test]
    fn hotspot_strings_stop_at_their_length() {
        // What the kernel read: the symbol and whatever followed it up to a NUL.
        let args = vec![
            Value::Unsigned(1),
            Value::Str("HelloGARBAGE".into()),
            Value::Signed(5),
            Value::Str("mainxx".into()),
            Value::Signed(4),
            Value::Str("([Ljava/lang/String;)V\u{1}\u{2}".into()),
            Value::Signed(22),
        ];
        let f = fields(&def("hotspot.method.entry"), &args);
        assert_eq!(f[0], ("thread", FieldValue::Uint(1)));
        assert_eq!(f[1], ("class", FieldValue::Str("Hello".into())));
        assert_eq!(f[2], ("method", FieldValue::Str("main".into())));
        assert_eq!(
            f[3],
            (
                "signature",
                FieldValue::Str("([Ljava/lang/String;)V".into())
            )
        );
    }

    #[test]
    fn cuts_respect_characters_and_bad_lengths() {
        assert_eq!(cut("héllo".into(), 2), "h");
        assert_eq!(cut("abc".into(), 10), "abc");
        assert_eq!(cut("abc".into(), -1), "");
    }

    #[test]
    fn faults_and_missing_arguments() {
        let f = fields(
            &def("python.function.entry"),
            &[Value::Fault, Value::Str("f".into())],
        );
        assert_eq!(f[0].1, FieldValue::Fault);
        assert_eq!(f[1].1, FieldValue::Str("f".into()));
        assert_eq!(f[2].1, FieldValue::Unavailable);
        let b = fields(&def("hotspot.gc.begin"), &[Value::Unsigned(0x100)]);
        assert_eq!(b[0].1, FieldValue::Bool(false));
    }
}
