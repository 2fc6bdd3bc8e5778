//! Object names → files: a path as given, a library or program name found
//! in a process's memory map, the dynamic loader's cache (`/etc/ld.so.cache`,
//! parsed here), the standard library directories or `PATH`.
//!
//! ```no_run
//! let libc = stapsdt_reader::resolve::object_path("libc.so.6", None)?;
//! # Ok::<(), stapsdt_reader::Error>(())
//! ```
//!
//! # The loader cache
//!
//! glibc's `ldconfig` writes `/etc/ld.so.cache` in the "new format":
//!
//! ```text
//! header (48 bytes)  "glibc-ld.so.cache" "1.1", nlibs: u32, len_strings: u32,
//!                    flags: u8 (byte order: 0 unknown, 2 little, 3 big), 3 padding,
//!                    extension_offset: u32, 3 unused u32
//! nlibs entries      flags: i32, key: u32, value: u32, osversion: u32, hwcap: u64
//!                    (24 bytes; key = library name, value = its path)
//! strings            NUL-terminated; offsets are from the start of this header
//! ```
//!
//! Caches written by old `ldconfig`s (before glibc 2.32) begin with the old
//! format (`"ld.so-1.7.0"`, nlibs: u32, then 12-byte entries) and carry the
//! new format after it, aligned to 8 bytes; only the new part is read.
//!
//! Entry flags: the low byte is the kind (`0x03` = libc6 ELF), the high byte
//! the ABI a 64-bit or variant library needs (`0x03`: x86-64, `0x08`: x32,
//! `0x0a`: aarch64, `0x04`: s390x, `0x05`: ppc64, `0x10`: riscv double-float,
//! `0x00`: none, e.g. i386 and 32-bit arm). [`CACHE_FLAGS`] is the value
//! wanted on the running architecture (`0x0303` on x86-64): a multilib
//! machine lists i386 libraries (`0x0003`) under the same names.
//! `hwcap` is 0 for a baseline library; others (glibc-hwcaps subdirectories,
//! bit 62 set) are used only when no baseline entry of that name exists.

use crate::Error;
use std::path::{Path, PathBuf};

const LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

/// Where the loader cache lives.
pub const LOADER_CACHE: &str = "/etc/ld.so.cache";

/// Loader-cache entry flags for libraries of the running architecture
/// (`FLAG_ELF_LIBC6` with the architecture's required-ABI byte).
#[cfg(target_arch = "x86_64")]
pub const CACHE_FLAGS: i32 = 0x0303;
#[cfg(target_arch = "aarch64")]
pub const CACHE_FLAGS: i32 = 0x0a03;
#[cfg(target_arch = "s390x")]
pub const CACHE_FLAGS: i32 = 0x0403;
#[cfg(target_arch = "powerpc64")]
pub const CACHE_FLAGS: i32 = 0x0503;
#[cfg(target_arch = "riscv64")]
pub const CACHE_FLAGS: i32 = 0x1003;
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "s390x",
    target_arch = "powerpc64",
    target_arch = "riscv64"
)))]
pub const CACHE_FLAGS: i32 = 0x0003;

/// The file `name` designates, for a process `pid` when given.
pub fn object_path(name: &str, pid: Option<u32>) -> Result<PathBuf, Error> {
    if name.contains('/') {
        let path = Path::new(name);
        return match std::fs::canonicalize(path) {
            Ok(canonical) => Ok(canonical),
            // A link of /proc (`/proc/PID/fd/N`, `/proc/PID/map_files/…`) to
            // a memfd or a deleted file opens, but has no canonical name.
            Err(_) if path.starts_with("/proc/") && std::fs::metadata(path).is_ok() => {
                Ok(path.to_path_buf())
            }
            Err(e) => Err(Error::new(name, e.to_string())),
        };
    }
    if let Some(pid) = pid {
        if let Some(found) = in_maps(name, pid) {
            return Ok(found);
        }
    }
    if let Some(found) = in_loader_cache(name) {
        return Ok(found);
    }
    let path_dirs = std::env::var_os("PATH").unwrap_or_default();
    let dirs = LIBRARY_DIRS
        .iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path_dirs));
    for dir in dirs {
        if let Some(found) = prefixed_file(&dir, name) {
            return Ok(found);
        }
    }
    Err(Error::new(
        name,
        format!(
            "no such file, and no library or program of that name {}in the loader cache, \
             the library directories or PATH",
            if pid.is_some() {
                "mapped by the process, "
            } else {
                ""
            }
        ),
    ))
}

