//! stap-sdt's in-process agent, preloaded (`LD_PRELOAD`) into a program
//! that `stap-sdt trace --in-process` starts.
//!
//! At load it maps the tracer's shared memory (descriptor in
//! `STAP_SDT_INPROC_FD`), and, when asked to attach, patches the 5-byte
//! nop of every cheap site of the tracer's plan in every loaded object
//! into a call to a stub near the object (`push $site; jmp trampoline`),
//! and raises the sites' semaphores. Each hit fetches the arguments as the
//! plan says and writes a record to the shared ring (or counts). A thread
//! of the agent applies the tracer's attach/detach requests (a futex in
//! the shared memory) and detaches when the tracer is gone; `dlopen` and
//! `dlclose` are wrapped so that libraries loaded later are patched too.
//! A `fork` child gets the original bytes back and its semaphores lowered
//! at once: only the process the tracer started is traced.

mod asm;
mod hit;
mod objects;
mod patch;
mod signals;

use inproc_shm::{Header, Site, ATTACHED, COUNT_STRIDE, MAX_ARGS};
use patch::{Change, Stubs};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU16, AtomicU64, Ordering};

/// What the hit path reads: set once at load, never freed.
pub(crate) struct Agent {
    header: &'static Header,
    sites: &'static [Site],
    counts: *const u8,
    ring: inproc_shm::ring::Ring<'static>,
    count_only: bool,
    /// Bytes of each string argument at most (with its NUL).
    string_bytes: usize,
    /// The largest record of each site.
    record_bytes: Vec<u64>,
    pid: u32,
    /// The tracer, to notice that it is gone (-1: cannot watch).
    tracer: libc::c_int,
}

// SAFETY: the raw pointers point into the shared mapping, which lives as
// long as the process; everything written through them is atomic.
unsafe impl Sync for Agent {}
// SAFETY: as above.
unsafe impl Send for Agent {}

impl Agent {
    fn count(&self, site: usize) -> Option<&AtomicU64> {
        (site < self.sites.len()).then(|| {
            // SAFETY: the counts area has a COUNT_STRIDE-byte line per site,
            // 8-aligned, inside the shared mapping.
            unsafe { &*(self.counts.add(site * COUNT_STRIDE as usize) as *const AtomicU64) }
        })
    }
}

static AGENT: AtomicPtr<Agent> = AtomicPtr::new(std::ptr::null_mut());
/// The same, kept in a fork child (which clears `AGENT`).
static SHARED: AtomicPtr<Agent> = AtomicPtr::new(std::ptr::null_mut());
/// False in a fork child: its sites are restored, it traces nothing.
static ACTIVE: AtomicBool = AtomicBool::new(false);

pub(crate) fn agent() -> Option<&'static Agent> {
    let p = AGENT.load(Ordering::Acquire);
    // SAFETY: set once to a leaked Box, never freed.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// The patching state, under one lock: the control thread, `dlopen` and
/// `fork` change it.
struct State {
    /// Whether the tracer asked for the sites to be patched.
    attached: bool,
    objects: Vec<ObjectState>,
}

struct ObjectState {
    base: usize,
    dev: u64,
    ino: u64,
    stubs: Stubs,
    patched: Vec<Patched>,
}

struct Patched {
    address: usize,
    call: [u8; 5],
    prot: i32,
    semaphore: Option<usize>,
}

struct Locked {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    state: UnsafeCell<State>,
}

// SAFETY: `state` is only reached through `with_state`, under `mutex`.
unsafe impl Sync for Locked {}

static LOCKED: Locked = Locked {
    mutex: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
    state: UnsafeCell::new(State {
        attached: false,
        objects: Vec::new(),
    }),
};

fn lock() {
    // SAFETY: a statically initialised mutex.
    unsafe { libc::pthread_mutex_lock(LOCKED.mutex.get()) };
}

fn unlock() {
    // SAFETY: held by this thread (lock() before).
    unsafe { libc::pthread_mutex_unlock(LOCKED.mutex.get()) };
}

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    lock();
    // SAFETY: the lock is held, and `f` never calls `with_state` (no
    // callback into the loader or the program happens under it).
    let result = f(unsafe { &mut *LOCKED.state.get() });
    unlock();
    result
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;

