"""`sdt-break` / `sdt-tbreak`: breakpoints on every location of a static probe.

A probe breakpoint is a group: the probe it names (`[OBJFILE:]PROVIDER:NAME`,
shell globs allowed), an optional condition and the temporary flag. Each
location found in the running process becomes one ordinary GDB breakpoint at
its run-time address (`*0x...`), so `info breakpoints`, `disable`, `delete`,
`commands` and `ignore` work on it as usual. Locations are looked up again
whenever GDB loads an objfile (shared libraries at start-up and dlopen), so a
probe that is in no loaded object yet stays pending and resolves later.
Location breakpoints belong to one process: they are removed when it exits
and made again in the next one.

The condition is evaluated by the location breakpoint's `stop` method after
the `$_probe_*` variables are set for that location; that is why GDB's
`condition N` command refuses these breakpoints (GDB allows only one kind of
stop condition): use `sdt-condition N COND` instead. The commands are in
commands.py; adopting GDB's own pending `break probe:...` is in adopt.py.
"""

import fnmatch
import os

import gdb

from . import catalog, convenience, semaphores, tool


class ProbeSpec:
    """`[probe:][OBJFILE:]PROVIDER:NAME`."""

    def __init__(self, text):
        body = text[len("probe:"):] if text.startswith("probe:") else text
        parts = body.rsplit(":", 2)
        if len(parts) < 2 or not all(parts[-2:]):
            raise gdb.GdbError(
                f"{text!r} is not a probe: expected [probe:][OBJFILE:]PROVIDER:NAME "
                "(for example probe:demo:tick or probe:libfoo.so:foo:start)"
            )
        self.text = text
        self.objfile = parts[0] if len(parts) == 3 else None
        self.provider, self.name = parts[-2], parts[-1]

    def matches(self, site):
        if not fnmatch.fnmatchcase(site.provider, self.provider):
            return False
        if not fnmatch.fnmatchcase(site.name, self.name):
            return False
        return self.objfile is None or _objfile_matches(self.objfile, site.path)

    def __str__(self):
        where = f"{self.objfile}:" if self.objfile else ""
        return f"{where}{self.provider}:{self.name}"


def _objfile_matches(pattern, path):
    """OBJFILE is a path, a base name (`libfoo.so.1`) or a base name without `.so...`."""
    if pattern == path or os.path.realpath(pattern) == os.path.realpath(path):
        return True
    base = os.path.basename(path)
    stem = base.split(".so")[0] if ".so" in base else base
    return fnmatch.fnmatchcase(base, pattern) or fnmatch.fnmatchcase(stem, pattern)


class Group:
    """One `sdt-break`: a probe, a condition, and its location breakpoints."""

    def __init__(self, number, spec, condition, temporary):
        self.number = number
        self.spec = spec
        self.condition = condition
        self.temporary = temporary
        self.locations = {}  # run-time address -> LocationBreakpoint
        self.deleted_by_user = set()  # addresses the user deleted: not re-made
        self.resolved_pid = 0
        self.deleted = False

    def describe(self):
        kind = "temporary probe breakpoint" if self.temporary else "probe breakpoint"
        cond = f" if {self.condition}" if self.condition else ""
        return f"{kind} #{self.number} probe:{self.spec}{cond}"


class LocationBreakpoint(gdb.Breakpoint):
    """A breakpoint at one probe location; sets $_probe_* and tests the condition."""

    def __init__(self, group, site, pid):
        self.group, self.site, self.pid = group, site, pid
        self.quiet_delete = False
        super().__init__(f"*{site.address:#x}", gdb.BP_BREAKPOINT, temporary=group.temporary)

    def stop(self):
        if self.group.deleted:
            return False  # the rest of a temporary probe breakpoint that was hit
        convenience.publish(self.site, gdb.newest_frame())
        if not self.group.condition:
            return True
        try:
            return bool(gdb.parse_and_eval(self.group.condition))
        except gdb.error as e:
            print(f"Error in testing condition for breakpoint {self.number} "
                  f"({self.group.describe()}): {e}")
            return True


_groups = []
_next_number = [1]


def groups():
    """The probe breakpoints, oldest first (a copy: callers may delete while iterating)."""
    return list(_groups)


def all_locations():
    return [bp for group in _groups for bp in group.locations.values()]


def _delete_quietly(bp):
    """Delete a location breakpoint without treating it as the user's `delete`."""
    if bp.is_valid():
        bp.quiet_delete = True
        bp.delete()


def _drop_locations(unwanted):
    """Quietly delete the location breakpoints for which unwanted(bp) is true."""
    for group in _groups:
        for address, bp in list(group.locations.items()):
            if unwanted(bp):
                del group.locations[address]
                _delete_quietly(bp)


