//! Fires probes with known values of every argument type, once each, so
//! that tests (and readers of docs/macros.md) can check what tracers see.
//!
//! `sdt-demo [ROUNDS]`: fire everything ROUNDS times (default 1), then
//! print how often the lazy probe's argument was evaluated.

use std::cell::Cell;
use std::hint::black_box;

use sdt_macros::{enabled, probe, probe_lazy};

thread_local! {
    static LAZY_EVALUATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The lazy probe's argument: counts its own evaluations.
fn expensive_report() -> u64 {
    LAZY_EVALUATIONS.with(|n| n.set(n.get() + 1));
    0x1a2b
}

/// Integers of every width and sign, extremes and negatives.
fn fire_integers() {
    probe!(
        demo,
        ints,
        black_box(200u8),
        black_box(-100i8),
        black_box(60_000u16),
        black_box(-30_000i16),
        black_box(4_000_000_000u32),
        black_box(-2_000_000_000i32),
        black_box(u64::MAX - 1),
        black_box(i64::MIN + 1)
    );
    probe!(demo, sizes, black_box(usize::MAX), black_box(-5isize));
}

/// Everything else: bool, char, pointers, references, floats.
fn fire_misc() {
    let word: u64 = 0xdead_beef_cafe;
    let bytes = *b"PTR\0";
    probe!(
        demo,
        misc,
        black_box(true),
        black_box('λ'),
        black_box(bytes.as_ptr()),
        black_box(&word),
        black_box(1.5f32),
        black_box(-2.25f64)
    );
}

/// Strings: by pointer and length, and a C string.
fn fire_text() {
    let owned = String::from("owned string");
    probe!(
        demo,
        text,
        str(black_box("hello, probe")),
        str(owned),
        black_box(c"c string"),
        str(black_box(&[1u8, 2, 3][..]))
    );
}

fn main() {
    let rounds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let mut sink = 0u64;
    for round in 0..rounds {
        fire_integers();
        fire_misc();
        fire_text();
        probe!(demo, empty);
        probe_lazy!(demo, lazy, expensive_report(), round);
        if enabled!(demo, lazy) {
            sink += 1;
        }
        sink += sdt_demo_lib::checksum(&[1u8, 2, 3]);
        sink += sdt_demo_lib::checksum(&[10u32, 20]);
        sink += u64::from(sdt_demo_lib::tick(41));
        sink += sdt_demo_lib::serve(round, "/index.html") as u64;
    }
    println!(
        "lazy evaluations: {} (sink {sink})",
        LAZY_EVALUATIONS.with(Cell::get)
    );
}
