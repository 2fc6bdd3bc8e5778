"""Probe breakpoints: a GDB breakpoint the user sees, stopping at every location of a probe.

A probe breakpoint is a group. Its *anchor* is an ordinary user breakpoint
that GDB made and numbered: GDB's pending `break probe:PROVIDER:NAME` (which
`sdt-break` also makes), or GDB's own `break -probe-stap ...`. Everything the
user sets on a breakpoint is set on the anchor with GDB's own commands and is
read from it at each hit: its number, `condition`, `ignore`, `commands`,
`enable`/`disable`, `tbreak`-ness and `delete`. (GDB 13 cannot give a
breakpoint new locations from Python, and numbers only ever grow, so keeping
the number the user saw means keeping the breakpoint.)

The anchor itself never stops: `probe:...` is a location GDB cannot resolve,
and the locations GDB finds for `-probe-stap` are kept disabled. The stops
come from one hidden (internal) breakpoint per probe location in the running
process, at its run-time address. Its `stop` method sets `$_probe_*` for that
location *before* the anchor's condition is tested, which is what GDB's own
probe breakpoints get wrong. Being internal, it would be reported as
"Breakpoint -7"; it is silent instead, and the plugin prints GDB's line
("Breakpoint 1, main () at demo.c:33") with the anchor's number at the stop.

Locations are looked up again whenever GDB loads an objfile (shared libraries
at start-up and dlopen), so a probe in no loaded object yet resolves later.
They belong to one process: they are removed when it exits and made again in
the next one. Adopting GDB's breakpoints is in adopt.py, the commands in
commands.py.
"""

import fnmatch
import os

import gdb

from . import catalog, convenience, semaphores, tool


class ProbeSpec:
    """`[probe:][OBJFILE:]PROVIDER:NAME`, globs allowed in PROVIDER and NAME."""

    def __init__(self, text):
        body = text[len("probe:"):] if text.startswith("probe:") else text
        parts = body.rsplit(":", 2)
        if len(parts) < 2 or not all(parts[-2:]):
            raise gdb.GdbError(
                f"{text!r} is not a probe: expected [probe:][OBJFILE:]PROVIDER:NAME "
                "(for example probe:demo:tick or probe:libfoo.so:foo:start)"
            )
        self.objfile = parts[0] if len(parts) == 3 else None
        self.provider, self.name = parts[-2], parts[-1]

    @classmethod
    def from_gdb_probe(cls, text):
        """GDB's own `-probe-stap [OBJFILE:[PROVIDER:]]NAME` (no provider: any)."""
        parts = text.split(":")
        if not text or len(parts) > 3 or not all(parts):
            raise gdb.GdbError(f"{text!r} is not a probe: expected [OBJFILE:[PROVIDER:]]NAME")
        if len(parts) == 1:
            parts.insert(0, "*")
        return cls(":".join(parts))

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
    """One probe breakpoint: the user's anchor breakpoint and its location breakpoints."""

    def __init__(self, anchor, spec, condition=None, thread=None, native=False):
        self.anchor = anchor
        self.number = anchor.number  # kept: the anchor may be deleted first
        self.spec = spec
        # The condition is the plugin's, not GDB's: GDB 13 disables a pending
        # breakpoint that has a condition of its own at the next library load
        # ("Error in re-setting breakpoint N"), unless the condition came with
        # the `break` command, where GDB keeps it as text the plugin reads.
        # `condition N COND` is followed through `native_seen`.
        self.condition = condition
        self.native_seen = anchor.condition
        self.user_enabled = anchor.enabled  # GDB's re-set errors disable without an event
        self.warned = False
        self.thread = thread  # `thread ID` text after the probe, or None
        self.native = native  # GDB's own -probe-stap: its locations stay disabled
        self.locations = {}  # run-time address -> LocationBreakpoint
        self.resolved_pid = 0
        self.hits = 0
        self.deleted = False

    def valid(self):
        return not self.deleted and self.anchor.is_valid()

    @property
    def temporary(self):
        return self.anchor.is_valid() and self.anchor.temporary

    def describe(self):
        thread = f" thread {self.thread}" if self.thread else ""
        cond = f" if {self.condition}" if self.condition else ""
        return f"probe:{self.spec}{thread}{cond}"


def _thread_matches(wanted):
    """`thread N` (of the current inferior) or `thread I.N`, as GDB reads a thread ID."""
    thread = gdb.selected_thread()
    if thread is None:
        return False
    inferior, _, number = wanted.rpartition(".")
    if inferior and inferior != str(thread.inferior.num):
        return False
    return number == str(thread.num)


