"""The commands of probe breakpoints: sdt-break, sdt-tbreak, sdt-delete,
sdt-condition, info sdt-breakpoints."""

import gdb

from . import breakpoints, catalog

class SdtBreak(gdb.Command):
    """Set a breakpoint at every location of a static probe (SystemTap SDT / USDT).

Usage: sdt-break [probe:][OBJFILE:]PROVIDER:NAME [if CONDITION]

PROVIDER and NAME may use shell globs. OBJFILE limits the search to objects
whose path, base name or base name without `.so...` matches it. Locations in
libraries that are not loaded yet are added when they load. CONDITION may use
$_probe_argc, $_probe_argN, $_probe_str(N) and $_probe_strn(N, M). While the
breakpoint exists and is enabled the probe's semaphore is raised, so
ENABLED() checks in the program are true."""

    def __init__(self, name="sdt-break", temporary=False):
        super().__init__(name, gdb.COMMAND_BREAKPOINTS)
        self.temporary = temporary

    def invoke(self, arg, from_tty):
        self.dont_repeat()
        breakpoints.create(arg, self.temporary)

    def complete(self, text, word):
        """Complete PROVIDER:NAME from the probes of the loaded objects."""
        if " " in text.strip():
            return gdb.COMPLETE_EXPRESSION  # the condition
        try:
            names = {site.probe for site in catalog.sites()}
        except gdb.GdbError:
            return []
        prefix = "probe:" if text.startswith("probe:") else ""
        typed = text[len(prefix):]
        # GDB replaces only WORD (the text after the last word break, e.g. `:`).
        cut = len(text) - len(word)
        return [(prefix + n)[cut:] for n in sorted(names) if n.startswith(typed)]


class SdtTbreak(SdtBreak):
    """Set a temporary breakpoint at every location of a static probe.

Usage: sdt-tbreak [probe:][OBJFILE:]PROVIDER:NAME [if CONDITION]

Like sdt-break, but the breakpoint is deleted (all its locations) at the first
stop."""

    def __init__(self):
        super().__init__("sdt-tbreak", temporary=True)


class SdtDelete(gdb.Command):
    """Delete probe breakpoints by their #number (all of them without one).

Usage: sdt-delete [NUMBER...]"""

    def __init__(self):
        super().__init__("sdt-delete", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        wanted = {int(n.lstrip("#")) for n in arg.split()} if arg.strip() else None
        for group in breakpoints.groups():
            if wanted is None or group.number in wanted:
                breakpoints.delete_group(group)


class SdtCondition(gdb.Command):
    """Set or clear the condition of a probe breakpoint.

Usage: sdt-condition NUMBER [CONDITION]
NUMBER is the probe breakpoint's #number or the number of one of its locations."""

    def __init__(self):
        super().__init__("sdt-condition", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        number, _, condition = arg.strip().partition(" ")
        if not number:
            raise gdb.GdbError("Usage: sdt-condition NUMBER [CONDITION]")
        group = find_group(number)
        group.condition = condition.strip() or None


def find_group(number):
    if number.startswith("#"):
        for group in breakpoints.groups():
            if str(group.number) == number[1:]:
                return group
    else:
        for group in breakpoints.groups():
            if any(str(bp.number) == number for bp in group.locations.values()):
                return group
    raise gdb.GdbError(f"No probe breakpoint {number}.")


class InfoSdtBreakpoints(gdb.Command):
    """List probe breakpoints: probe, condition, and their GDB breakpoint numbers."""

    def __init__(self):
        super().__init__("info sdt-breakpoints", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        if not breakpoints.groups():
            print("No probe breakpoints.")
        for group in breakpoints.groups():
            numbers = ", ".join(str(bp.number) for bp in group.locations.values())
            print(f"{group.describe()}: " + (f"breakpoints {numbers}" if numbers else "pending"))


def register():
    SdtBreak()
    SdtTbreak()
    SdtDelete()
    SdtCondition()
    InfoSdtBreakpoints()