/// `name` or `name.*` (so `libpython3.11.so` finds `libpython3.11.so.1.0`).
fn matches_name(file_name: &str, name: &str) -> bool {
    file_name == name
        || file_name
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-'))
}

fn in_maps(name: &str, pid: u32) -> Option<PathBuf> {
    let maps = crate::process::maps(pid).ok()?;
    maps.iter()
        .filter(|m| m.path.starts_with('/'))
        .find(|m| {
            Path::new(&m.path)
                .file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| matches_name(f, name))
        })
        .map(|m| {
            // Through the process's root, so a container's file is the one probed.
            let inside = PathBuf::from(format!("/proc/{pid}/root{}", m.path));
            if Path::new(&m.path).exists() {
                PathBuf::from(&m.path)
            } else {
                inside
            }
        })
}

/// The library `name` (or `name.*`) as the loader cache lists it for this
/// architecture, when that file exists.
pub fn in_loader_cache(name: &str) -> Option<PathBuf> {
    let data = std::fs::read(LOADER_CACHE).ok()?;
    let entries = parse_loader_cache(&data);
    // The exact name before `name.*`; baseline entries before glibc-hwcaps variants.
    let mut candidates: Vec<&CacheEntry> = entries
        .iter()
        .filter(|e| e.flags == CACHE_FLAGS && matches_name(&e.name, name))
        .collect();
    candidates.sort_by_key(|e| (e.name != name, e.hwcap != 0));
    candidates
        .into_iter()
        .map(|e| PathBuf::from(&e.path))
        .find(|p| p.exists())
}

/// One library in the loader cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The `i32` flags: kind in the low byte, required ABI in the next.
    pub flags: i32,
    /// The name programs ask for (`libc.so.6`).
    pub name: String,
    /// The file (`/lib/x86_64-linux-gnu/libc.so.6`).
    pub path: String,
    pub hwcap: u64,
}

const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_HEADER: usize = 48;
const NEW_ENTRY: usize = 24;
const OLD_HEADER: usize = 16;
const OLD_ENTRY: usize = 12;

/// Every entry of a loader cache in the glibc new format (alone, or after
/// an old-format prefix), in file order. Anything malformed (a short file,
/// an entry or string out of bounds, a name that is not UTF-8) ends or
/// skips what it affects: the result is then what could be read, possibly
/// nothing, and never a panic.
pub fn parse_loader_cache(data: &[u8]) -> Vec<CacheEntry> {
    let start = if data.starts_with(NEW_MAGIC) {
        0
    } else if data.starts_with(OLD_MAGIC) {
        let Some(old_count) = read_u32(data, OLD_MAGIC.len() + 1, Endian::Native) else {
            return Vec::new();
        };
        let Some(end) = (old_count as usize)
            .checked_mul(OLD_ENTRY)
            .and_then(|n| n.checked_add(OLD_HEADER))
            .and_then(|n| n.checked_add(7))
        else {
            return Vec::new();
        };
        end & !7
    } else {
        return Vec::new();
    };
    let Some(cache) = data.get(start..) else {
        return Vec::new();
    };
    if !cache.starts_with(NEW_MAGIC) || cache.len() < NEW_HEADER {
        return Vec::new();
    }
    let endian = match cache[28] {
        2 => Endian::Little,
        3 => Endian::Big,
        0 => Endian::Native,
        _ => return Vec::new(),
    };
    let Some(count) = read_u32(cache, 20, endian) else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    for i in 0..count as usize {
        let Some(at) = i
            .checked_mul(NEW_ENTRY)
            .and_then(|n| n.checked_add(NEW_HEADER))
        else {
            break;
        };
        let (Some(flags), Some(key), Some(value), Some(hwcap)) = (
            read_u32(cache, at, endian),
            read_u32(cache, at + 4, endian),
            read_u32(cache, at + 8, endian),
            read_u64(cache, at + 16, endian),
        ) else {
            break;
        };
        let (Some(name), Some(path)) = (string_at(cache, key), string_at(cache, value)) else {
            continue;
        };
        entries.push(CacheEntry {
            flags: flags as i32,
            name,
            path,
            hwcap,
        });
    }
    entries
}

#[derive(Clone, Copy)]
enum Endian {
    Little,
    Big,
    Native,
}

