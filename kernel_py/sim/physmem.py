"""Physical memory: one flat, zero-filled buffer from address 0 up.

The buffer is an anonymous private mmap rather than a bytearray: CPython's
bytearray(n) memsets its storage (every page touched), while an anonymous
mapping is zero-filled on demand, so a 4 GiB machine costs only the pages the
kernel writes. It supports the same buffer protocol (struct, memoryview).

The accessors are closures over the buffer (no attribute lookups on the hot
path); `make_accessors` returns them for the Machine to install. An address
outside the buffer calls `bad(pa, write)`, which must raise (`mem()` calls
`bad(pa, None)`): retrying cannot help, the memory will not appear. Like the
guest's hw module, an address outside the direct-map window (negative, or
at or above DIRECT_MAP_SIZE) is a ValueError, not a fault.
"""

import mmap
import struct
import sys

from kernel_py.arch.x86.layout import DIRECT_MAP_SIZE

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


def allocate(size):
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    # No commit charge: big machines are sparse (Linux MAP_NORESERVE, which
    # the mmap module only names from Python 3.13 on).
    flags |= getattr(mmap, "MAP_NORESERVE",
                     0x4000 if sys.platform.startswith("linux") else 0)
    return mmap.mmap(-1, size, flags=flags)


def make_accessors(buf, bad):
    size = len(buf)
    view = memoryview(buf)
    u16, u32, u64 = _U16.unpack_from, _U32.unpack_from, _U64.unpack_from
    p16, p32, p64 = _U16.pack_into, _U32.pack_into, _U64.pack_into
    Error = struct.error

    def window(pa, n):
        if pa < 0 or pa + n > DIRECT_MAP_SIZE:
            raise ValueError("physical address out of range")

    def oob(pa, write, n=1):
        """Report the first byte outside memory."""
        window(pa, n)
        bad(max(pa, size), write)

    def read8(pa):
        if 0 <= pa < size:
            return buf[pa]
        oob(pa, False)

    def read16(pa):
        try:
            if pa >= 0:
                return u16(buf, pa)[0]
        except Error:
            pass
        oob(pa, False, 2)

    def read32(pa):
        try:
            if pa >= 0:
                return u32(buf, pa)[0]
        except Error:
            pass
        oob(pa, False, 4)

    def read64(pa):
        try:
            if pa >= 0:
                return u64(buf, pa)[0]
        except Error:
            pass
        oob(pa, False, 8)

    def write8(pa, v):
        if 0 <= pa < size:
            buf[pa] = v & 0xFF
        else:
            oob(pa, True)

    def write16(pa, v):
        try:
            if pa >= 0:
                return p16(buf, pa, v & 0xFFFF)
        except Error:
            pass
        oob(pa, True, 2)

    def write32(pa, v):
        try:
            if pa >= 0:
                return p32(buf, pa, v & 0xFFFFFFFF)
        except Error:
            pass
        oob(pa, True, 4)

    def write64(pa, v):
        try:
            if pa >= 0:
                return p64(buf, pa, v & 0xFFFFFFFFFFFFFFFF)
        except Error:
            pass
        oob(pa, True, 8)

    def check(pa, n, write):
        """Raise unless [pa, pa+n) is inside memory."""
        if n < 0:
            raise ValueError("negative length")
        if pa < 0 or pa + n > size:
            oob(pa, write, n)

    def fill(pa, byte, n):
        # Like a memset through the direct map: bytes before the end of
        # memory are written, then the access faults (docs/hw.md).
        window(pa, n)
        if pa + n > size and pa < size:
            buf[pa:size] = bytes((byte & 0xFF,)) * (size - pa)
        check(pa, n, True)
        if n:
            buf[pa:pa + n] = bytes((byte & 0xFF,)) * n

    def copy(dst, src, n):
        check(src, n, False)
        check(dst, n, True)
        if n:
            buf.move(dst, src, n)

    def readbytes(pa, n):
        check(pa, n, False)
        return buf[pa:pa + n]

    def writebytes(pa, data):
        if type(data) is memoryview and (data.itemsize != 1 or data.ndim != 1):
            data = data.cast("B")
        n = len(data)
        window(pa, n)
        if pa + n > size and pa < size:
            buf[pa:size] = data[:size - pa]
        check(pa, n, True)
        buf[pa:pa + n] = data

    def mem(pa, n):
        window(pa, n)
        if n < 0 or pa + n > size:
            bad(max(pa, size), None)
        return view[pa:pa + n]

    return {
        "read8": read8, "read16": read16, "read32": read32, "read64": read64,
        "write8": write8, "write16": write16, "write32": write32,
        "write64": write64, "fill": fill, "copy": copy,
        "readbytes": readbytes, "writebytes": writebytes, "mem": mem,
    }
