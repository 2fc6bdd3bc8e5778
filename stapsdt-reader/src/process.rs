//! Probes of a live process: the objects it maps, with run-time addresses.
//!
//! Objects are opened through `/proc/PID/root`, so a process in another
//! mount namespace (a container) is read from its own file system view, and
//! through `/proc/PID/map_files` when that fails (a deleted file).

use crate::{read_path_with, Error, Object, ReadOptions};
use std::path::PathBuf;

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    /// File offset of `start`.
    pub offset: u64,
    pub dev: String,
    pub inode: u64,
    /// The path, without a ` (deleted)` suffix; empty for anonymous memory.
    pub path: String,
}

impl Mapping {
    /// Run-time address of a file offset, if this mapping covers it.
    pub fn address_of(&self, file_offset: u64) -> Option<u64> {
        let len = self.end - self.start;
        (file_offset >= self.offset && file_offset - self.offset < len)
            .then(|| self.start + (file_offset - self.offset))
    }
}

/// Parse the text of a maps file. Lines that do not parse are skipped.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mapping> {
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let perms = fields.next()?.to_string();
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let dev = fields.next()?.to_string();
    let inode = fields.next()?.parse().ok()?;
    let path = fields.next().unwrap_or("").trim_start();
    let path = path.strip_suffix(" (deleted)").unwrap_or(path).to_string();
    let (start, end) = range.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    let end = u64::from_str_radix(end, 16).ok()?;
    (start < end).then_some(Mapping {
        start,
        end,
        perms,
        offset,
        dev,
        inode,
        path,
    })
}

/// The memory map of a process.
pub fn maps(pid: u32) -> Result<Vec<Mapping>, Error> {
    let input = format!("pid {pid}");
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such process".to_string(),
            std::io::ErrorKind::PermissionDenied => {
                "permission denied reading its maps (run as root or as the process's user)"
                    .to_string()
            }
            _ => e.to_string(),
        };
        Error::new(input.clone(), why)
    })?;
    Ok(parse_maps(&text))
}

/// A file mapped by a process, with all of its mappings.
#[derive(Debug, Clone)]
pub struct MappedFile {
    pub path: String,
    pub inode: u64,
    pub dev: String,
    pub mappings: Vec<Mapping>,
}

impl MappedFile {
    pub fn address_of(&self, file_offset: u64) -> Option<u64> {
        self.mappings.iter().find_map(|m| m.address_of(file_offset))
    }

    /// Like [`MappedFile::address_of`], but prefer a mapping with permission
    /// `perm` (`'x'`, `'w'`): when segments share a file page (lld, Rust),
    /// the page is mapped twice, e.g. read-only then executable, and only the
    /// mapping of the right segment gives the address the program uses.
    pub fn address_of_in(&self, file_offset: u64, perm: char) -> Option<u64> {
        self.mappings
            .iter()
            .filter(|m| m.perms.contains(perm))
            .find_map(|m| m.address_of(file_offset))
            .or_else(|| self.address_of(file_offset))
    }

    /// Paths to open the file by, best first.
    fn open_paths(&self, pid: u32) -> Vec<PathBuf> {
        let mut paths = vec![PathBuf::from(format!("/proc/{pid}/root{}", self.path))];
        if let Some(m) = self.mappings.first() {
            paths.push(PathBuf::from(format!(
                "/proc/{pid}/map_files/{:x}-{:x}",
                m.start, m.end
            )));
        }
        paths
    }
}

/// Group file-backed mappings by file, in order of first mapping.
pub fn mapped_files(mappings: &[Mapping]) -> Vec<MappedFile> {
    let mut files: Vec<MappedFile> = Vec::new();
    for m in mappings
        .iter()
        .filter(|m| m.path.starts_with('/') && m.inode != 0)
    {
        match files
            .iter_mut()
            .find(|f| f.inode == m.inode && f.dev == m.dev && f.path == m.path)
        {
            Some(f) => f.mappings.push(m.clone()),
            None => files.push(MappedFile {
                path: m.path.clone(),
                inode: m.inode,
                dev: m.dev.clone(),
                mappings: vec![m.clone()],
            }),
        }
    }
    files
}

