//! The objects the process has loaded (`dl_iterate_phdr`): each one's load
//! address, file identity (device, inode) and loadable segments, to find a
//! site's or a semaphore's run-time address from its file offset.

use std::ffi::CStr;

/// One `PT_LOAD` segment.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    pub vaddr: usize,
    pub offset: u64,
    pub filesz: u64,
    pub memsz: usize,
    /// `PROT_*` of the segment (from `p_flags`).
    pub prot: i32,
}

/// A loaded object.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// `dlpi_addr`: what link-time addresses are moved by.
    pub base: usize,
    /// Its name as the loader has it (`/proc/self/exe` for the program).
    pub name: std::ffi::CString,
    pub dev: u64,
    pub ino: u64,
    pub segments: Vec<Segment>,
}

impl Loaded {
    /// The run-time address of a file offset in a loaded segment.
    pub fn address_of(&self, offset: u64) -> Option<(usize, Segment)> {
        self.segments
            .iter()
            .find(|s| offset >= s.offset && offset < s.offset + s.filesz)
            .map(|s| (self.base + s.vaddr + (offset - s.offset) as usize, *s))
    }

    /// Lowest and highest run-time addresses of the object.
    pub fn span(&self) -> (usize, usize) {
        let low = self.segments.iter().map(|s| s.vaddr).min().unwrap_or(0);
        let high = self
            .segments
            .iter()
            .map(|s| s.vaddr + s.memsz)
            .max()
            .unwrap_or(0);
        (self.base + low, self.base + high)
    }
}

/// Every object loaded now that is a file (the vDSO is not).
pub fn loaded() -> Vec<Loaded> {
    let mut out: Vec<Loaded> = Vec::new();
    // SAFETY: the callback receives valid `dl_phdr_info`s for the duration
    // of each call and `data` is our `out`, alive for the whole iteration.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut out as *mut Vec<Loaded>).cast()) };
    out
}

unsafe extern "C" fn each(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: `dl_iterate_phdr` passes a valid info and our `data`.
    let (info, out) = unsafe { (&*info, &mut *(data as *mut Vec<Loaded>)) };
    let name = if info.dlpi_name.is_null() {
        c""
    } else {
        // SAFETY: a non-null dlpi_name is a NUL-terminated string.
        unsafe { CStr::from_ptr(info.dlpi_name) }
    };
    // The main program's name is empty.
    let path = if name.is_empty() {
        c"/proc/self/exe"
    } else {
        name
    };
    // SAFETY: an all-zero `stat` is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid path and out-parameter.
    if unsafe { libc::stat(path.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    let headers = if info.dlpi_phdr.is_null() {
        &[][..]
    } else {
        // SAFETY: dlpi_phdr points to dlpi_phnum program headers.
        unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
    };
    let segments = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD)
        .map(|h| Segment {
            vaddr: h.p_vaddr as usize,
            offset: h.p_offset,
            filesz: h.p_filesz,
            memsz: h.p_memsz as usize,
            prot: prot_of(h.p_flags),
        })
        .collect();
    out.push(Loaded {
        base: info.dlpi_addr as usize,
        name: path.to_owned(),
        dev: st.st_dev,
        ino: st.st_ino,
        segments,
    });
    0
}

fn prot_of(flags: u32) -> i32 {
    let mut prot = 0;
    if flags & libc::PF_R != 0 {
        prot |= libc::PROT_READ;
    }
    if flags & libc::PF_W != 0 {
        prot |= libc::PROT_WRITE;
    }
    if flags & libc::PF_X != 0 {
        prot |= libc::PROT_EXEC;
    }
    prot
}
