"""Find and run the `stap-sdt` program: the plugin's only source of probes.

Probes, locations and decoded argument specs all come from
`stap-sdt list --json -v` (schema `stap-sdt.list/1`); nothing here reads ELF
notes or argument strings itself.
"""

import json
import os
import shutil
import subprocess

import gdb

SCHEMA = "stap-sdt.list/1"

# Where a checkout keeps the binary, relative to gdb-plugin/stap_sdt/.
_SOURCE_TREE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class PathParameter(gdb.Parameter):
    """The `stap-sdt` program the plugin runs to list probes.

    Empty (the default) means: $STAP_SDT, else `stap-sdt` on PATH, else the
    build tree of the checkout this plugin belongs to (target/debug, target/release,
    $CARGO_TARGET_DIR)."""

    set_doc = "Set the path of the stap-sdt program used by the GDB plugin."
    show_doc = "Show the path of the stap-sdt program used by the GDB plugin."

    def __init__(self):
        super().__init__("stap-sdt-path", gdb.COMMAND_SUPPORT, gdb.PARAM_STRING_NOESCAPE)
        self.value = ""

    def get_set_string(self):
        return ""

    def get_show_string(self, svalue):
        if svalue:
            return f"The stap-sdt program is {svalue}."
        try:
            return f"The stap-sdt program is not set; using {program()}."
        except gdb.GdbError as e:
            return f"The stap-sdt program is not set. {e}"


_parameter = None


def register():
    global _parameter
    if _parameter is None:
        _parameter = PathParameter()


def _executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def program():
    """The stap-sdt binary to run, or a GdbError that says how to point at one."""
    configured = _parameter.value if _parameter is not None else ""
    if configured:
        if not _executable(configured):
            raise gdb.GdbError(
                f"stap-sdt-path is {configured!r}, which is not an executable file."
            )
        return configured
    from_env = os.environ.get("STAP_SDT")
    if from_env:
        if not _executable(from_env):
            raise gdb.GdbError(f"$STAP_SDT is {from_env!r}, which is not an executable file.")
        return from_env
    on_path = shutil.which("stap-sdt")
    if on_path:
        return on_path
    target_dirs = [os.path.join(_SOURCE_TREE, "target")]
    if os.environ.get("CARGO_TARGET_DIR"):
        target_dirs.insert(0, os.environ["CARGO_TARGET_DIR"])
    for target in target_dirs:
        for profile in ("debug", "release"):
            candidate = os.path.join(target, profile, "stap-sdt")
            if _executable(candidate):
                return candidate
    raise gdb.GdbError(
        "Cannot find the stap-sdt program, which the stap-sdt plugin needs to list probes. "
        "Point at it with `set stap-sdt-path PATH` or $STAP_SDT, or put it on PATH "
        "(build it with `cargo build` in the stap-sdt checkout)."
    )


def list_json(arguments):
    """Run `stap-sdt list --json -v ARGUMENTS...` and return the parsed document."""
    command = [program(), "list", "--json", "-v", *arguments]
    try:
        done = subprocess.run(command, capture_output=True, timeout=120)
    except OSError as e:
        raise gdb.GdbError(f"Cannot run {command[0]}: {e}") from e
    except subprocess.TimeoutExpired as e:
        raise gdb.GdbError(f"{' '.join(command)} did not finish in 120 s") from e
    try:
        document = json.loads(done.stdout)
    except ValueError as e:
        stderr = done.stderr.decode(errors="replace").strip()
        raise gdb.GdbError(
            f"{' '.join(command)} failed (status {done.returncode}): {stderr or e}"
        ) from e
    if document.get("schema") != SCHEMA:
        raise gdb.GdbError(
            f"{command[0]} printed schema {document.get('schema')!r}, this plugin reads {SCHEMA!r}"
        )
    return document


_static_cache = {}


def list_file(path):
    """The objects of one file at link-time addresses, cached while the file is unchanged."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    key = (path, st.st_mtime_ns, st.st_size, st.st_ino)
    if key not in _static_cache:
        _static_cache[key] = list_json([path]).get("objects", [])
    return _static_cache[key]


def list_process(pid):
    """The objects mapped by process PID, with run-time addresses and load biases."""
    return list_json(["-p", str(pid)]).get("objects", [])