class LocationBreakpoint(gdb.Breakpoint):
    """A hidden breakpoint at one probe location; sets $_probe_* and tests the anchor."""

    def __init__(self, group, site, pid):
        self.group, self.site, self.pid = group, site, pid
        self.quiet_delete = False
        super().__init__(f"*{site.address:#x}", gdb.BP_BREAKPOINT, internal=True)
        # GDB would report an internal breakpoint as "Breakpoint -7, ..."; the
        # plugin prints the anchor's line instead (report_stop).
        self.silent = True
        follow_anchor(self)

    def stop(self):
        group = self.group
        if not group.valid() or not group.user_enabled:
            return False
        if group.thread and not _thread_matches(group.thread):
            return False
        convenience.publish(self.site, gdb.newest_frame())
        anchor = group.anchor
        if group.condition:
            try:
                if not bool(gdb.parse_and_eval(group.condition)):
                    return False
            except gdb.error as e:
                # As GDB does with a condition it cannot evaluate: say so and stop.
                print(f"Error in testing condition for breakpoint {group.number}:\n{e}")
        group.hits += 1
        if anchor.ignore_count > 0:
            anchor.ignore_count -= 1
            return False
        _stopped.append(group)
        return True


def follow_anchor(bp):
    """A location breakpoint takes its anchor's enable state and commands."""
    anchor = bp.group.anchor
    if not anchor.is_valid():
        return
    if bp.enabled != bp.group.user_enabled:
        bp.enabled = bp.group.user_enabled
    if bp.commands != anchor.commands:
        bp.commands = anchor.commands


_groups = []
_stopped = []  # groups whose location said "stop" since the last stop event
_doomed = []  # location breakpoints of deleted probe breakpoints, to delete later
_exiting = [False]


def groups():
    """The probe breakpoints, oldest first (a copy: callers may delete while iterating)."""
    return [group for group in _groups if group.valid()]


def group_of(anchor):
    for group in _groups:
        if group.anchor == anchor:
            return group
    return None


def all_locations():
    return [bp for group in groups() for bp in group.locations.values()]


def _delete_quietly(bp):
    """Delete a location breakpoint the plugin no longer needs."""
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


def forget_process():
    """The process exited: its location breakpoints go; the probe breakpoints stay."""
    _drop_locations(lambda bp: bp.pid != 0)


def forget_objfile(event):
    """A library was unloaded (dlclose): its locations go, and come back if it loads again."""
    path = event.objfile.filename
    if path:
        real = os.path.realpath(path)
        _drop_locations(lambda bp: os.path.realpath(bp.site.path) == real)


def _line_of(address):
    """`, file demo.c, line 33` for messages, when GDB knows the line."""
    try:
        sal = gdb.find_pc_line(address)
    except gdb.error:
        return ""
    if sal.symtab is None or not sal.line:
        return ""
    return f", file {sal.symtab.filename}, line {sal.line}"


def resolve(only=None, announce=True):
    """Give each probe breakpoint (or only ONLY) a location breakpoint at each of its
    locations in the current process."""
    pid = catalog.current_pid()
    _drop_locations(lambda bp: bp.pid != pid)
    wanted = [group for group in groups() if only is None or group is only]
    if pid == 0 or not wanted:
        return
    try:
        sites = catalog.live_sites() or []
    except gdb.GdbError as e:
        print(f"stap-sdt: cannot list the probes of process {pid}: {e}")
        return
    for group in wanted:
        group.resolved_pid = pid
        for site in sites:
            if not group.spec.matches(site) or site.address in group.locations:
                continue
            group.locations[site.address] = LocationBreakpoint(group, site, pid)
            if announce:
                print(f"stap-sdt: breakpoint {group.number} at {site.address:#x}: "
                      f"{site.where()}{_line_of(site.address)}")
    semaphores.reconcile(all_locations())


def where_text(group):
    """Where a new probe breakpoint will stop, for the message that adopts it."""
    if catalog.current_pid() == 0:
        known = [s for s in catalog.static_sites() if group.spec.matches(s)]
        if not known:
            return "no loaded file has it yet; set when a library that has it loads"
        return (f"{len(known)} location(s) in the loaded files, set when the program runs "
                "(and in libraries as they load)")
    count = len(group.locations)
    if count == 0:
        return (f"no object of process {catalog.current_pid()} has it yet; "
                "set when a library that has it loads")
    return f"{count} location(s) in process {catalog.current_pid()}"


def add(anchor, spec, condition=None, thread=None, native=False):
    """Make ANCHOR (a GDB breakpoint) a probe breakpoint on SPEC; return the group."""
    tool.program()  # no probe breakpoint without a way to list probes
    group = Group(anchor, spec, condition, thread, native)
    _groups.append(group)
    if native:
        keep_native_locations_disabled(group)
    if catalog.current_pid():
        resolve(only=group, announce=False)
    return group


