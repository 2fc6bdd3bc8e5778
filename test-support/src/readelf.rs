//! `readelf -n` as the reference for what the notes of a file hold.

use crate::bounded::BoundedOutput;
use std::collections::BTreeMap;
use std::process::Command;

/// (provider, name, pc, base, semaphore, args) exactly as a note holds them.
pub type NoteKey = (String, String, u64, u64, u64, String);

/// Every stapsdt note that `readelf -n` prints for `path`, with its multiplicity.
pub fn readelf_notes(path: &str) -> BTreeMap<NoteKey, usize> {
    let out = Command::new("readelf")
        .args(["-n", "-W", path])
        .bounded_output()
        .expect("run readelf");
    assert!(out.status.success(), "readelf -n {path} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut notes = BTreeMap::new();
    let mut provider = String::new();
    let mut name = String::new();
    let mut addrs = (0, 0, 0);
    let hex = |s: &str| u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).unwrap();
    for line in text.lines().map(str::trim) {
        // With -W the provider shares the owner's line.
        if let Some((_, p)) = line.split_once("Provider: ") {
            provider = p.trim().to_string();
        } else if let Some(n) = line.strip_prefix("Name: ") {
            name = n.to_string();
        } else if let Some(rest) = line.strip_prefix("Location: ") {
            let fields: Vec<&str> = rest.split(", ").collect();
            addrs = (
                hex(fields[0]),
                hex(fields[1].trim_start_matches("Base: ")),
                hex(fields[2].trim_start_matches("Semaphore: ")),
            );
        } else if let Some(args) = line.strip_prefix("Arguments:") {
            let key = (
                provider.clone(),
                name.clone(),
                addrs.0,
                addrs.1,
                addrs.2,
                args.trim().to_string(),
            );
            *notes.entry(key).or_insert(0) += 1;
        }
    }
    notes
}
