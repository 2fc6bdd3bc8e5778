"""The commands of probe breakpoints: sdt-break, sdt-tbreak, sdt-delete,
sdt-condition, info sdt-breakpoints."""

import gdb

from . import adopt, breakpoints, catalog, tool


def make(arg, temporary):
    """`sdt-break SPEC [thread ID] [if COND]`: GDB's own `break probe:SPEC ...`, adopted.

    The breakpoint is GDB's (so it has GDB's next number, `$bpnum`, and
    `commands` with no argument applies to it); `breakpoint pending` is on for
    the moment it is made, whatever the user set, since it never resolves."""
    text = arg.strip()
    if not text:
        raise gdb.GdbError(
            "Usage: sdt-break [probe:][OBJFILE:]PROVIDER:NAME [thread ID] [if CONDITION]")
    spec_text, _, tail = text.partition(" ")
    # Clear errors before GDB's own "No source file named probe.".
    breakpoints.ProbeSpec(spec_text)
    adopt.parse_tail(tail)
    tool.program()
    location = spec_text if spec_text.startswith("probe:") else f"probe:{spec_text}"
    pending = gdb.parameter("breakpoint pending")
    before = {bp.number for bp in gdb.breakpoints()}
    adopt.quiet[0] = True
    try:
        gdb.execute("set breakpoint pending on", to_string=True)
        # GDB's "No source file named probe." and "... pending." are not news here.
        said = gdb.execute(f"{'tbreak' if temporary else 'break'} {location} {tail}".rstrip(),
                           to_string=True)
    finally:
        adopt.quiet[0] = False
        old = {True: "on", False: "off", None: "auto"}[pending]
        gdb.execute(f"set breakpoint pending {old}", to_string=True)
    # gdb.breakpoints() also lists the plugin's internal (negative) location breakpoints.
    made = [bp for bp in gdb.breakpoints() if bp.number > 0 and bp.number not in before]
    group = breakpoints.group_of(made[-1]) if made else None
    if group is None:
        for bp in made:
            bp.delete()
        lines = [line for line in said.splitlines() if line.startswith("stap-sdt:")]
        raise gdb.GdbError("\n".join(lines) or f"GDB made no breakpoint for {location}.")
    kind = "Temporary breakpoint" if group.temporary else "Breakpoint"
    print(f"{kind} {group.number} ({group.describe()}): {breakpoints.where_text(group)}.")


class SdtBreak(gdb.Command):
    """Set a breakpoint at every location of a static probe (SystemTap SDT / USDT).

Usage: sdt-break [probe:][OBJFILE:]PROVIDER:NAME [thread ID] [if CONDITION]

PROVIDER and NAME may use shell globs. OBJFILE limits the search to objects
whose path, base name or base name without `.so...` matches it. Locations in
libraries that are not loaded yet are added when they load. CONDITION may use
$_probe_argc, $_probe_argN, $_probe_str(N) and $_probe_strn(N, M). While the
breakpoint exists and is enabled the probe's semaphore is raised, so
ENABLED() checks in the program are true.

It is GDB's `break probe:...` made pending and adopted by the plugin: a
numbered breakpoint for `condition`, `commands`, `ignore`, `disable` and
`delete`, stopping at every location of the probe."""

    def __init__(self, name="sdt-break", temporary=False):
        super().__init__(name, gdb.COMMAND_BREAKPOINTS)
        self.temporary = temporary

    def invoke(self, arg, from_tty):
        self.dont_repeat()
        make(arg, self.temporary)

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

Usage: sdt-tbreak [probe:][OBJFILE:]PROVIDER:NAME [thread ID] [if CONDITION]

Like sdt-break, but the breakpoint is deleted (all its locations) at the first
stop."""

    def __init__(self):
        super().__init__("sdt-tbreak", temporary=True)


class SdtDelete(gdb.Command):
    """Delete probe breakpoints (all of them without a number); the same as `delete N`.

Usage: sdt-delete [NUMBER...]"""

    def __init__(self):
        super().__init__("sdt-delete", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        wanted = {find_group(n).number for n in arg.split()} if arg.strip() else None
        for group in breakpoints.groups():
            if wanted is None or group.number in wanted:
                breakpoints.delete_group(group)


class SdtCondition(gdb.Command):
    """Set or clear the condition of a probe breakpoint.

`condition N` works too, but on a breakpoint that is pending in GDB's eyes
(every `break probe:...`) GDB 13 then reports an error at each library load.

Usage: sdt-condition NUMBER [CONDITION]"""

    def __init__(self):
        super().__init__("sdt-condition", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        number, _, condition = arg.strip().partition(" ")
        if not number:
            raise gdb.GdbError("Usage: sdt-condition NUMBER [CONDITION]")
        find_group(number).condition = condition.strip() or None


def find_group(number):
    """The probe breakpoint numbered NUMBER (`#N`, the older spelling, too)."""
    for group in breakpoints.groups():
        if str(group.number) == number.lstrip("#"):
            return group
    raise gdb.GdbError(f"No probe breakpoint {number}.")


class InfoSdtBreakpoints(gdb.Command):
    """List probe breakpoints: number, probe, condition, hits and locations."""

    def __init__(self):
        super().__init__("info sdt-breakpoints", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        if not breakpoints.groups():
            print("No probe breakpoints.")
        for group in breakpoints.groups():
            kind = "Temporary breakpoint" if group.temporary else "Breakpoint"
            state = "" if group.anchor.enabled else ", disabled"
            hits = f", hit {group.hits} time{'s' if group.hits != 1 else ''}" if group.hits else ""
            where = "" if group.locations else ", pending"
            print(f"{kind} {group.number} {group.describe()}{state}{hits}{where}")
            for address, bp in sorted(group.locations.items()):
                print(f"  {address:#x} {bp.site.where()}")


def register():
    SdtBreak()
    SdtTbreak()
    SdtDelete()
    SdtCondition()
    InfoSdtBreakpoints()