fn read_u32(data: &[u8], at: usize, endian: Endian) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(match endian {
        Endian::Little => u32::from_le_bytes(bytes),
        Endian::Big => u32::from_be_bytes(bytes),
        Endian::Native => u32::from_ne_bytes(bytes),
    })
}

fn read_u64(data: &[u8], at: usize, endian: Endian) -> Option<u64> {
    let bytes: [u8; 8] = data.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(match endian {
        Endian::Little => u64::from_le_bytes(bytes),
        Endian::Big => u64::from_be_bytes(bytes),
        Endian::Native => u64::from_ne_bytes(bytes),
    })
}

/// The NUL-terminated string at `offset`; `None` when it runs off the end.
fn string_at(data: &[u8], offset: u32) -> Option<String> {
    let rest = data.get(offset as usize..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

/// Only ELF files: a `PATH` entry may hold a same-named script (pyenv shims).
fn is_elf(path: &Path) -> bool {
    matches!(crate::file_kind(path), Ok(crate::FileKind::Elf))
}

fn prefixed_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let exact = dir.join(name);
    if exact.is_file() && is_elf(&exact) {
        return Some(exact);
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|f| matches_name(f, name))
        })
        .map(|e| e.path())
        .filter(|p| p.is_file() && is_elf(p))
        .collect();
    candidates.sort();
    candidates.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_match_versioned_files() {
        assert!(matches_name("libpython3.11.so.1.0", "libpython3.11.so"));
        assert!(matches_name("libc.so.6", "libc.so.6"));
        assert!(!matches_name("libcrypt.so.1", "libc"));
        assert!(!matches_name("libc.so.6", "libc.so.61"));
    }

    #[test]
    fn finds_libc_and_rejects_nonsense() {
        let libc = object_path("libc.so.6", None).unwrap();
        assert!(libc.is_file(), "{libc:?}");
        let own = object_path("libc.so.6", Some(std::process::id())).unwrap();
        assert!(own.is_file());
        let e = object_path("no-such-object-xyz", None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("no-such-object-xyz:"), "{e}");
    }

    #[test]
    fn needed_libraries_of_a_dynamic_program() {
        let sh = object_path("/bin/sh", None).unwrap();
        let needed = crate::needed_libraries(&sh).unwrap();
        assert!(needed.iter().any(|n| n == "libc.so.6"), "{needed:?}");
        assert!(crate::needed_libraries(Path::new("/etc/passwd")).is_err());
    }

    /// A new-format cache of `(flags, name, path, hwcap)` entries, in the
    /// byte order `order` (2 little, 3 big), after an old-format prefix of
    /// `old` entries when given.
    fn synthetic(entries: &[(i32, &str, &str, u64)], order: u8, old: Option<u32>) -> Vec<u8> {
        let u32b = |v: u32| {
            if order == 3 {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u64b = |v: u64| {
            if order == 3 {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut strings = Vec::new();
        let strings_at = NEW_HEADER + entries.len() * NEW_ENTRY;
        let mut offsets = Vec::new();
        for (_, name, path, _) in entries {
            let key = strings_at + strings.len();
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
            let value = strings_at + strings.len();
            strings.extend_from_slice(path.as_bytes());
            strings.push(0);
            offsets.push((key as u32, value as u32));
        }
        let mut new = NEW_MAGIC.to_vec();
        new.extend(u32b(entries.len() as u32));
        new.extend(u32b(strings.len() as u32));
        new.extend([order, 0, 0, 0]);
        new.extend(u32b(0)); // no extensions
        new.extend([0; 12]);
        assert_eq!(new.len(), NEW_HEADER);
        for ((flags, _, _, hwcap), (key, value)) in entries.iter().zip(offsets) {
            new.extend(u32b(*flags as u32));
            new.extend(u32b(key));
            new.extend(u32b(value));
            new.extend(u32b(0));
            new.extend(u64b(*hwcap));
        }
        new.extend(strings);
        let Some(old_count) = old else {
            return new;
        };
        let mut data = OLD_MAGIC.to_vec();
        data.push(0);
        data.extend(old_count.to_ne_bytes());
        for _ in 0..old_count {
            data.extend([0; OLD_ENTRY]);
        }
        while !data.len().is_multiple_of(8) {
            data.push(0);
        }
        data.extend(new);
        data
    }

    const ENTRIES: &[(i32, &str, &str, u64)] = &[
        (0x0303, "libfoo.so.1", "/opt/x/libfoo.so.1", 0),
        (0x0003, "libfoo.so.1", "/opt/x32/libfoo.so.1", 0),
        (0x0303, "libbar.so", "/opt/x/libbar.so.2.0", 1 << 62),
    ];

    fn expected() -> Vec<CacheEntry> {
        ENTRIES
            .iter()
            .map(|&(flags, name, path, hwcap)| CacheEntry {
                flags,
                name: name.into(),
                path: path.into(),
                hwcap,
            })
            .collect()
    }

    #[test]
    fn synthetic_caches_in_both_byte_orders_and_after_the_old_format() {
        for order in [2, 3] {
            for old in [None, Some(0), Some(3)] {
                let data = synthetic(ENTRIES, order, old);
                assert_eq!(parse_loader_cache(&data), expected(), "{order} {old:?}");
            }
        }
    }

    #[test]
    fn hostile_caches_give_what_can_be_read_and_never_panic() {
        let data = synthetic(ENTRIES, 2, Some(2));
        for len in 0..data.len() {
            let got = parse_loader_cache(&data[..len]);
            assert!(got.len() <= ENTRIES.len());
            assert!(got.iter().all(|e| expected().contains(e)), "{len}: {got:?}");
        }
        assert_eq!(parse_loader_cache(&data), expected());
        // Counts and offsets pointing anywhere.
        let mut data = synthetic(ENTRIES, 2, None);
        data[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_loader_cache(&data), expected());
        let mut bad_key = synthetic(ENTRIES, 2, None);
        bad_key[NEW_HEADER + 4..NEW_HEADER + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_loader_cache(&bad_key), expected()[1..]);
        let mut old = synthetic(ENTRIES, 2, Some(1));
        old[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(parse_loader_cache(&old).is_empty());
        let mut order = synthetic(ENTRIES, 2, None);
        order[28] = 9;
        assert!(parse_loader_cache(&order).is_empty());
        assert!(parse_loader_cache(b"garbage").is_empty());
        // Every single-byte corruption of the header and entries.
        let clean = synthetic(ENTRIES, 2, None);
        for at in 0..NEW_HEADER + ENTRIES.len() * NEW_ENTRY {
            for byte in [0x00, 0x7f, 0xff] {
                let mut data = clean.clone();
                data[at] = byte;
                let _ = parse_loader_cache(&data);
            }
        }
    }

    /// Every library `ldconfig -p` lists for x86-64 is in our parse, with
    /// the same path and this architecture's flags.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn agrees_with_ldconfig() {
        let test = "agrees_with_ldconfig";
        let ldconfig = ["/sbin/ldconfig", "/usr/sbin/ldconfig"]
            .iter()
            .find(|p| Path::new(p).is_file());
        let Some(ldconfig) = ldconfig else {
            eprintln!("SKIPPED {test}: ldconfig is not installed");
            return;
        };
        let Ok(data) = std::fs::read(LOADER_CACHE) else {
            eprintln!("SKIPPED {test}: no {LOADER_CACHE}");
            return;
        };
        let out = std::process::Command::new(ldconfig)
            .arg("-p")
            .output()
            .expect("run ldconfig -p");
        let text = String::from_utf8_lossy(&out.stdout);
        let ours = parse_loader_cache(&data);
        let mut checked = 0;
        for line in text.lines() {
            let Some((lhs, path)) = line.trim().split_once(" => ") else {
                continue;
            };
            let Some((name, kind)) = lhs.split_once(" (") else {
                continue;
            };
            if !kind.starts_with("libc6,x86-64") {
                continue;
            }
            assert!(
                ours.iter()
                    .any(|e| e.name == name && e.path == path && e.flags == CACHE_FLAGS),
                "ldconfig lists {name} => {path}; our parse has {:?}",
                ours.iter().filter(|e| e.name == name).collect::<Vec<_>>()
            );
            checked += 1;
            if Path::new(path).exists() {
                let found = in_loader_cache(name);
                assert!(
                    ours.iter().any(|e| e.name == name
                        && e.flags == CACHE_FLAGS
                        && Some(Path::new(&e.path)) == found.as_deref()),
                    "{name}: looked up as {found:?}"
                );
            }
        }
        assert!(checked > 0, "ldconfig -p listed no x86-64 library:\n{text}");
    }
}
