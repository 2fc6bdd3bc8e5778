"""Raise probe semaphores while a probe breakpoint needs them, and restore them.

A semaphore (`unsigned short` in `.probes`) is what `PROVIDER_NAME_ENABLED()`
reads. While at least one enabled probe breakpoint location of the current
process has a semaphore, the plugin adds 1 to it; when none does (deleted,
disabled, temporary breakpoint hit) it subtracts that 1 again, and before
`detach`, `kill` and `quit` it subtracts everything it added. The ledger
records only what the plugin added, so a program or another tracer that
raised the same semaphore keeps its count.
"""

import os

import gdb

from . import catalog

# (pid, address) -> (byte order, path of its object) of each semaphore we raised by one.
_raised = {}


def _adjust(address, order, delta):
    inferior = gdb.selected_inferior()
    old = int.from_bytes(bytes(inferior.read_memory(address, 2)), order)
    new = max(0, min(0xFFFF, old + delta))
    inferior.write_memory(address, new.to_bytes(2, order))


def _wanted(pid, locations):
    wanted = {}
    for bp in locations:
        if bp.pid == pid and bp.site.semaphore is not None and bp.is_valid() and bp.enabled:
            order = "big" if bp.site.endian == "big" else "little"
            wanted[(pid, bp.site.semaphore)] = (order, bp.site.path)
    return wanted


def reconcile(locations):
    """Make the raised set match the enabled probe breakpoint LOCATIONS."""
    pid = catalog.current_pid()
    for key in [key for key in _raised if key[0] != pid]:
        del _raised[key]  # that process is gone: its memory went with it
    if pid == 0:
        return
    wanted = _wanted(pid, locations)
    for key, (order, path) in wanted.items():
        if key not in _raised:
            try:
                _adjust(key[1], order, +1)
                _raised[key] = (order, path)
            except gdb.error as e:
                print(f"stap-sdt: cannot raise the semaphore at {key[1]:#x}: {e}")
    for key in [key for key in _raised if key not in wanted]:
        _lower(key)


def _lower(key):
    order, _path = _raised.pop(key)
    try:
        _adjust(key[1], order, -1)
    except gdb.error as e:
        print(f"stap-sdt: cannot restore the semaphore at {key[1]:#x}: {e}")


def release_all():
    """Put back every semaphore raised in the current process (before detach/kill)."""
    pid = catalog.current_pid()
    for key in [key for key in _raised if key[0] == pid]:
        _lower(key)
    for key in list(_raised):
        del _raised[key]


def forget_object(path):
    """PATH was unmapped (dlclose) or replaced (exec): its semaphores went with it,
    and writing at their old addresses could hit whatever is mapped there now."""
    real = os.path.realpath(path)
    for key in [k for k, (_, p) in _raised.items() if os.path.realpath(p) == real]:
        del _raised[key]


def forget_process():
    """The process exited: nothing to restore, its memory is gone."""
    _raised.clear()


def raised(pid, address):
    return (pid, address) in _raised
