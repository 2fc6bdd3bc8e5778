//! Loading and unloading 1000 providers leaks no descriptors, mappings or
//! memory. Alone in its test binary: the counts are of the whole process.

use sdt_dynamic::{Arg, ArgKind, Placement, Provider};

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn cycle(i: usize, placement: &Placement) {
    let mut p = Provider::new(&format!("leak{i}")).unwrap();
    p.set_placement(placement.clone());
    let a = p
        .add_probe("a", &[ArgKind::I32, ArgKind::Str, ArgKind::F64])
        .unwrap();
    p.add_probe("b", &[ArgKind::StrLen; 6]).unwrap();
    p.load().unwrap();
    let probe = p.probe(a).unwrap();
    assert!(!probe.enabled());
    probe
        .fire(&[Arg::Int(i as i64), Arg::Str(c"x"), Arg::F64(1.0)])
        .unwrap();
    // Dropped: unloaded.
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn a_thousand_providers_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    for placement in [
        Placement::Memfd,
        Placement::Directory(dir.path().to_path_buf()),
    ] {
        // Warm up: the loader's and allocator's one-time growth.
        for i in 0..50 {
            cycle(i, &placement);
        }
        let (fds0, maps0, rss0) = (fds(), mappings(), rss_kib());
        for i in 0..1000 {
            cycle(i, &placement);
        }
        let (fds1, maps1, rss1) = (fds(), mappings(), rss_kib());
        eprintln!(
            "{placement:?}: 1000 providers: fds {fds0} -> {fds1}, mappings {maps0} -> {maps1}, \
             RSS {rss0} -> {rss1} KiB"
        );
        assert_eq!(fds1, fds0, "descriptors leaked");
        assert_eq!(maps1, maps0, "mappings leaked");
        // A leak of even 1 KiB per provider would be 1000 KiB.
        assert!(rss1 <= rss0 + 256, "RSS grew {rss0} -> {rss1} KiB");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "files left"
    );
}
