"""Evaluate decoded argument operands at a probe stop.

Each argument record (from `stap-sdt list --json -v`) says where the value is:
a register view (canonical register, width, bit shift), memory at
`base + index*scale + disp` or at a symbol's address, or a constant. Here those
become the argument's bytes, and then a gdb.Value typed by the spec's size,
sign and float flag. No argument string is parsed here.
"""

import gdb


class ArgError(Exception):
    """This argument cannot be fetched (unparsed spec, unreadable memory...)."""


def _mask(bits):
    return (1 << bits) - 1


def _register(frame, register):
    """The value of a register view: (canonical >> shift) & mask(bits), unsigned."""
    name = register["canonical"]
    try:
        value = frame.read_register(name)
    except (ValueError, gdb.error) as e:
        raise ArgError(f"register {name} cannot be read: {e}") from e
    if value.type.strip_typedefs().code == gdb.TYPE_CODE_UNION:
        # Vector registers (xmm): the low lanes hold the argument.
        lanes = value["v2_int64"]
        full = (int(lanes[0]) & _mask(64)) | ((int(lanes[1]) & _mask(64)) << 64)
        width = 128
    else:
        width = value.type.sizeof * 8
        full = int(value) & _mask(width)
    bits = register.get("bits") or width
    return (full >> register.get("shift", 0)) & _mask(bits), bits


def _sign_extend(value, bits):
    if value & (1 << (bits - 1)):
        return value - (1 << bits)
    return value


def address_of(memory, frame, site):
    """Where a memory operand points in the current process."""
    if memory.get("symbol"):
        if memory.get("symbol_address") is not None:
            # The reader resolved `symbol + disp` to a link-time address.
            address = memory["symbol_address"] + site.bias
            base = memory.get("base")
            # `sym(%reg)` adds the register; `sym(%rip)` and i386's
            # `sym@GOTOFF(%ebx)` (the register holds the GOT) do not.
            if base and base["canonical"] not in ("rip", "eip") and not memory.get("got_address"):
                address += _register(frame, base)[0]
            if memory.get("index"):
                address += _register(frame, memory["index"])[0] * memory.get("scale", 1)
            return address & _mask(site.bits)
        # Not in the object's symbol tables (stripped?): ask GDB's symbols.
        symbol = gdb.lookup_global_symbol(memory["symbol"]) or gdb.lookup_static_symbol(
            memory["symbol"]
        )
        if symbol is None:
            try:
                start = int(gdb.parse_and_eval(f"(long)&'{memory['symbol']}'"))
            except gdb.error as e:
                raise ArgError(f"symbol {memory['symbol']} is unknown: {e}") from e
        else:
            start = int(symbol.value().address)
        return start + memory.get("disp", 0)
    address = memory.get("disp", 0)
    if memory.get("base"):
        address += _register(frame, memory["base"])[0]
    if memory.get("index"):
        address += _register(frame, memory["index"])[0] * memory.get("scale", 1)
    return address & _mask(site.bits)


def _read(address, size):
    try:
        return bytes(gdb.selected_inferior().read_memory(address, size))
    except (gdb.MemoryError, gdb.error) as e:
        raise ArgError(f"cannot read {size} bytes at {address:#x}: {e}") from e


def _size(arg, site):
    """Bytes of the value; a spec without a size prefix is address-sized."""
    return abs(arg.get("size") or 0) or site.bits // 8


def arg_bytes(arg, frame, site):
    """The argument's value as SIZE bytes in the target's byte order."""
    size = _size(arg, site)
    operand = arg["operand"]
    kind = operand["kind"]
    order = "big" if site.endian == "big" else "little"
    if kind == "memory":
        return _read(address_of(operand, frame, site), size)
    if kind == "register":
        value, bits = _register(frame, operand["register"])
        if arg.get("signed") and bits < size * 8:
            value = _sign_extend(value, bits)
        if arg.get("float") and bits > size * 8:
            # A float in a vector register: the low SIZE bytes.
            value &= _mask(size * 8)
    elif kind == "immediate":
        value = operand["value"]
    else:
        raise ArgError(f"spec {arg.get('raw')!r} was not decoded: {operand.get('reason')}")
    return (value & _mask(size * 8)).to_bytes(size, order)


def _float_type(size):
    names = {4: ("float", "f32"), 8: ("double", "f64"), 16: ("long double",)}.get(size, ())
    for name in names:
        try:
            return gdb.lookup_type(name)
        except gdb.error:
            continue
    raise ArgError(f"no {size}-byte floating-point type in the current language")


def value_type(arg, frame, site):
    size = _size(arg, site)
    if arg.get("float"):
        return _float_type(size)
    return frame.architecture().integer_type(size * 8, bool(arg.get("signed")))


def fetch(arg, frame, site):
    """The argument as a typed gdb.Value, or ArgError saying why not."""
    data = arg_bytes(arg, frame, site)
    kind = value_type(arg, frame, site)
    if kind.sizeof != len(data):
        raise ArgError(f"no {len(data)}-byte type for {arg.get('raw')!r}")
    return gdb.Value(data, kind)