def keep_native_locations_disabled(group):
    """GDB's own -probe-stap locations would stop without $_probe_* set first."""
    anchor = group.anchor
    if not group.native or not anchor.is_valid():
        return
    for location in getattr(anchor, "locations", []):
        if location.enabled:
            location.enabled = False


def delete_group(group):
    """Delete a probe breakpoint: its anchor, and (soon) its location breakpoints."""
    _retire(group)
    if group.anchor.is_valid():
        group.anchor.delete()


def _retire(group):
    """GROUP stops here: its locations no longer stop and are deleted at the next
    prompt, stop or library load, not now (this may run while GDB walks its
    breakpoint list to delete them, where deleting another would break the walk)."""
    group.deleted = True
    if group in _groups:
        _groups.remove(group)
    _doomed.extend(group.locations.values())
    group.locations.clear()
    semaphores.reconcile(all_locations())


def on_breakpoint_deleted(bp):
    if isinstance(bp, LocationBreakpoint):
        if not bp.quiet_delete:
            # Only `maint` commands reach internal breakpoints; forget it.
            bp.group.locations.pop(bp.site.address, None)
            semaphores.reconcile(all_locations())
        return
    group = group_of(bp)
    if group is not None:
        _retire(group)


def on_breakpoint_modified(bp):
    """The user changed an anchor (enable, commands, ...): its locations follow."""
    if isinstance(bp, LocationBreakpoint):
        semaphores.reconcile(all_locations())
        return
    group = group_of(bp)
    if group is None or not group.valid():
        return
    group.user_enabled = bp.enabled
    if bp.condition != group.native_seen:
        # `condition N [COND]`: the plugin tests it, after setting $_probe_*.
        group.native_seen = group.condition = bp.condition
        if bp.condition and bp.pending and not group.warned:
            group.warned = True
            print(f"stap-sdt: breakpoint {group.number}: GDB 13 will say \"Error in re-setting "
                  f"breakpoint {group.number}\" at library loads now that it has a condition "
                  f"from `condition`; the plugin keeps it working. `sdt-condition "
                  f"{group.number} COND` sets a condition without that.")
    keep_native_locations_disabled(group)
    for location in group.locations.values():
        follow_anchor(location)
    semaphores.reconcile(all_locations())


def reenable_anchors():
    """Enable again the anchors that GDB disabled because it could not re-set them."""
    for group in groups():
        if group.user_enabled and not group.anchor.enabled:
            group.anchor.enabled = True


def _stop_line(group):
    """GDB's own first lines of a breakpoint stop, with the anchor's number."""
    kind = "Temporary breakpoint" if group.temporary else "Breakpoint"
    prefix = ""
    threads = [t for inferior in gdb.inferiors() for t in inferior.threads()]
    if threads and max(t.global_num for t in threads) > 1:
        # GDB names the thread once the program has had more than one.
        current = gdb.selected_thread()
        number = str(current.num)
        if len(gdb.inferiors()) > 1:
            number = f"{current.inferior.num}.{number}"
        name = f' "{current.name}"' if current.name else ""
        prefix = f"Thread {number}{name} hit "
    frame = gdb.execute("frame", to_string=True)
    if frame.startswith("#0"):
        frame = frame[2:].lstrip()
    return f"\n{prefix}{kind} {group.number}, {frame}"


def _silent(group):
    anchor = group.anchor
    if anchor.silent:
        return True
    first = (anchor.commands or "").lstrip().split("\n", 1)[0].strip()
    return first == "silent"


def report_stop(event):
    """At a stop: print the anchor's stop line, and end a temporary probe breakpoint."""
    stopped = list(_stopped)
    _stopped.clear()
    if not stopped or not isinstance(event, gdb.BreakpointEvent):
        return
    if not any(isinstance(bp, LocationBreakpoint) for bp in event.breakpoints):
        return
    first = stopped[0]
    if first.valid() and not _silent(first):
        try:
            gdb.write(_stop_line(first))
        except gdb.error as e:
            gdb.write(f"\nBreakpoint {first.number}, (cannot show the frame: {e})\n")
    for group in stopped:
        if group.valid() and group.temporary:
            delete_group(group)


def on_gdb_exiting(_event):
    """GDB is exiting: nothing may touch breakpoints any more."""
    _exiting[0] = True
    _doomed.clear()


def delete_doomed():
    """Delete the location breakpoints of probe breakpoints that are gone."""
    while _doomed and not _exiting[0]:
        _delete_quietly(_doomed.pop())
