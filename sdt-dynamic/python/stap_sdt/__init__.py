"""Static probes (SystemTap SDT / USDT) defined at run time.

    import stap_sdt
    p = stap_sdt.Provider("app")
    req = p.probe("request", int, str)
    p.load()
    if req.enabled:
        req.fire(7, "GET /")

A loaded provider is an ELF shared object in a memfd (or in the directory
named by $STAP_SDT_DYNAMIC_DIR), written and dlopened by the sdt-dynamic
library, whose probes `stap-sdt list -p PID`, `stap-sdt trace -p PID`,
bpftrace -p and GDB see. `enabled` is the probe's semaphore, raised by the
kernel while a tracer is attached: test it before building costly arguments.

Argument types: int (64-bit signed), float (double), str (a NUL-terminated
UTF-8 string), bytes (a pointer+length string, two of the 12 slots), bool,
or one of int8 ... uint64, pointer, cstr (bytes sent NUL-terminated).
"""

import ctypes
import glob
import os
import struct

__all__ = [
    "Provider", "Probe", "Error",
    "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
    "pointer", "cstr", "double",
]


class Error(Exception):
    """A provider or probe could not be defined, loaded or fired."""


class ArgType:
    """One argument type: its C ABI number (SDT_ARG_*) and its name."""

    __slots__ = ("code", "name", "slots")

    def __init__(self, code, name, slots=1):
        self.code = code
        self.name = name
        self.slots = slots

    def __repr__(self):
        return f"stap_sdt.{self.name}"


int8 = ArgType(1, "int8")
uint8 = ArgType(2, "uint8")
int16 = ArgType(3, "int16")
uint16 = ArgType(4, "uint16")
int32 = ArgType(5, "int32")
uint32 = ArgType(6, "uint32")
int64 = ArgType(7, "int64")
uint64 = ArgType(8, "uint64")
pointer = ArgType(9, "pointer")
cstr = ArgType(10, "cstr")
_strlen = ArgType(11, "bytes", slots=2)
double = ArgType(12, "double")

_BUILTINS = {int: int64, float: double, str: cstr, bytes: _strlen, bool: uint8}
_MASK = (1 << 64) - 1
_MAX_SLOTS = 12


def _library_path():
    override = os.environ.get("STAP_SDT_DYNAMIC_LIB")
    if override:
        return override
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(glob.glob(os.path.join(here, "_sdt_dynamic*.so")))
    if not found:
        raise ImportError(f"stap_sdt: no _sdt_dynamic*.so in {here} (install with pip)")
    return found[0]


_lib = ctypes.CDLL(_library_path())
_lib.sdt_last_error.restype = ctypes.c_char_p
_lib.sdt_provider_new.restype = ctypes.c_void_p
_lib.sdt_provider_new.argtypes = [ctypes.c_char_p]
_lib.sdt_provider_add_probe.argtypes = [
    ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_size_t]
_lib.sdt_provider_set_dir.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_lib.sdt_provider_load.argtypes = [ctypes.c_void_p]
_lib.sdt_provider_unload.argtypes = [ctypes.c_void_p]
_lib.sdt_provider_free.argtypes = [ctypes.c_void_p]
_lib.sdt_provider_free.restype = None
_lib.sdt_provider_probe.restype = ctypes.c_void_p
_lib.sdt_provider_probe.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_lib.sdt_probe_semaphore.restype = ctypes.c_void_p
_lib.sdt_probe_semaphore.argtypes = [ctypes.c_void_p]
_lib.sdt_probe_fire_function.restype = ctypes.c_void_p
_lib.sdt_probe_fire_function.argtypes = [ctypes.c_void_p]

_FIRE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
# What `enabled` reads before loading and after unloading: a zero.
_NOT_LOADED = memoryview(bytearray(2)).cast("H")


def _error():
    return Error(_lib.sdt_last_error().decode("utf-8", "replace"))


