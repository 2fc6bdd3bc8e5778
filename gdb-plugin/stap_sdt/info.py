"""`info sdt [REGEX]` and `info probe-args`."""

import re

import gdb

from . import catalog, convenience, names, operands, semaphores


def _semaphore_text(site, live):
    if site.semaphore is None:
        return ""
    if not live:
        return f"  semaphore {site.semaphore:#x}"
    order = "big" if site.endian == "big" else "little"
    try:
        data = bytes(gdb.selected_inferior().read_memory(site.semaphore, 2))
        value = str(int.from_bytes(data, order))
    except gdb.error as e:
        value = f"<unreadable: {e}>"
    ours = " (1 raised by a probe breakpoint)" if semaphores.raised(catalog.current_pid(), site.semaphore) else ""
    return f"  semaphore {site.semaphore:#x} = {value}{ours}"


class InfoSdt(gdb.Command):
    """List the static probes of the loaded objects.

Usage: info sdt [REGEX]
REGEX is searched in PROVIDER:NAME. With a running process the addresses are
run-time ones and each semaphore's current value in the process is shown;
without one, the probes of the files GDB has loaded at link-time addresses."""

    def __init__(self):
        super().__init__("info sdt", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        try:
            pattern = re.compile(arg.strip()) if arg.strip() else None
        except re.error as e:
            raise gdb.GdbError(f"Invalid regular expression {arg.strip()!r}: {e}") from e
        live = catalog.live_sites()
        sites = catalog.static_sites() if live is None else live
        shown = 0
        last_path = last_probe = None
        for site in sites:
            if pattern is not None and not pattern.search(site.probe):
                continue
            if site.path != last_path:
                bias = f" (load bias {site.bias:#x})" if site.live else ""
                print(f"{site.path}{bias}")
                last_path, last_probe = site.path, None
            if site.probe != last_probe:
                print(f"  {site.probe}")
                last_probe = site.probe
            print(f"    {site.address:#x}{_semaphore_text(site, live is not None)}")
            print(f"      args: {site.args_raw or '(none)'}")
            shown += 1
        if not shown:
            what = f" matching {arg.strip()!r}" if arg.strip() else ""
            print(f"No static probes{what} in the loaded objects.")


def _describe(arg):
    size = abs(arg.get("size") or 0)
    kind = "float" if arg.get("float") else ("signed" if arg.get("signed") else "unsigned")
    return f"{arg['raw']}: {kind} {size} bytes" if size else arg["raw"]


class InfoProbeArgs(gdb.Command):
    """Print the arguments of the probe at this stop, with names where known.

Usage: info probe-args"""

    def __init__(self):
        super().__init__("info probe-args", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        site = convenience.current_site()
        if site is None:
            raise gdb.GdbError("Not stopped at a static probe.")
        print(f"{site.where()} at {site.address:#x}, {len(site.args)} arguments:")
        labels = names.names_for(site.provider, site.name)
        for n, spec in enumerate(site.args):
            label, kind = labels[n] if n < len(labels) else ("", "")
            try:
                value = convenience.arg_value(n)
                shown = str(value)
                if value.type.code == gdb.TYPE_CODE_INT and abs(spec.get("size") or 8) > 2:
                    shown += f" ({int(value) & ((1 << (8 * value.type.sizeof)) - 1):#x})"
                if kind == "str":
                    text = convenience.read_c_string(int(value) & ((1 << 64) - 1))
                    shown += f' "{text.decode("utf-8", errors="backslashreplace")}"'
            except (gdb.error, operands.ArgError) as e:
                shown = f"<{e}>"
            name = f" {label}" if label else ""
            print(f"  $_probe_arg{n}{name} = {shown}  ({_describe(spec)})")


def register():
    InfoSdt()
    InfoProbeArgs()
