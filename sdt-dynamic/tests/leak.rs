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

/// Anonymous resident memory (the heap and the like): the file-backed part
/// of RSS also moves when code pages are first touched.
fn rss_anon_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
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
        let (fds0, maps0, rss0) = (fds(), mappings(), rss_anon_kib());
        for i in 0..1000 {
            cycle(i, &placement);
        }
        let (fds1, maps1, rss1) = (fds(), mappings(), rss_anon_kib());
        eprintln!(
            "{placement:?}: 1000 providers: fds {fds0} -> {fds1}, mappings {maps0} -> {maps1}, \
             anonymous memory {rss0} -> {rss1} KiB"
        );
        assert_eq!(fds1, fds0, "descriptors leaked");
        assert_eq!(maps1, maps0, "mappings leaked");
        // 128 bytes per provider would be 125 KiB.
        assert!(
            rss1 <= rss0 + 64,
            "anonymous memory grew {rss0} -> {rss1} KiB"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "files left"
    );
}