extern "C" fn init() {
    let Some(agent) = map_shared() else {
        return;
    };
    let agent: &'static Agent = Box::leak(Box::new(agent));
    signals::install();
    if !patch::register_sync_core() {
        agent
            .header
            .error
            .store(inproc_shm::ERROR_MEMBARRIER, Ordering::Relaxed);
    }
    SHARED.store(agent as *const Agent as *mut Agent, Ordering::Release);
    AGENT.store(agent as *const Agent as *mut Agent, Ordering::Release);
    ACTIVE.store(true, Ordering::Release);
    // SAFETY: handlers are plain functions of this library.
    unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(in_child)) };
    // Apply a request made before the program started (attach from the
    // first instruction), then follow the tracer from a thread.
    apply(agent, agent.header.control.load(Ordering::Acquire));
    let _ = std::thread::Builder::new()
        .name("stap-sdt-agent".into())
        .spawn(move || control(agent));
}

/// Map the tracer's shared memory, if this process is the one it started
/// (or that process after an `exec`): another process that inherited the
/// descriptor leaves it alone.
fn map_shared() -> Option<Agent> {
    let fd: libc::c_int = std::env::var(inproc_shm::FD_ENV).ok()?.parse().ok()?;
    // SAFETY: an all-zero stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat of a descriptor number; fails harmlessly if not open.
    if unsafe { libc::fstat(fd, &mut st) } != 0 || (st.st_size as usize) < 4096 {
        return None;
    }
    let size = st.st_size as usize;
    // SAFETY: a shared mapping of the whole memfd.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    let base = base as *mut u8;
    // SAFETY: the mapping is at least a page, page-aligned: room for the
    // header, whose fields are integers and atomics.
    let header: &'static Header = unsafe { &*(base as *const Header) };
    let (sites_at, counts_at, ring_at, end) =
        inproc_shm::layout(header.site_count as usize, header.ring_bytes);
    let valid = header.magic == inproc_shm::MAGIC
        && header.version == inproc_shm::VERSION
        && header.sites_at == sites_at
        && header.counts_at == counts_at
        && header.ring_at == ring_at
        && end as usize <= size
        && header.ring_bytes.is_power_of_two()
        && (2..=4096).contains(&header.string_bytes);
    // SAFETY: getpid has no arguments.
    let pid = unsafe { libc::getpid() } as u32;
    // The first process claims it; after an exec the pid is the same.
    let claimed =
        match header
            .agent_pid
            .compare_exchange(0, pid, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(owner) => owner == pid,
        };
    if !valid || !claimed {
        // SAFETY: our mapping, unused.
        unsafe { libc::munmap(base.cast(), size) };
        return None;
    }
    // SAFETY: the layout was checked to fit the mapping; sites are plain
    // integers written by the tracer before the program started.
    let sites: &'static [Site] = unsafe {
        std::slice::from_raw_parts(
            base.add(sites_at as usize) as *const Site,
            header.site_count as usize,
        )
    };
    let string_bytes = header.string_bytes as usize;
    let record_bytes = sites
        .iter()
        .map(|s| {
            let args = &s.args[..(s.arg_count as usize).min(MAX_ARGS)];
            let fetched: usize = args
                .iter()
                .map(|a| match (inproc_shm::in_record(a.how), a.what) {
                    (false, _) => 0,
                    (true, inproc_shm::WHAT_INT) => 8,
                    _ => (4 + string_bytes).next_multiple_of(8),
                })
                .sum();
            (inproc_shm::RECORD_HEAD + fetched) as u64
        })
        .collect();
    // SAFETY: pidfd_open takes a pid and flags; the descriptor is moved out
    // of the range programs use (and closed on exec) so that a program
    // closing or reusing its low descriptors does not touch it.
    let tracer = unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, header.tracer_pid, 0) as i32;
        let high = if fd >= 0 {
            libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 900)
        } else {
            -1
        };
        if fd >= 0 {
            libc::close(fd);
        }
        high
    };
    Some(Agent {
        header,
        sites,
        // SAFETY: inside the mapping (checked above).
        counts: unsafe { base.add(counts_at as usize) },
        ring: inproc_shm::ring::Ring {
            header,
            // SAFETY: as above.
            data: unsafe { base.add(ring_at as usize) },
            size: header.ring_bytes,
        },
        count_only: header.flags & inproc_shm::COUNT_ONLY != 0,
        string_bytes,
        record_bytes,
        pid,
        tracer,
    })
}

/// Follow the tracer's requests until it is gone; then detach.
fn control(agent: &'static Agent) {
    let header = agent.header;
    let mut applied = header.state.load(Ordering::Acquire);
    loop {
        if !ACTIVE.load(Ordering::Acquire) {
            return;
        }
        let wanted = header.control.load(Ordering::Acquire);
        if wanted != applied {
            apply(agent, wanted);
            applied = wanted;
        }
        let timeout = libc::timespec {
            tv_sec: 0,
            tv_nsec: 200_000_000,
        };
        // SAFETY: a futex wait on the shared control word (not private:
        // the tracer wakes it from its process).
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                header.control.as_ptr(),
                libc::FUTEX_WAIT,
                wanted,
                &timeout,
            )
        };
        if tracer_gone(agent) {
            with_state(|s| {
                s.attached = false;
                detach(agent, s, true);
            });
            return;
        }
    }
}

