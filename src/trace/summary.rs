//! `--count` and `--hist`: aggregation and the bpftrace-like printouts.

use std::collections::BTreeMap;

/// Hits per probe label, printed as `@count[label]: N`, largest last.
pub fn print_counts(counts: &BTreeMap<String, u64>, json: bool) {
    let mut rows: Vec<(&String, &u64)> = counts.iter().collect();
    rows.sort_by_key(|(label, n)| (**n, (*label).clone()));
    for (label, n) in rows {
        if json {
            println!(
                "{}",
                serde_json::json!({"type": "count", "probe": label, "count": n})
            );
        } else {
            println!("@count[{label}]: {n}");
        }
    }
}

/// A log2 histogram: bucket 0 holds negatives, 1 holds 0, 2 holds 1, then
/// bucket k+2 holds [2^k, 2^(k+1)) for k >= 1.
#[derive(Debug, Default, Clone)]
pub struct Log2Hist {
    buckets: BTreeMap<u32, u64>,
}

impl Log2Hist {
    pub fn add(&mut self, value: i128) {
        let bucket = match value {
            v if v < 0 => 0,
            0 => 1,
            v => 2 + (127 - v.leading_zeros()),
        };
        *self.buckets.entry(bucket).or_default() += 1;
    }

    fn label(bucket: u32) -> String {
        match bucket {
            0 => "(..., 0)".into(),
            1 => "[0]".into(),
            2 => "[1]".into(),
            b => {
                let k = b - 2;
                format!("[{}, {})", power(k), power(k + 1))
            }
        }
    }

    pub fn print(&self, title: &str) {
        println!("@hist[{title}]:");
        let (Some(&first), Some(&last)) = (self.buckets.keys().next(), self.buckets.keys().last())
        else {
            return;
        };
        let max = *self.buckets.values().max().unwrap_or(&1);
        for bucket in first..=last {
            let n = self.buckets.get(&bucket).copied().unwrap_or(0);
            let bar = (n * 52).div_ceil(max.max(1)) as usize;
            println!(
                "{:<20}{:>8} |{:<52}|",
                Self::label(bucket),
                n,
                "@".repeat(bar)
            );
        }
        println!();
    }
}

/// 2^k with K/M/G/T suffixes, as bpftrace prints bucket bounds.
fn power(k: u32) -> String {
    let units = ["", "K", "M", "G", "T", "P", "E"];
    let unit = (k / 10) as usize;
    if unit < units.len() {
        format!("{}{}", 1u64 << (k % 10), units[unit])
    } else {
        format!("2^{k}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_powers_of_two() {
        let mut h = Log2Hist::default();
        for v in [-3, 0, 1, 2, 3, 4, 1023, 1024, 1 << 20] {
            h.add(v);
        }
        let labels: Vec<String> = h.buckets.keys().map(|&b| Log2Hist::label(b)).collect();
        assert_eq!(
            labels,
            [
                "(..., 0)",
                "[0]",
                "[1]",
                "[2, 4)",
                "[4, 8)",
                "[512, 1K)",
                "[1K, 2K)",
                "[1M, 2M)"
            ]
        );
        assert_eq!(h.buckets[&3], 2);
    }
}
