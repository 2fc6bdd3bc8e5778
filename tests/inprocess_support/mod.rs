//! Shared by the `trace_inprocess*` tests: where a file's bytes are in a
//! running process, and what is there.
#![allow(dead_code)]

use std::os::unix::fs::FileExt;
use std::path::Path;

/// The address of file offset `offset` of `path` in process `pid`.
fn address_in(pid: u32, path: &Path, offset: u64) -> u64 {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || Path::new(fields[5]) != path {
            continue;
        }
        let (start, end) = fields[0].split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let file_offset = u64::from_str_radix(fields[2], 16).unwrap();
        if offset >= file_offset && offset < file_offset + (end - start) {
            return start + offset - file_offset;
        }
    }
    panic!(
        "offset {offset:#x} of {} not mapped in {pid}",
        path.display()
    );
}

/// `N` bytes of process `pid` at file offset `offset` of `path`.
pub fn bytes_in<const N: usize>(pid: u32, path: &Path, offset: u64) -> [u8; N] {
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut bytes = [0u8; N];
    mem.read_exact_at(&mut bytes, address_in(pid, path, offset))
        .unwrap();
    bytes
}

/// `N` bytes of the file `path` at `offset`.
pub fn bytes_of<const N: usize>(path: &Path, offset: u64) -> [u8; N] {
    let file = std::fs::File::open(path).unwrap();
    let mut bytes = [0u8; N];
    file.read_exact_at(&mut bytes, offset).unwrap();
    bytes
}
