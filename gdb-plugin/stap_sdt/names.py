"""Argument names of well-known probes, for `info probe-args`.

Data only: (provider, probe) -> one (name, kind) per argument, where kind
"str" means the argument points to a NUL-terminated string.
"""

_PYTHON_FUNCTION = (("file", "str"), ("function", "str"), ("line", "int"))

ARGUMENT_NAMES = {
    ("python", "function__entry"): _PYTHON_FUNCTION,
    ("python", "function__return"): _PYTHON_FUNCTION,
}


def names_for(provider, name):
    return ARGUMENT_NAMES.get((provider, name), ())