fn tracer_gone(agent: &Agent) -> bool {
    if agent.tracer < 0 {
        return false;
    }
    let mut fd = libc::pollfd {
        fd: agent.tracer,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting; a pidfd is readable once its
    // process has exited (a descriptor the program closed is POLLNVAL:
    // then the tracer cannot be watched, which is not its end).
    unsafe { libc::poll(&mut fd, 1, 0) == 1 && fd.revents & libc::POLLIN != 0 }
}

/// Attach or detach as `request` says, then acknowledge it.
fn apply(agent: &'static Agent, request: u32) {
    with_state(|s| {
        s.attached = request & ATTACHED != 0;
        if s.attached {
            attach(agent, s);
        } else {
            detach(agent, s, true);
        }
    });
    agent
        .header
        .trapped
        .store(signals::TRAPPED.load(Ordering::Relaxed), Ordering::Relaxed);
    agent.header.state.store(request, Ordering::Release);
    // SAFETY: a futex wake on the shared state word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            agent.header.state.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
        )
    };
}

fn semaphore(address: usize) -> &'static AtomicU16 {
    // SAFETY: a semaphore of a loaded object (an aligned `unsigned short`
    // in its writable `.probes` section), checked loaded just before.
    unsafe { &*(address as *const AtomicU16) }
}

