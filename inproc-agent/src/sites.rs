//! Which sites are patched, in which loaded object, under one lock: the
//! control thread, `dlopen` and `fork` change it.

use crate::objects;
use crate::patch::{self, Change, Stubs};
use crate::shared::Agent;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

/// The patching state, under one lock: the control thread, `dlopen` and
/// `fork` change it.
pub(crate) struct State {
    /// Whether the tracer asked for the sites to be patched.
    pub attached: bool,
    objects: Vec<ObjectState>,
    /// Objects (device, inode) reported to the tracer to be planned.
    reported: Vec<(u64, u64)>,
}

pub(crate) struct ObjectState {
    base: usize,
    dev: u64,
    ino: u64,
    stubs: Stubs,
    patched: Vec<Patched>,
}

pub(crate) struct Patched {
    address: usize,
    call: [u8; 5],
    prot: i32,
    semaphore: Option<usize>,
}

pub(crate) struct Locked {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    pub state: UnsafeCell<State>,
}

// SAFETY: `state` is only reached through `with_state`, under `mutex`.
unsafe impl Sync for Locked {}

pub(crate) static LOCKED: Locked = Locked {
    mutex: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
    state: UnsafeCell::new(State {
        attached: false,
        objects: Vec::new(),
        reported: Vec::new(),
    }),
};

pub(crate) fn lock() {
    // SAFETY: a statically initialised mutex.
    unsafe { libc::pthread_mutex_lock(LOCKED.mutex.get()) };
}

pub(crate) fn unlock() {
    // SAFETY: held by this thread (lock() before).
    unsafe { libc::pthread_mutex_unlock(LOCKED.mutex.get()) };
}

pub(crate) fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    lock();
    // SAFETY: the lock is held, and `f` never calls `with_state` (no
    // callback into the loader or the program happens under it).
    let result = f(unsafe { &mut *LOCKED.state.get() });
    unlock();
    result
}

fn semaphore(address: usize) -> &'static AtomicU16 {
    // SAFETY: a semaphore of a loaded object (an aligned `unsigned short`
    // in its writable `.probes` section), checked loaded just before.
    unsafe { &*(address as *const AtomicU16) }
}

/// Patch every site of the plan in every loaded object not patched yet,
/// then raise their semaphores.
pub(crate) fn attach(agent: &Agent, state: &mut State) {
    if agent.header.error.load(Ordering::Relaxed) == inproc_shm::ERROR_MEMBARRIER {
        return;
    }
    let loaded = objects::loaded();
    forget_unloaded(state, &loaded);
    let nop5 = patch::nop5();
    let mut changes = Vec::new();
    let mut added: Vec<(usize, usize)> = Vec::new(); // (object, patched index)
    for object in &loaded {
        let in_object = |i: u32| {
            agent
                .site(i as usize)
                .is_some_and(|s| s.dev == object.dev && s.ino == object.ino)
        };
        let identity = (object.dev, object.ino);
        if agent.deferred
            && !state.reported.contains(&identity)
            && !(0..agent.site_count() as u32).any(in_object)
        {
            state.reported.push(identity);
            crate::mailbox::report(agent, object);
        }
        let mine: Vec<u32> = (0..agent.site_count() as u32)
            .filter(|&i| in_object(i))
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
            let Some(spec) = agent.site(site as usize) else {
                continue;
            };
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
pub(crate) fn detach(agent: &Agent, state: &mut State, multi_threaded: bool) {
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
pub(crate) fn forget_unloaded(state: &mut State, loaded: &[objects::Loaded]) {
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
