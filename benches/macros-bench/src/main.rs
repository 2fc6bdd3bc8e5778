//! `macros-bench [ITERATIONS] [ROUNDS]`: time one loop with no probe, with
//! disabled probes of sdt-macros, the `probe` crate and the `usdt` crate,
//! and print ns per iteration (best of ROUNDS) and the ratio to no probe.
//!
//! `macros-bench --attached KEY ITERATIONS`: run one variant's loop once,
//! for a tracer attached to its probe (../macros_bench.sh does that).

use std::hint::black_box;

#[usdt::provider]
mod usdt_bench {
    fn hit(i: u64, acc: u64) {}
}

/// The loop body every variant shares: a short dependency chain (xor,
/// rotate: two cycles), so that a probe's cost is not hidden behind a
/// long-latency instruction.
#[inline(always)]
fn step(acc: u64, i: u64) -> u64 {
    (acc ^ i).rotate_left(7)
}

/// One benchmark loop: `step` then `$site` (which sees `i` and `acc`), in
/// its own never-inlined function so that each variant is compiled alone.
macro_rules! bench_loop {
    ($(#[$doc:meta])* $name:ident, |$i:ident, $acc:ident| $site:stmt) => {
        $(#[$doc])*
        #[inline(never)]
        fn $name(n: u64) -> u64 {
            let mut $acc = 1;
            for $i in 0..black_box(n) {
                $acc = step($acc, $i);
                $site
            }
            $acc
        }
    };
}

bench_loop!(no_probe, |i, acc| {});
bench_loop!(
    /// The loop with its values pinned in registers at the same point, by
    /// an empty `asm!` with the probes' operands: what a probe costs on
    /// top of that is its site (a `nop`) and nothing else.
    values_kept,
    |i, acc| {
        // SAFETY: an empty asm.
        unsafe {
            std::arch::asm!(
                "/* {0} {1} */",
                in(reg) i,
                in(reg) acc,
                options(readonly, nostack, preserves_flags)
            )
        }
    }
);
bench_loop!(sdt_macros_probe, |i, acc| sdt_macros::probe!(
    bench, hit, i, acc
));
bench_loop!(sdt_macros_lazy, |i, acc| sdt_macros::probe_lazy!(
    bench, lazy, i, acc
));
bench_loop!(probe_crate, |i, acc| probe::probe!(
    bench, probe_hit, i, acc
));
bench_loop!(probe_crate_lazy, |i, acc| {
    // Returns whether it fired.
    let _ = probe::probe_lazy!(bench, probe_lazy, i, acc);
});
bench_loop!(usdt_crate, |i, acc| usdt_bench::hit!(|| (i, acc)));

/// (key for `--attached`, label, loop)
type Variant = (&'static str, &'static str, fn(u64) -> u64);

const VARIANTS: &[Variant] = &[
    ("none", "no probe", no_probe),
    ("kept", "no probe, values kept", values_kept),
    ("sdt", "sdt-macros probe!", sdt_macros_probe),
    ("sdt-lazy", "sdt-macros probe_lazy!", sdt_macros_lazy),
    ("probe", "probe 0.5 probe!", probe_crate),
    ("probe-lazy", "probe 0.5 probe_lazy!", probe_crate_lazy),
    ("usdt", "usdt 0.6 (is-enabled)", usdt_crate),
];

/// This thread's CPU time (user and kernel, so uprobe hits count) in ns:
/// unlike the wall clock, it does not run on while a neighbour on the
/// shared machine has the CPU.
fn thread_cpu_ns() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

fn ns_per_iteration(f: fn(u64) -> u64, n: u64) -> f64 {
    let start = thread_cpu_ns();
    black_box(f(n));
    (thread_cpu_ns() - start) / n as f64
}

fn main() {
    usdt::register_probes().expect("register usdt probes");
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--attached") {
        let name = &args[1];
        let n: u64 = args[2].parse().expect("iterations");
        let (_, label, f) = VARIANTS
            .iter()
            .find(|(key, _, _)| key == name)
            .unwrap_or_else(|| panic!("no variant {name:?}"));
        println!("{label}: {:.1} ns/iteration", ns_per_iteration(*f, n));
        return;
    }
    let n: u64 = args
        .first()
        .map_or(20_000_000, |a| a.parse().expect("iterations"));
    let rounds: usize = args.get(1).map_or(7, |a| a.parse().expect("rounds"));
    // Interleave the variants round by round, so that a busy neighbour on
    // a shared machine slows all of them, not one.
    let mut best = vec![f64::INFINITY; VARIANTS.len()];
    for _ in 0..rounds {
        for (slot, (_, _, f)) in best.iter_mut().zip(VARIANTS) {
            *slot = slot.min(ns_per_iteration(*f, n));
        }
    }
    println!("{n} iterations, best of {rounds} rounds");
    println!(
        "{:<26} {:>8} {:>10} {:>10}",
        "variant", "ns/iter", "/no probe", "/kept"
    );
    for ((_, name, _), ns) in VARIANTS.iter().zip(&best) {
        println!(
            "{name:<26} {ns:>8.3} {:>10.3} {:>10.3}",
            ns / best[0],
            ns / best[1]
        );
    }
}