def _forget_other_processes(pid):
    """Location breakpoints of a process that is gone are deleted quietly."""
    _drop_locations(lambda bp: bp.pid != pid)
    for group in _groups:
        if group.resolved_pid != pid:
            group.deleted_by_user.clear()


def forget_process():
    """The process exited: its location breakpoints go; the probe breakpoints stay."""
    _forget_other_processes(0)


def forget_objfile(event):
    """A library was unloaded (dlclose): its locations go, and come back if it loads again."""
    path = event.objfile.filename
    if path:
        real = os.path.realpath(path)
        _drop_locations(lambda bp: os.path.realpath(bp.site.path) == real)


def resolve(announce=True):
    """Give every group a breakpoint at each of its locations in the current process."""
    pid = catalog.current_pid()
    _forget_other_processes(pid)
    if pid == 0 or not _groups:
        return
    try:
        sites = catalog.live_sites() or []
    except gdb.GdbError as e:
        print(f"stap-sdt: cannot list the probes of process {pid}: {e}")
        return
    for group in list(_groups):
        group.resolved_pid = pid
        for site in sites:
            if not group.spec.matches(site):
                continue
            if site.address in group.locations or site.address in group.deleted_by_user:
                continue
            bp = LocationBreakpoint(group, site, pid)
            group.locations[site.address] = bp
            if announce:
                print(f"stap-sdt: breakpoint {bp.number} is {group.describe()}, {site.where()}")
    semaphores.reconcile(all_locations())


def parse_command(arg):
    """`SPEC [if COND]` -> (ProbeSpec, condition or None)."""
    text = arg.strip()
    if not text:
        raise gdb.GdbError("Usage: sdt-break [probe:][OBJFILE:]PROVIDER:NAME [if CONDITION]")
    spec_text, _, rest = text.partition(" ")
    rest = rest.strip()
    condition = None
    if rest:
        if not (rest.startswith("if ") or rest.startswith("if\t")):
            raise gdb.GdbError(f"Junk after the probe {spec_text!r}: {rest!r} (expected `if CONDITION`)")
        condition = rest[2:].strip()
        if not condition:
            raise gdb.GdbError("Argument required (condition after `if`).")
    return ProbeSpec(spec_text), condition


def create(arg, temporary):
    spec, condition = parse_command(arg)
    tool.program()  # no probe breakpoint without a way to list probes
    group = Group(_next_number[0], spec, condition, temporary)
    _next_number[0] += 1
    _groups.append(group)
    if catalog.current_pid() == 0:
        known = [s for s in catalog.static_sites() if spec.matches(s)]
        where = f"{len(known)} location(s) in the loaded files" if known else "no loaded file has it yet"
        print(f"stap-sdt: {group.describe()} pending ({where}); it resolves when the program runs "
              "and whenever a library loads.")
        return
    resolve()
    if not group.locations:
        print(f"stap-sdt: {group.describe()} pending: no object of process "
              f"{catalog.current_pid()} has this probe yet; it resolves when a library loads.")


def delete_group(group):
    group.deleted = True
    if group in _groups:
        _groups.remove(group)
    for bp in list(group.locations.values()):
        _delete_quietly(bp)
    group.locations.clear()
    semaphores.reconcile(all_locations())


def on_breakpoint_deleted(bp):
    if not isinstance(bp, LocationBreakpoint) or bp.quiet_delete:
        return
    group = bp.group
    if group.locations.get(bp.site.address) is bp:
        del group.locations[bp.site.address]
        group.deleted_by_user.add(bp.site.address)
    if group.temporary and bp.hit_count > 0:
        # A temporary probe breakpoint stops once, whichever location is hit;
        # its other locations go once GDB is done deleting this one.
        group.deleted = True
        if group in _groups:
            _groups.remove(group)
        # Deleted at the next prompt, stop or objfile load (a gdb.post_event
        # still queued when GDB exits crashes GDB 13); until then they do not stop.
        _doomed.append(group)
    elif not group.locations and group in _groups:
        # The user deleted its last location: the probe breakpoint is gone too.
        _groups.remove(group)
    semaphores.reconcile(all_locations())


_doomed = []  # temporary probe breakpoints whose other locations must go
_exiting = [False]


def on_gdb_exiting(_event):
    """GDB is exiting: nothing may touch breakpoints any more."""
    _exiting[0] = True
    _doomed.clear()


def delete_doomed():
    """Delete the remaining locations of temporary probe breakpoints that were hit."""
    while _doomed and not _exiting[0]:
        delete_group(_doomed.pop())


def on_breakpoint_changed(bp):
    """A location breakpoint was made, enabled or disabled: semaphores follow."""
    if isinstance(bp, LocationBreakpoint):
        semaphores.reconcile(all_locations())