/// Patch every site of the plan in every loaded object not patched yet,
/// then raise their semaphores.
fn attach(agent: &Agent, state: &mut State) {
    if agent.header.error.load(Ordering::Relaxed) == inproc_shm::ERROR_MEMBARRIER {
        return;
    }
    let loaded = objects::loaded();
    forget_unloaded(state, &loaded);
    let nop5 = patch::nop5();
    let mut changes = Vec::new();
    let mut added: Vec<(usize, usize)> = Vec::new(); // (object, patched index)
    for object in &loaded {
        let mine: Vec<u32> = (0..agent.sites.len() as u32)
            .filter(|&i| {
                let s = &agent.sites[i as usize];
                s.dev == object.dev && s.ino == object.ino
            })
            .collect();
        if mine.is_empty() {
            continue;
        }
        let position = state
            .objects
            .iter()
            .position(|o| o.base == object.base && o.dev == object.dev && o.ino == object.ino);
        let index = match position {
            Some(i) => i,
            None => {
                let counters = |site: u32| {
                    agent
                        .count_only
                        .then(|| agent.count(site as usize))
                        .flatten()
                        .map(|c| c as *const AtomicU64 as usize)
                };
                let Some(stubs) = Stubs::near(object, mine.clone(), counters) else {
                    agent
                        .header
                        .error
                        .store(inproc_shm::ERROR_STUBS, Ordering::Relaxed);
                    continue;
                };
                state.objects.push(ObjectState {
                    base: object.base,
                    dev: object.dev,
                    ino: object.ino,
                    stubs,
                    patched: Vec::new(),
                });
                state.objects.len() - 1
            }
        };
        let entry = &mut state.objects[index];
        for site in mine {
            let spec = &agent.sites[site as usize];
            let Some((address, segment)) = object.address_of(spec.offset) else {
                continue;
            };
            if entry.patched.iter().any(|p| p.address == address)
                || patch::current(address) != Some(nop5)
                || !patch::is_cheap_site(address)
            {
                continue;
            }
            let Some(stub) = entry.stubs.of(site) else {
                continue;
            };
            let Some(call) = patch::call(address, stub) else {
                continue;
            };
            if !patch::add_trap(address, stub) {
                continue;
            }
            let semaphore = (spec.semaphore != inproc_shm::NONE)
                .then(|| object.address_of(spec.semaphore).map(|(a, _)| a))
                .flatten();
            let prot = patch::code_prot(&segment);
            changes.push(Change {
                address,
                bytes: call,
                prot,
            });
            entry.patched.push(Patched {
                address,
                call,
                prot,
                semaphore,
            });
            added.push((index, entry.patched.len() - 1));
        }
    }
    match patch::write_batch(&changes, true) {
        Ok(()) => {
            for (o, p) in added {
                if let Some(s) = state.objects[o].patched[p].semaphore {
                    semaphore(s).fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        Err(e) => {
            agent.header.error.store(
                match e {
                    patch::PatchError::Mprotect => inproc_shm::ERROR_MPROTECT,
                    patch::PatchError::Membarrier => inproc_shm::ERROR_MEMBARRIER,
                },
                Ordering::Relaxed,
            );
        }
    }
    let total: usize = state.objects.iter().map(|o| o.patched.len()).sum();
    agent.header.patched.store(total as u32, Ordering::Relaxed);
}

/// Lower the semaphores, then restore every patched site.
fn detach(agent: &Agent, state: &mut State, multi_threaded: bool) {
    let nop5 = patch::nop5();
    let mut changes = Vec::new();
    for object in &mut state.objects {
        for p in object.patched.drain(..) {
            // A site whose bytes are not our call any more belongs to an
            // object unloaded (and maybe loaded again) meanwhile.
            if patch::current(p.address) != Some(p.call) {
                continue;
            }
            if let Some(s) = p.semaphore {
                semaphore(s).fetch_sub(1, Ordering::SeqCst);
            }
            changes.push(Change {
                address: p.address,
                bytes: nop5,
                prot: p.prot,
            });
        }
    }
    if patch::write_batch(&changes, multi_threaded).is_err() {
        agent
            .header
            .error
            .store(inproc_shm::ERROR_MPROTECT, Ordering::Relaxed);
    }
    agent.header.patched.store(0, Ordering::Relaxed);
}

/// Drop what we know of objects no longer loaded (their bytes and
/// semaphores went with them).
fn forget_unloaded(state: &mut State, loaded: &[objects::Loaded]) {
    state.objects.retain(|o| {
        let present = loaded
            .iter()
            .any(|l| l.base == o.base && l.dev == o.dev && l.ino == o.ino);
        if !present {
            for p in &o.patched {
                patch::remove_trap(p.address);
            }
        }
        present
    });
    for o in &mut state.objects {
        o.patched
            .retain(|p| patch::current(p.address) == Some(p.call));
    }
}

extern "C" fn before_fork() {
    lock();
}

extern "C" fn after_fork() {
    unlock();
}

/// A fork child: the original bytes back, semaphores lowered (in the
/// child's copy), nothing traced. Its only thread is the forking one.
extern "C" fn in_child() {
    hit::forget_thread();
    ACTIVE.store(false, Ordering::Release);
    AGENT.store(std::ptr::null_mut(), Ordering::Release);
    if let Some(agent) = agent_for_child() {
        // SAFETY: the lock is held since before_fork, by this thread.
        let state = unsafe { &mut *LOCKED.state.get() };
        detach(agent, state, false);
    }
    unlock();
}

/// The agent as it was before the fork (the child no longer publishes it
/// to the hit path).
fn agent_for_child() -> Option<&'static Agent> {
    let p = SHARED.load(Ordering::Acquire);
    // SAFETY: a leaked Box, as AGENT.
    (!p.is_null()).then(|| unsafe { &*p })
}

type DlopenFn = unsafe extern "C" fn(*const libc::c_char, libc::c_int) -> *mut libc::c_void;
type DlcloseFn = unsafe extern "C" fn(*mut libc::c_void) -> libc::c_int;

fn next<T>(name: &std::ffi::CStr) -> Option<T> {
    // SAFETY: dlsym of a symbol of the next object; `T` is its function type.
    unsafe {
        let p = libc::dlsym(libc::RTLD_NEXT, name.as_ptr());
        (!p.is_null()).then(|| std::mem::transmute_copy(&p))
    }
}

/// `dlopen`, and the library's sites patched when attached.
///
/// # Safety
/// As `dlopen`.
#[no_mangle]
pub unsafe extern "C" fn dlopen(
    name: *const libc::c_char,
    flags: libc::c_int,
) -> *mut libc::c_void {
    let Some(real) = next::<DlopenFn>(c"dlopen") else {
        return std::ptr::null_mut();
    };
    // SAFETY: the caller's arguments, passed on.
    let handle = unsafe { real(name, flags) };
    if let (false, Some(agent)) = (handle.is_null(), agent()) {
        with_state(|s| {
            if s.attached {
                attach(agent, s);
            }
        });
    }
    handle
}

/// `dlclose`; what the library had patched is forgotten once it is gone.
///
/// # Safety
/// As `dlclose`.
#[no_mangle]
pub unsafe extern "C" fn dlclose(handle: *mut libc::c_void) -> libc::c_int {
    let Some(real) = next::<DlcloseFn>(c"dlclose") else {
        return -1;
    };
    // SAFETY: the caller's handle, passed on.
    let result = unsafe { real(handle) };
    if agent().is_some() {
        let loaded = objects::loaded();
        with_state(|s| forget_unloaded(s, &loaded));
    }
    result
}
