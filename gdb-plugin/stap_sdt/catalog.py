"""The probe sites of the program being debugged, as `stap-sdt list` reports them.

A `Site` is one location of one probe in one object, with the addresses it
has in the current process (run-time addresses from `stap-sdt list -p PID`)
or, with no process, its link-time addresses.
"""

import os

import gdb

from . import tool


class Site:
    """One probe location; `args` are the JSON argument records, untouched."""

    __slots__ = (
        "provider", "name", "path", "address", "semaphore", "args", "args_raw",
        "bias", "endian", "bits", "index", "count", "live",
    )

    def __init__(self, obj, probe, index, location):
        bias = obj.get("load_bias")
        self.live = bias is not None
        self.bias = bias or 0
        self.provider = probe["provider"]
        self.name = probe["name"]
        self.path = obj["path"]
        self.endian = obj.get("endian", "little")
        self.bits = obj.get("bits", 64)
        self.address = _runtime(location, self.bias)
        semaphore = location.get("semaphore")
        self.semaphore = None if semaphore is None else _runtime(semaphore, self.bias)
        self.args = location["args"]
        self.args_raw = location["args_raw"]
        self.index = index
        self.count = len(probe["locations"])

    @property
    def probe(self):
        return f"{self.provider}:{self.name}"

    def where(self):
        """`probe demo:tick (location 2 of 3) in /path` for messages."""
        of = f" (location {self.index + 1} of {self.count})" if self.count > 1 else ""
        return f"probe {self.probe}{of} in {self.path}"


def _runtime(record, bias):
    """A record's run-time address: stap-sdt's, else link-time address + load bias."""
    runtime = record.get("runtime_address")
    return record["address"] + bias if runtime is None else runtime


def _sites(objects):
    for obj in objects:
        for probe in obj.get("probes", []):
            for index, location in enumerate(probe["locations"]):
                yield Site(obj, probe, index, location)


class _LiveCache:
    """`stap-sdt list -p PID` of the current process, re-read after objfiles change."""

    def __init__(self):
        self.pid = 0
        self.generation = -1
        self.sites = []
        self.by_address = {}

    def get(self, pid, generation):
        if pid != self.pid or generation != self.generation:
            self.sites = list(_sites(tool.list_process(pid)))
            self.by_address = {site.address: site for site in self.sites}
            self.pid, self.generation = pid, generation
        return self


_live = _LiveCache()
_generation = 0


def invalidate(*_event):
    """Objfiles came or went: the next look-up re-lists the process."""
    global _generation
    _generation += 1


def current_pid():
    inferior = gdb.selected_inferior()
    return inferior.pid if inferior is not None else 0


def live_sites():
    """Sites of the running process (run-time addresses), or None without one."""
    pid = current_pid()
    if pid == 0:
        return None
    return _live.get(pid, _generation).sites


def site_at(pc):
    """The site whose run-time address is PC in the current process, or None."""
    pid = current_pid()
    if pid == 0:
        return None
    return _live.get(pid, _generation).by_address.get(pc)


def static_sites():
    """Sites of the objfiles GDB has loaded, at link-time addresses (no process)."""
    seen = set()
    sites = []
    for objfile in gdb.objfiles():
        path = objfile.filename
        if objfile.owner is not None:  # a separate debug file: its program is listed
            continue
        if not path or path in seen or not os.path.isfile(path):
            continue
        seen.add(path)
        sites.extend(_sites(tool.list_file(path)))
    return sites


def sites():
    """Live sites when there is a process, else the static ones."""
    found = live_sites()
    return static_sites() if found is None else found