def _converter(kind):
    """The function putting one Python value into the block at slot i; it
    returns what must stay alive until the probe has fired."""
    if kind is cstr:
        def put(block, i, value):
            data = value.encode() if isinstance(value, str) else bytes(value)
            buf = ctypes.create_string_buffer(data)
            block[i] = ctypes.addressof(buf)
            return buf
    elif kind is _strlen:
        def put(block, i, value):
            data = value.encode() if isinstance(value, str) else bytes(value)
            buf = ctypes.create_string_buffer(data, len(data) or 1)
            block[i] = ctypes.addressof(buf)
            block[i + 1] = len(data)
            return buf
    elif kind is double:
        pack = struct.Struct("<d").pack
        unpack = struct.Struct("<Q").unpack

        def put(block, i, value):
            block[i] = unpack(pack(float(value)))[0]
    else:
        def put(block, i, value):
            block[i] = int(value) & _MASK
    return put


class Probe:
    """One probe of a Provider. `enabled` is true while a tracer is attached."""

    __slots__ = ("name", "types", "_provider", "_index", "_sem", "_fire", "_puts")

    def __init__(self, provider, index, name, types):
        self.name = name
        self.types = types
        self._provider = provider
        self._index = index
        self._sem = _NOT_LOADED
        self._fire = None
        slot = 0
        self._puts = []
        for kind in types:
            self._puts.append((slot, _converter(kind)))
            slot += kind.slots

    @property
    def enabled(self):
        # The semaphore itself (a memoryview over it): no call into C.
        return self._sem[0] != 0

    def _bind(self, handle):
        address = _lib.sdt_probe_semaphore(handle)
        # ctypes gives format "<H", which memoryview cannot index; through
        # bytes it becomes the native "H".
        self._sem = memoryview((ctypes.c_uint16 * 1).from_address(address)).cast("B").cast("H")
        self._fire = _FIRE(_lib.sdt_probe_fire_function(handle))

    def _unbind(self):
        self._sem = _NOT_LOADED
        self._fire = None

    def fire(self, *args):
        """Fire the probe with one value per argument (a no-op if not loaded)."""
        if len(args) != len(self._puts):
            raise Error(f"{self._provider.name}:{self.name}: fired with {len(args)} "
                        f"arguments, defined with {len(self._puts)}")
        fire = self._fire
        if fire is None:
            return
        block = (ctypes.c_uint64 * _MAX_SLOTS)()
        alive = [put(block, slot, value) for (slot, put), value in zip(self._puts, args)]
        fire(ctypes.addressof(block))
        del alive

    def __repr__(self):
        return f"<stap_sdt.Probe {self._provider.name}:{self.name}>"


class Provider:
    """A provider of probes: define them with probe(), then load()."""

    def __init__(self, name, directory=None):
        self.name = name
        self._handle = _lib.sdt_provider_new(name.encode())
        if not self._handle:
            raise _error()
        if directory is not None:
            if _lib.sdt_provider_set_dir(self._handle, os.fsencode(directory)) < 0:
                raise _error()
        self._probes = []
        self.loaded = False

    def probe(self, name, *types):
        """Define a probe; types are Python types (int, str, float, bytes,
        bool) or stap_sdt.int8 ... stap_sdt.double."""
        kinds = []
        for i, t in enumerate(types):
            kind = _BUILTINS.get(t, t)
            if not isinstance(kind, ArgType):
                raise Error(f"{self.name}:{name}: argument {i}: no probe type for {t!r}")
            kinds.append(kind)
        codes = (ctypes.c_int * max(len(kinds), 1))(*[k.code for k in kinds])
        index = _lib.sdt_provider_add_probe(self._handle, name.encode(), codes, len(kinds))
        if index < 0:
            raise _error()
        probe = Probe(self, index, name, tuple(kinds))
        self._probes.append(probe)
        return probe

    def load(self):
        """Write the provider's object and load it: tracers see its probes."""
        if _lib.sdt_provider_load(self._handle) < 0:
            raise _error()
        for probe in self._probes:
            probe._bind(_lib.sdt_provider_probe(self._handle, probe._index))
        self.loaded = True

    def unload(self):
        """Unload the object; the probes stay defined (enabled is False)."""
        for probe in self._probes:
            probe._unbind()
        if self._handle:
            _lib.sdt_provider_unload(self._handle)
        self.loaded = False

    def close(self):
        """Unload and free the provider."""
        if self._handle:
            self.unload()
            _lib.sdt_provider_free(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None):
            self.close()
