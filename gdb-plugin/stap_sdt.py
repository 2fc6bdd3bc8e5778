# stap-sdt GDB plugin: static probes (SystemTap SDT / USDT) in GDB.
#
# Load it with `source /path/to/gdb-plugin/stap_sdt.py` (or start GDB with
# `stap-sdt gdb ...`). It adds `sdt-break`/`sdt-tbreak`, `$_probe_argc`,
# `$_probe_argN`, `$_probe_str()`, `$_probe_strn()`, `info sdt` and
# `info probe-args`; see docs/gdb.md.
#
# This file only puts the `stap_sdt` package next to it on sys.path and
# registers it: the code lives in gdb-plugin/stap_sdt/.

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)

import stap_sdt  # noqa: E402  (the package directory, not this file)

stap_sdt.register()
