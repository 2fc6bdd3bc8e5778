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

/// Integers of every width and sign, extremes and negatives. (At most
/// six arguments per probe: bpftrace 0.17 reads `arg0`..`arg5` only.)
fn fire_integers() {
    probe!(
        demo,
        unsigned,
        black_box(200u8),
        black_box(60_000u16),
        black_box(4_000_000_000u32),
        black_box(u64::MAX - 1),
        black_box(usize::MAX)
    );
    probe!(
        demo,
        signed,
        black_box(-100i8),
        black_box(-30_000i16),
        black_box(-2_000_000_000i32),
        black_box(i64::MIN + 1),
        black_box(-5isize)
    );
    // All twelve slots, for the consumers that read them all (GDB, libbpf).
    probe!(
        demo, twelve, 1u8, -2i8, 3u16, -4i16, 5u32, -6i32, 7u64, -8i64, 9usize, -10isize, 11u8,
        -12i64
    );
}

/// bool, char, a raw pointer and a reference; floats on their own probe,
/// because their `f` prefix (as `sys/sdt.h` emits it for C floats) is
/// still news to some consumers (bcc's parser, GDB 13).
fn fire_misc() {
    let word: u64 = 0xdead_beef_cafe;
    let bytes = *b"PTR\0";
    probe!(
        demo,
        misc,
        black_box(true),
        black_box('λ'),
        black_box(bytes.as_ptr()),
        black_box(&word)
    );
    probe!(demo, floats, black_box(1.5f32), black_box(-2.25f64));
}

/// Strings: by pointer and length (borrowed and owned), and a C string.
fn fire_text() {
    let owned = String::from("owned string");
    probe!(
        demo,
        text,
        str(black_box("hello, probe")),
        str(owned),
        black_box(c"c string")
    );
    probe!(demo, bytes, str(black_box(&[1u8, 2, 3][..])));
}

/// A word kept just below the stack pointer (the red zone of this leaf
/// function, where a CALL would push its return address) across a probe
/// site in a loop. With `cheap-sites`, a tracer attached at the site's
/// `nop5`, which the kernel may turn into a CALL, must not disturb it: the
/// result is the same traced or not.
#[inline(never)]
fn red_zone(rounds: u64) -> u64 {
    let mut word = 0u64;
    for i in 0..rounds {
        // SAFETY: `word` is a live local; volatile keeps it in memory.
        unsafe {
            let value = std::ptr::read_volatile(&word);
            std::ptr::write_volatile(&mut word, value.wrapping_mul(31).wrapping_add(i));
        }
        probe!(demo, red_zone, i);
    }
    word
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
    println!("red zone: {:#x}", red_zone(rounds));
}
