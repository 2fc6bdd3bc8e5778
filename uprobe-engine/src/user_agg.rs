//! Filters and aggregations evaluated in user space, over delivered
//! events: what the in-process backend uses where the kernel backend runs
//! BPF (`lower::filter`, `lower::aggregate`), with the same results: the
//! same keys, buckets and statistics, and the filter with the BPF
//! program's arithmetic (64-bit two's complement, signed division and
//! comparisons, division by zero giving 0, modulo by zero the dividend,
//! shift counts taken modulo 64).

use crate::expr::{BinOp, Expr, Field, Filter, UnOp};
use crate::lower::aggregate::{AggSpec, AggValue, KeyPart};
use crate::session::{AggRow, Event, KeyValue, Stats};
use crate::value::Value;
use std::collections::HashMap;

/// The `--by` key of a hit.
pub fn key_of(spec: &AggSpec, event: &Event) -> Vec<KeyValue> {
    let int = |v: Option<&Value>| KeyValue::Int(v.and_then(Value::as_i128).unwrap_or(0) as i64);
    spec.keys
        .iter()
        .map(|k| match k {
            KeyPart::Probe => KeyValue::Probe(event.probe.label.clone()),
            KeyPart::Pid => KeyValue::Int(i64::from(event.pid)),
            KeyPart::Tid => KeyValue::Int(i64::from(event.tid)),
            KeyPart::Cpu => KeyValue::Int(i64::from(event.cpu)),
            KeyPart::Comm => KeyValue::Str(event.comm.to_string()),
            KeyPart::Arg(n) => int(event.args.get(*n)),
            KeyPart::Str(n) => KeyValue::Str(match event.args.get(*n) {
                Some(Value::Str(s)) => s.clone(),
                _ => String::new(),
            }),
            KeyPart::Ustack => KeyValue::Stack {
                pid: event.pid,
                ips: event.ustack.clone(),
            },
        })
        .collect()
}

impl Stats {
    /// Add one value (with a histogram of `spec`'s buckets when it has one).
    pub fn add(&mut self, v: i64, spec: &AggSpec) {
        if spec.has_histogram() && self.buckets.is_empty() {
            self.buckets = vec![0; spec.buckets.count()];
        }
        if self.count == 0 {
            (self.min, self.max) = (v, v);
        }
        self.count += 1;
        self.sum += i128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if let Some(b) = self.buckets.get_mut(spec.buckets.index(v)) {
            *b += 1;
        }
    }
}

/// A filter and/or an aggregation over events.
pub struct UserAggregate {
    spec: Option<AggSpec>,
    filter: Option<Filter>,
    /// The filter folded for each probe label (`probe == "glob"`).
    folded: HashMap<String, Expr>,
    rows: Rows,
}

/// Statistics by key, made in user space: the in-process backend's
/// aggregations and user-space latency pairs.
#[derive(Debug, Default)]
pub struct Rows(HashMap<Vec<KeyValue>, Stats>);

impl Rows {
    /// Add `value` to the statistics of `key`.
    pub fn add(&mut self, key: Vec<KeyValue>, value: i64, spec: &AggSpec) {
        self.0.entry(key).or_default().add(value, spec);
    }

    /// Every key with its statistics, as the kernel's maps give them.
    pub fn rows(&self) -> Vec<AggRow> {
        self.0
            .iter()
            .map(|(key, stats)| AggRow {
                key: key.clone(),
                stats: stats.clone(),
            })
            .collect()
    }
}

impl UserAggregate {
    pub fn new(spec: Option<AggSpec>, filter: Option<Filter>) -> UserAggregate {
        UserAggregate {
            spec,
            filter,
            folded: HashMap::new(),
            rows: Rows::default(),
        }
    }

    /// Whether events are aggregated (rather than handed on).
    pub fn aggregating(&self) -> bool {
        self.spec.is_some()
    }

    /// Whether the hit passes the filter.
    pub fn keeps(&mut self, event: &Event) -> bool {
        let Some(filter) = &self.filter else {
            return true;
        };
        let label = &event.probe.label;
        // Looked up by reference: `entry` would clone the label per event.
        if !self.folded.contains_key(label) {
            self.folded.insert(label.clone(), filter.for_probe(label));
        }
        eval(&self.folded[label], event) != 0
    }

    /// Add a hit (that passed the filter) to its key.
    pub fn add(&mut self, event: &Event) {
        let Some(spec) = &self.spec else {
            return;
        };
        let v = match spec.value {
            AggValue::Arg(n) => event.args.get(n).and_then(Value::as_i128).unwrap_or(0) as i64,
            _ => 1,
        };
        self.rows.add(key_of(spec, event), v, spec);
    }

    pub fn rows(&self) -> Vec<AggRow> {
        self.rows.rows()
    }
}

/// An argument as the BPF filter reads it: its integer (sign- or
/// zero-extended from its width, as decoded), 0 when it is not one.
fn int_arg(event: &Event, n: usize) -> i64 {
    event
        .args
        .get(n)
        .and_then(Value::as_i128)
        .map_or(0, |v| v as i64)
}

fn string_of<'a>(e: &Expr, event: &'a Event) -> Option<&'a [u8]> {
    match e {
        Expr::Field(Field::Comm) => Some(event.comm.as_bytes()),
        Expr::Field(Field::Probe) => Some(event.probe.label.as_bytes()),
        Expr::ArgStr(n) => match event.args.get(*n) {
            Some(Value::Str(s)) => Some(s.as_bytes()),
            _ => None,
        },
        _ => None,
    }
}

