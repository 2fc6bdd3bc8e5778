//! A bounded mutation fuzzer: hostile variations of real and synthetic ELF
//! files, and random argument strings, must never make the reader panic or
//! hang. Runs for a few seconds (STAP_SDT_FUZZ_SECONDS overrides), with a
//! fixed seed per round so a failure is reproducible from its printed seed.

mod synthetic;

use stapsdt_reader::{parse_args, read_bytes, Arch};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};
use synthetic::{build, ElfSpec, NoteSpec};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let notes = [
        NoteSpec {
            pc: 0x1100,
            base: 0x3000,
            semaphore: 0x2000,
            provider: "p",
            name: "a",
            args: "8@%rdi -4@-20(%rbp) 8@sym+8(%rip)",
        },
        NoteSpec {
            pc: 0x1200,
            base: 0x3000,
            semaphore: 0,
            provider: "p",
            name: "b",
            args: "4@(%rax,%rbx,4) 8f@%xmm0",
        },
    ];
    // Types notes (`stap-sdt`, 0x7473) next to the probe notes, so that
    // mutations reach their decoder too.
    let mut with_types = ElfSpec::x86_64(&notes);
    for (name, types) in [("a", "int str int"), ("b", "int float")] {
        let desc = format!("p\0{name}\0{types}\0");
        with_types.note_section.extend(synthetic::raw_note(
            b"stap-sdt\0",
            0x7473,
            desc.as_bytes(),
            false,
        ));
    }
    let mut seeds = vec![build(&ElfSpec::x86_64(&notes)).0, build(&with_types).0];
    let mut be32 = ElfSpec::x86_64(&[]);
    be32.is_64 = false;
    be32.big_endian = true;
    be32.machine = 20;
    be32.note_section = synthetic::notes_bytes(&notes, false, true);
    seeds.push(build(&be32).0);
    if let Ok(real) = std::fs::read("/usr/lib/x86_64-linux-gnu/libstdc++.so.6") {
        seeds.push(real);
    }
    seeds
}

/// Overwrite a field-sized run of bytes with an extreme or random value.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    let len = data.len();
    // Headers and note sections are where the structure is: bias toward the
    // first 4 KiB and the tail (section headers).
    let at = match rng.below(3) {
        0 => rng.below(len.min(4096)),
        1 => len.saturating_sub(1 + rng.below(len.min(4096))),
        _ => rng.below(len),
    };
    match rng.below(6) {
        0 => data[at] ^= 1 << rng.below(8),
        1 => data[at] = rng.next() as u8,
        2 | 3 => {
            let width = [2usize, 4, 8][rng.below(3)];
            let value = [0u64, u64::MAX, 0x7fff_ffff, 0x8000_0000, rng.next()][rng.below(5)];
            for (i, b) in value.to_le_bytes().iter().take(width).enumerate() {
                if let Some(slot) = data.get_mut(at + i) {
                    *slot = *b;
                }
            }
        }
        4 => data.truncate(at.max(1)),
        _ => {
            let n = rng.below(64);
            data.splice(at..at, std::iter::repeat_n(rng.next() as u8, n));
        }
    }
}

fn budget() -> Duration {
    let secs = std::env::var("STAP_SDT_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

#[test]
fn mutated_elf_files_never_panic() {
    let seeds = seeds();
    let start = Instant::now();
    let mut round = 0u64;
    while start.elapsed() < budget() {
        round += 1;
        let seed = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(round) | 1;
        let mut rng = Rng(seed);
        let mut data = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(8) {
            mutate(&mut rng, &mut data);
        }
        let result = catch_unwind(AssertUnwindSafe(|| read_bytes(&data, "fuzzed")));
        assert!(
            result.is_ok(),
            "reader panicked on round {round} (seed {seed:#x})"
        );
        if let Ok(Err(e)) = result {
            assert!(
                e.to_string().starts_with("fuzzed: "),
                "error does not name the input: {e}"
            );
        }
    }
    eprintln!("{round} mutated objects read without a panic");
    assert!(round > 100, "the fuzzer ran only {round} rounds");
}

#[test]
fn random_argument_strings_never_panic() {
    const ALPHABET: &[u8] = b"0123456789-+@f%$(),:[]# xabcdeilmnoprsuvwz.";
    let arches = [
        Arch::X86_64,
        Arch::I386,
        Arch::Aarch64,
        Arch::Arm,
        Arch::S390x,
        Arch::Ppc64,
        Arch::Riscv64,
        Arch::Unknown,
    ];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < budget() / 3 {
        let len = rng.below(40);
        let text: String = (0..len)
            .map(|_| ALPHABET[rng.below(ALPHABET.len())] as char)
            .collect();
        let arch = arches[rng.below(arches.len())];
        let args = catch_unwind(|| parse_args(&text, arch))
            .unwrap_or_else(|_| panic!("panic on {text:?} ({arch:?})"));
        // Nothing is dropped: every space-separated spec outside brackets is an argument.
        assert!(args.len() <= text.split_whitespace().count(), "{text:?}");
        for arg in &args {
            assert!(!arg.raw.is_empty());
        }
        count += 1;
    }
    eprintln!("{count} random argument strings parsed without a panic");
}
