"""Adopt GDB's own breakpoints on probes: `break probe:...` and `break -probe-stap ...`.

GDB 13 reads `break probe:demo:tick` as FILE:LINE ("No source file named
probe."); with `breakpoint pending` on (the plugin turns it on) it makes a
pending breakpoint that will never resolve. The plugin adopts it as soon as
GDB has made it (the `breakpoint_created` event), keeping the breakpoint
itself, so its number, `tbreak`-ness, enable state and later `condition`,
`commands` and `ignore` are the user's as usual. What the user wrote after the
probe (`thread N`, `if COND`) is in GDB's pending text; the condition becomes
the breakpoint's own condition.

`break -probe-stap P:N if COND` is GDB's own spelling. GDB 13 keeps the
probe but throws away everything after it, condition included, and keeps
nothing of it in the breakpoint. The plugin adopts these too and looks for
the text of the command that made the breakpoint where it can be found: the
`-ex` arguments of this GDB (commands run before the first prompt) or, at a
prompt, the last line of the command history. When the text is not there (a
script, a user-defined command) it says that a condition would have been
dropped.

`break` itself is not touched, so every other form behaves exactly as before.
"""

import re

import gdb

from . import breakpoints

# GDB's probe location keywords that may name a SystemTap probe.
_PROBE_KEYWORDS = ("-probe-stap", "-pstap", "-probe", "-p")
# GDB commands that take a location and make a breakpoint, and their shortest
# unambiguous spellings (`b` and `br` are aliases of `break`).
_BREAK_COMMANDS = (("break", 1), ("tbreak", 2), ("hbreak", 2), ("thbreak", 3))

quiet = [False]  # sdt-break is making the breakpoint and says so itself
_prompted = [False]  # a prompt was shown: commands now come from the terminal
_cmdline = []  # this GDB's `-ex`/`-iex` commands not yet matched to a breakpoint
_cmdline_read = [False]


def _probe_keyword(location):
    """The probe keyword LOCATION starts with (`-probe-stap demo:tick`), or None."""
    first = location.split(None, 1)[0] if location.strip() else ""
    return first if first in _PROBE_KEYWORDS else None


def on_before_prompt():
    _prompted[0] = True


def on_breakpoint_created(bp):
    """Adopt a breakpoint whose location is a probe, at once."""
    if isinstance(bp, breakpoints.LocationBreakpoint) or bp.type != gdb.BP_BREAKPOINT:
        return
    location = bp.location or ""
    try:
        if location.startswith("probe:") and bp.pending:
            _adopt_pending(bp, location)
        elif _probe_keyword(location):
            _adopt_gdb_probe(bp, location)
    except gdb.GdbError as e:
        print(f"stap-sdt: breakpoint {bp.number} is left to GDB: {e}")


def _text_after_location(bp, location):
    """What followed LOCATION in the command (`thread 1 if X`), as GDB shows a pending
    breakpoint: GDB 13 has it in `info breakpoints` only."""
    listing = gdb.execute(f"info breakpoints {bp.number}", to_string=True)
    for line in listing.splitlines():
        words = line.split()
        if words and words[0] == str(bp.number) and location in line:
            return line[line.index(location) + len(location):].strip()
    return ""


def parse_tail(text):
    """`[thread ID] [-force-condition] [if COND]` -> (thread or None, condition or None)."""
    thread = condition = None
    rest = text.strip()
    while rest:
        word, _, after = rest.partition(" ")
        after = after.strip()
        if word == "if" or word.startswith("if\t"):
            condition = rest[2:].strip()
            if not condition:
                raise gdb.GdbError("Argument required (condition after `if`).")
            break
        if word == "-force-condition":
            rest = after  # the plugin never checks a condition before it is used
        elif word == "thread" and after:
            thread, _, rest = after.partition(" ")
            if not re.fullmatch(r"(\d+\.)?\d+", thread):
                raise gdb.GdbError(f"Invalid thread ID: {thread}")
            rest = rest.strip()
        elif word == "task":
            raise gdb.GdbError("`task` is not supported on probe breakpoints")
        else:
            raise gdb.GdbError(f"Junk after the probe: {rest!r} (expected `thread ID` or `if COND`)")
    return thread, condition


def _announce(group, extra=""):
    kind = "temporary breakpoint" if group.temporary else "breakpoint"
    print(f"stap-sdt: {kind} {group.number} is probe {group.describe()[len('probe:'):]}: "
          f"{breakpoints.where_text(group)}.{extra}")


def _adopt_pending(bp, location):
    spec = breakpoints.ProbeSpec(location)
    thread, condition = parse_tail(_text_after_location(bp, location))
    group = breakpoints.add(bp, spec, condition, thread)
    if not quiet[0]:
        _announce(group)


def _adopt_gdb_probe(bp, location):
    keyword, _, probe = location.partition(" ")
    spec = breakpoints.ProbeSpec.from_gdb_probe(probe.strip())
    tail = _typed_tail(keyword, probe.strip())
    thread = condition = None
    if tail:
        thread, condition = parse_tail(tail)
    group = breakpoints.add(bp, spec, condition, thread, native=True)
    if tail:
        note = f" GDB 13 drops `{tail}` after `{location}`; the plugin put it back."
    elif tail is None:
        note = (f" GDB 13 drops anything after `{location}` (`if COND`, `thread N`) and the "
                "plugin cannot see this command's text here, so a condition written there "
                f"is lost: set one with `condition {bp.number} COND`.")
    else:
        note = ""
    _announce(group, note)


def _command_lines():
    """This GDB's `-ex`/`-iex` commands, in order (read once from /proc/self/cmdline)."""
    if not _cmdline_read[0]:
        _cmdline_read[0] = True
        try:
            with open("/proc/self/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            argv = []
        options = ("-ex", "--ex", "-eval-command", "--eval-command",
                   "-iex", "--iex", "-init-eval-command", "--init-eval-command")
        for i, arg in enumerate(argv):
            if arg in options and i + 1 < len(argv):
                _cmdline.append(argv[i + 1])
            elif "=" in arg and arg.split("=", 1)[0] in options:
                _cmdline.append(arg.split("=", 1)[1])
    return _cmdline


def _last_history_line():
    try:
        history = gdb.execute("show commands", to_string=True)
    except gdb.error:
        return None
    lines = history.strip().splitlines()
    if not lines:
        return None
    return lines[-1].strip().split(None, 1)[-1] if lines[-1].strip() else None


def _tail_of(command, keyword, probe):
    """The text after `KEYWORD PROBE` when COMMAND is a break command on that probe."""
    match = re.match(r"\s*(\S+)\s+(\S+)\s+(\S+)(.*)$", command, re.S)
    if not match:
        return None
    name, typed_keyword, typed_probe, tail = match.groups()
    if not any(full.startswith(name) and len(name) >= shortest
               for full, shortest in _BREAK_COMMANDS):
        return None
    if typed_keyword != keyword or typed_probe != probe:
        return None
    return tail.strip()


def _typed_tail(keyword, probe):
    """What the user wrote after `KEYWORD PROBE`, or None when the command's text is
    not to be found."""
    if _prompted[0]:
        line = _last_history_line()
        return None if line is None else _tail_of(line, keyword, probe)
    lines = _command_lines()
    for i, command in enumerate(lines):
        tail = _tail_of(command, keyword, probe)
        if tail is not None:
            del lines[: i + 1]  # each command makes one breakpoint
            return tail
    return None