/// The value of a (type-checked) expression at a hit.
pub fn eval(e: &Expr, event: &Event) -> i64 {
    match e {
        Expr::Int(v) => *v,
        Expr::Field(Field::Pid) => i64::from(event.pid),
        Expr::Field(Field::Tid) => i64::from(event.tid),
        Expr::Field(Field::Cpu) => i64::from(event.cpu),
        Expr::Arg(n) => int_arg(event, *n),
        Expr::Field(_) | Expr::Str(_) | Expr::ArgStr(_) => 0,
        Expr::Unary(op, a) => {
            let a = eval(a, event);
            match op {
                UnOp::Not => i64::from(a == 0),
                UnOp::Neg => a.wrapping_neg(),
                UnOp::BitNot => !a,
            }
        }
        Expr::Binary(BinOp::And, l, r) => i64::from(eval(l, event) != 0 && eval(r, event) != 0),
        Expr::Binary(BinOp::Or, l, r) => i64::from(eval(l, event) != 0 || eval(r, event) != 0),
        Expr::Binary(op @ (BinOp::Eq | BinOp::Ne), l, r)
            if matches!(&**l, Expr::Str(_)) || matches!(&**r, Expr::Str(_)) =>
        {
            let (s, lit) = match (&**l, &**r) {
                (Expr::Str(lit), s) | (s, Expr::Str(lit)) => (s, lit),
                _ => return 0,
            };
            let equal = string_of(s, event) == Some(lit.as_slice());
            i64::from(equal == (*op == BinOp::Eq))
        }
        Expr::Binary(op, l, r) => {
            let (a, b) = (eval(l, event), eval(r, event));
            match op {
                BinOp::Mul => a.wrapping_mul(b),
                BinOp::Div if b == 0 => 0,
                BinOp::Div => a.wrapping_div(b),
                BinOp::Mod if b == 0 => a,
                BinOp::Mod => a.wrapping_rem(b),
                BinOp::Add => a.wrapping_add(b),
                BinOp::Sub => a.wrapping_sub(b),
                BinOp::Shl => a.wrapping_shl((b & 63) as u32),
                BinOp::Shr => a.wrapping_shr((b & 63) as u32),
                BinOp::BitAnd => a & b,
                BinOp::BitXor => a ^ b,
                BinOp::BitOr => a | b,
                BinOp::Lt => i64::from(a < b),
                BinOp::Le => i64::from(a <= b),
                BinOp::Gt => i64::from(a > b),
                BinOp::Ge => i64::from(a >= b),
                BinOp::Eq => i64::from(a == b),
                BinOp::Ne => i64::from(a != b),
                BinOp::And | BinOp::Or => 0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::aggregate::Buckets;
    use crate::plan::ProbeInfo;

    fn probe() -> ProbeInfo {
        ProbeInfo {
            index: 0,
            label: "app:req".into(),
            path: "/bin/app".into(),
            offset: 0,
            semaphore_offset: None,
            cheap_site: true,
            retprobe: false,
            args: Vec::new(),
        }
    }

    fn event<'a>(probe: &'a ProbeInfo, args: Vec<Value>) -> Event<'a> {
        Event {
            time_ns: 0,
            pid: 10,
            tid: 11,
            cpu: 1,
            comm: "app",
            probe,
            args,
            ustack: Vec::new(),
        }
    }

    #[test]
    fn filters_compute_as_the_bpf_program_does() {
        let p = probe();
        let e = event(&p, vec![Value::Signed(-7), Value::Str("GET".into())]);
        let keeps = |text: &str| {
            let mut agg = UserAggregate::new(None, Some(Filter::parse(text).unwrap()));
            agg.keeps(&e)
        };
        assert!(keeps("arg0 < 0 && str(arg1) == \"GET\""));
        assert!(!keeps("str(arg1) != \"GET\""));
        assert!(keeps("probe == \"app:*\" && comm == \"app\" && tid == 11"));
        assert!(keeps("arg0 / 0 == 0 && arg0 % 0 == -7"));
        assert!(keeps("(1 << 65) == 2 && -7 / 2 == -3"));
        assert!(!keeps("probe == \"other:*\" || pid != 10"));
    }

    #[test]
    fn aggregates_by_key_with_histograms() {
        let p = probe();
        let spec = AggSpec {
            keys: vec![KeyPart::Str(1)],
            value: AggValue::Arg(0),
            buckets: Buckets::Log2,
            key_string_bytes: 128,
        };
        let mut agg = UserAggregate::new(Some(spec), None);
        for (v, s) in [(1, "a"), (3, "a"), (0, "b")] {
            agg.add(&event(&p, vec![Value::Signed(v), Value::Str(s.into())]));
        }
        let mut rows = agg.rows();
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(rows[0].key, vec![KeyValue::Str("a".into())]);
        assert_eq!(
            (rows[0].stats.count, rows[0].stats.sum, rows[0].stats.max),
            (2, 4, 3)
        );
        assert_eq!(rows[0].stats.buckets[2] + rows[0].stats.buckets[3], 2);
        assert_eq!(rows[1].stats.buckets[1], 1, "0 in the zero bucket");
    }
}
