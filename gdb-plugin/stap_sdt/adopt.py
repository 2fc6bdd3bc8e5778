"""Adopt GDB's own pending `break probe:PROVIDER:NAME` breakpoints.

GDB's `break probe:P:N` fails ("No source file named probe."), but when the
user lets it make a pending breakpoint (answering `y`, or with
`set breakpoint pending on`), the plugin replaces that pending breakpoint by a
probe breakpoint with the same condition. `break` itself is not touched, so
every other form behaves exactly as before.
"""

import gdb

from . import breakpoints

_adoptable = []


def on_breakpoint_created(bp):
    """Note a pending GDB breakpoint on a `probe:` location, to adopt it."""
    location = bp.location if bp.type == gdb.BP_BREAKPOINT else None
    if bp.pending and location and location.startswith("probe:"):
        # Adopted at the next prompt, objfile load or stop: not from a posted
        # event, which may run while GDB is tearing down (GDB 13 then crashes).
        _adoptable.append(bp)


def _text_after_location(bp):
    """`if COND` (or whatever followed the location) as `info breakpoints N` shows it."""
    listing = gdb.execute(f"info breakpoints {bp.number}", to_string=True)
    for line in listing.splitlines():
        words = line.split()
        if words and words[0] == str(bp.number) and bp.location in line:
            return line[line.index(bp.location) + len(bp.location):].strip()
    return ""


def on_gdb_exiting(_event):
    _adoptable.clear()


def adopt_pending():
    """Replace adopted pending `break probe:...` breakpoints by probe breakpoints."""
    while _adoptable:
        bp = _adoptable.pop(0)
        if not bp.is_valid():
            continue
        command = f"{bp.location} {_text_after_location(bp)}".strip()
        try:
            breakpoints.parse_command(command)
        except gdb.GdbError as e:
            print(f"stap-sdt: breakpoint {bp.number} stays pending: {e}")
            continue
        number, temporary = bp.number, bp.temporary
        bp.delete()
        print(f"stap-sdt: breakpoint {number} ({command}) is a static probe; "
              f"replaced by a probe breakpoint.")
        try:
            breakpoints.create(command, temporary)
        except gdb.GdbError as e:
            print(f"stap-sdt: {e}")


