"""`$_probe_argc`, `$_probe_argN`, `$_probe_arg(N)`, `$_probe_str(N)`, `$_probe_strn(N, M)`.

GDB's own `$_probe_argc`/`$_probe_arg0..11` are lazily computed internal
variables; assigning one from Python (gdb.set_convenience_variable) replaces
it for good, which GDB 13.1 allows. So the plugin sets them at every stop
from the probe site at the pc of the stopped frame (and before a probe
breakpoint's condition is tested), and makes them void elsewhere so no stale
value survives a stop away from a probe.
"""

import gdb

from . import operands


class _Current:
    site = None
    values = []  # per argument: gdb.Value, or the ArgError that says why not
    published = 0  # how many $_probe_argN variables were last set


_current = _Current()


def publish(site, frame):
    """Fetch every argument of SITE in FRAME and set the convenience variables."""
    values = []
    for arg in site.args:
        try:
            values.append(operands.fetch(arg, frame, site))
        except operands.ArgError as e:
            values.append(e)
    _current.site, _current.values = site, values
    gdb.set_convenience_variable("_probe_argc", len(values))
    for n, value in enumerate(values):
        gdb.set_convenience_variable(
            f"_probe_arg{n}", None if isinstance(value, operands.ArgError) else value
        )
    # Beyond argc (and over GDB's own $_probe_arg0..11) every variable is void.
    for n in range(len(values), max(_current.published, 12)):
        gdb.set_convenience_variable(f"_probe_arg{n}", None)
    _current.published = len(values)


def clear():
    """Not at a probe: every $_probe_* variable becomes void."""
    _current.site, _current.values = None, []
    gdb.set_convenience_variable("_probe_argc", None)
    for n in range(max(_current.published, 12)):
        gdb.set_convenience_variable(f"_probe_arg{n}", None)
    _current.published = 0


def current_site():
    return _current.site


def arg_value(n):
    """Argument N of the current probe stop, or a GdbError that says why not."""
    if _current.site is None:
        raise gdb.GdbError("Not stopped at a static probe (no probe site at this pc).")
    n = int(n)
    if not 0 <= n < len(_current.values):
        raise gdb.GdbError(
            f"Probe {_current.site.probe} has {len(_current.values)} arguments, not argument {n}."
        )
    value = _current.values[n]
    if isinstance(value, operands.ArgError):
        raise gdb.GdbError(f"Argument {n} ({_current.site.args[n]['raw']}): {value}")
    return value


def read_c_string(address, limit=1 << 20):
    """Bytes at ADDRESS up to the first NUL (at most LIMIT bytes)."""
    inferior = gdb.selected_inferior()
    data = bytearray()
    chunk = 256
    while len(data) < limit:
        try:
            block = bytes(inferior.read_memory(address + len(data), chunk))
        except gdb.MemoryError:
            if chunk == 1:
                if not data:
                    raise gdb.GdbError(f"Cannot read a string at {address:#x}.")
                break
            chunk = 1  # the string may end just before an unmapped page
            continue
        end = block.find(b"\0")
        if end >= 0:
            data += block[:end]
            break
        data += block
    return bytes(data[:limit])


def read_counted(address, length):
    if length < 0:
        raise gdb.GdbError(f"Negative string length {length}.")
    if length == 0:
        return b""
    try:
        return bytes(gdb.selected_inferior().read_memory(address, length))
    except gdb.MemoryError as e:
        raise gdb.GdbError(f"Cannot read {length} bytes at {address:#x}: {e}") from e


def _text(data):
    return data.decode("utf-8", errors="backslashreplace")


class ProbeArg(gdb.Function):
    """$_probe_arg(N): argument N of the probe at this stop (any N, not just 0..11)."""

    def __init__(self):
        super().__init__("_probe_arg")

    def invoke(self, n):
        return arg_value(n)


class ProbeStr(gdb.Function):
    """$_probe_str(N): the NUL-terminated string that probe argument N points to."""

    def __init__(self):
        super().__init__("_probe_str")

    def invoke(self, n):
        address = int(arg_value(n)) & ((1 << 64) - 1)
        return _text(read_c_string(address))


class ProbeStrn(gdb.Function):
    """$_probe_strn(N, M): the string at probe argument N whose length is argument M.

    For probes that pass a pointer and a length with no NUL (HotSpot's
    class/method names, Rust &str)."""

    def __init__(self):
        super().__init__("_probe_strn")

    def invoke(self, n, m):
        address = int(arg_value(n)) & ((1 << 64) - 1)
        return _text(read_counted(address, int(arg_value(m))))


def register():
    ProbeArg()
    ProbeStr()
    ProbeStrn()