/// Every object mapped by `pid` that is an ELF file, with run-time addresses
/// filled in. Files that cannot be read are returned as errors beside the
/// objects; only a process that cannot be inspected at all is an `Err`.
pub fn read_process(pid: u32, options: &ReadOptions) -> Result<(Vec<Object>, Vec<Error>), Error> {
    let mappings = maps(pid)?;
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for file in mapped_files(&mappings) {
        match read_mapped(pid, &file, options) {
            Ok(Some(object)) => objects.push(object),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    Ok((objects, errors))
}

fn read_mapped(
    pid: u32,
    file: &MappedFile,
    options: &ReadOptions,
) -> Result<Option<Object>, Error> {
    let mut last_error = None;
    for (tried, path) in file.open_paths(pid).into_iter().enumerate() {
        match crate::file_kind(&path) {
            Ok(crate::FileKind::Elf) => {}
            Ok(_) => return Ok(None),
            Err(e) => {
                last_error = Some(Error::new(&file.path, format!("mapped by pid {pid}: {e}")));
                continue;
            }
        }
        let mut object = read_path_with(&path, options)
            .map_err(|e| Error::new(&file.path, e.message))?
            .remove(0);
        object.path = file.path.clone();
        // Not through the process's root: the maps path names nothing
        // (a memfd, a deleted file); consumers open the map_files link.
        if tried > 0 {
            object.open_path = Some(path.display().to_string());
        }
        place(&mut object, file, pid);
        return Ok(Some(object));
    }
    Err(last_error.unwrap_or_else(|| Error::new(&file.path, "cannot be opened")))
}

/// Fill in run-time addresses of locations and semaphores from the mappings.
pub fn place(object: &mut Object, file: &MappedFile, pid: u32) {
    object.pid = Some(pid);
    for location in object
        .probes
        .iter_mut()
        .flat_map(|p| p.locations.iter_mut())
    {
        location.runtime_address = location
            .file_offset
            .and_then(|o| file.address_of_in(o, 'x'));
        if object.load_bias.is_none() {
            object.load_bias = location
                .runtime_address
                .map(|r| r.wrapping_sub(location.address));
        }
        if let Some(sem) = &mut location.semaphore {
            sem.runtime_address = sem.file_offset.and_then(|o| file.address_of_in(o, 'w'));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d4c0a00000-55d4c0a02000 r--p 00000000 fe:01 1234 /usr/bin/demo
55d4c0a02000-55d4c0a04000 r-xp 00002000 fe:01 1234 /usr/bin/demo
55d4c0c05000-55d4c0c06000 rw-p 00004000 fe:01 1234 /usr/bin/demo
7f0000000000-7f0000001000 rw-p 00000000 00:00 0 
7f0000100000-7f0000200000 r-xp 00000000 fe:01 99 /tmp/lib with space.so (deleted)
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
garbage line
";

    #[test]
    fn parses_maps() {
        let maps = parse_maps(MAPS);
        assert_eq!(maps.len(), 6);
        assert_eq!(maps[4].path, "/tmp/lib with space.so");
        let files = mapped_files(&maps);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].mappings.len(), 3);
        assert_eq!(files[0].address_of(0x2010), Some(0x55d4c0a02010));
        assert_eq!(files[0].address_of(0x4002), Some(0x55d4c0c05002));
        assert_eq!(files[0].address_of(0x9000), None);
    }

    #[test]
    fn shared_file_page_resolves_in_the_segment_mapping() {
        // A Rust/lld PIE: the page at file offset 0x12000 ends the read-only
        // segment and starts the text segment, so it is mapped twice.
        let maps = parse_maps(
            "555555554000-555555567000 r--p 00000000 fe:01 7 /tmp/rust_str\n\
             555555567000-5555555a6000 r-xp 00012000 fe:01 7 /tmp/rust_str\n\
             5555555a6000-5555555a9000 r--p 00050000 fe:01 7 /tmp/rust_str\n\
             5555555a9000-5555555ab000 rw-p 00052000 fe:01 7 /tmp/rust_str\n",
        );
        let file = &mapped_files(&maps)[0];
        assert_eq!(file.address_of(0x12f75), Some(0x555555566f75));
        assert_eq!(file.address_of_in(0x12f75, 'x'), Some(0x555555567f75));
        assert_eq!(file.address_of_in(0x52c50, 'w'), Some(0x5555555a9c50));
        assert_eq!(file.address_of_in(0x100, 'x'), Some(0x555555554100));
    }

    #[test]
    fn vanished_pid_is_a_clear_error() {
        let err = maps(u32::MAX - 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("pid {}: no such process", u32::MAX - 1)
        );
    }
}
