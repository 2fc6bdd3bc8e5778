//! The `bpf(2)` wrapper against the kernel: per-CPU values come in one slot
//! per possible CPU, and buffers of the wrong size are refused before the
//! kernel sees them.

use uprobe_engine::bpf::sys::{count_cpu_list, possible_cpus, Map};

fn kernel_maps(test: &str) -> bool {
    if !test_support::is_root() {
        test_support::skip(test, "creating BPF maps needs root (CAP_BPF)");
        return false;
    }
    true
}

/// Each CPU's slot written with a distinct value reads back as their sum:
/// the buffer covers exactly the kernel's possible CPUs (a buffer of one
/// slot, the old fallback, would have made the kernel read and write past
/// it; a larger one would be refused).
#[test]
fn per_cpu_values_have_one_slot_per_possible_cpu() {
    if !kernel_maps("per_cpu_values_have_one_slot_per_possible_cpu") {
        return;
    }
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    let cpus = possible_cpus().unwrap();
    assert_eq!(cpus, count_cpu_list(&text).unwrap());

    let map = Map::per_cpu_counters(3, "test_percpu").unwrap();
    let slots: Vec<u8> = (1..=cpus as u64)
        .flat_map(|v| (v * 10).to_ne_bytes())
        .collect();
    map.update(&2u32.to_ne_bytes(), &slots).unwrap();
    let expected: u64 = (1..=cpus as u64).map(|v| v * 10).sum();
    assert_eq!(map.per_cpu_sum(2), expected);
    assert_eq!(map.per_cpu_sum(1), 0);
    assert_eq!(map.lookup(&2u32.to_ne_bytes()).unwrap(), slots);

    // One slot too few or too many is refused by us, naming the sizes.
    let short = &slots[..slots.len() - 8];
    let error = map.update(&2u32.to_ne_bytes(), short).unwrap_err();
    assert!(error.to_string().contains("8-byte values"), "{error}");
    let mut long = slots.clone();
    long.extend_from_slice(&[0; 8]);
    assert!(map.update(&2u32.to_ne_bytes(), &long).is_err());
    assert!(map.lookup(&[0u8; 8]).is_none(), "a key of the wrong size");
}

/// A shared (not per-CPU) hash map keeps one value per key.
#[test]
fn shared_hash_maps_have_one_slot() {
    if !kernel_maps("shared_hash_maps_have_one_slot") {
        return;
    }
    let map = Map::hash(4, 4, 16, false, "test_hash").unwrap();
    map.insert_u32(7, 70).unwrap();
    map.insert_u32(8, 80).unwrap();
    assert_eq!(
        map.lookup(&7u32.to_ne_bytes()).unwrap(),
        70u32.to_ne_bytes()
    );
    let mut keys = map.keys();
    keys.sort();
    assert_eq!(
        keys,
        vec![7u32.to_ne_bytes().to_vec(), 8u32.to_ne_bytes().to_vec()]
    );
}

/// The perf event array takes each CPU's BPF-output event (what
/// `uprobe_floor -r perfbuf` writes through), and nothing else: a ring
/// buffer's descriptor is refused by the kernel.
#[test]
fn a_perf_event_array_holds_bpf_output_events() {
    if !kernel_maps("a_perf_event_array_holds_bpf_output_events") {
        return;
    }
    let cpus = uprobe_engine::perf::online_cpus();
    let slots = cpus.iter().max().map_or(1, |c| *c as u32 + 1);
    let array = Map::perf_event_array(slots).unwrap();
    let events: Vec<_> = cpus
        .iter()
        .map(|&cpu| uprobe_engine::perf::PerfEvent::bpf_output(cpu, 4096).unwrap())
        .collect();
    for (cpu, event) in cpus.iter().zip(&events) {
        array
            .insert_u32(*cpu as u32, event.raw_fd() as u32)
            .unwrap();
    }
    let ring = Map::ring_buffer(4096).unwrap();
    assert!(array.insert_u32(0, ring.fd() as u32).is_err());
}
