# MicroPython's code emitters for this kernel's hot paths, and their
# stand-ins on CPython: the one place that knows which of the two runs.
#
# In the guest the kernel is frozen with `mpy-cross -march=x64`, so
# MicroPython's native and viper emitters produce x86-64 code. What makes a
# function native or viper is decided by the compiler, from the text of the
# file being compiled, not from anything imported at run time:
#
#   @micropython.native / @micropython.viper   compiled as such only when
#       written exactly so (the name `micropython`, then the attribute);
#       `micropython` may come from this module (it is MicroPython's own
#       module in the guest)
#   X = const(value)                            folded by the parser in the
#       file that writes it (an _X is not even a global at run time); a
#       const imported from another module is an ordinary global there
#   ptr8 / ptr32 / uint / int inside a viper function
#                                               casts the compiler knows by
#       name, whatever the module's globals hold
#
# On CPython (the host tests) `micropython` does not exist: the decorators
# return the function unchanged, const() is the identity, and VIPER is
# False, so callers keep their Python paths. ptr8/ptr32 stay None until a
# host test installs a stand-in in the using module (slub_fast.install_host,
# lru_fast.install_host) and uint is the identity, so viper code also runs
# on CPython over the simulated machine.
#
# MicroPython's `micropython` module has no `native` attribute: a bare
# `@native` (from micropython import native) is not native code in the
# guest. Write @micropython.native.

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE

try:
    import micropython
    from micropython import const
    VIPER = True
except ImportError:             # CPython: the emitters are MicroPython's
    VIPER = False

    def const(x):
        return x

    class micropython:
        @staticmethod
        def native(f):
            return f

        viper = native


def uint(x):                    # viper's reinterpreting cast (a name the compiler knows there)
    return x


ptr8 = ptr32 = None             # viper's pointer casts; host tests install stand-ins


# --- host: viper's pointer casts over the simulated machine -------------------
# A host test runs a module's viper functions on CPython by setting that
# module's ptr32 to host_ptr32 (its install_host()). Each function casts its
# state array first (registered with register_area): that names the machine
# whose physical memory the addresses cast next are read from.

MASK64 = (1 << 64) - 1
DMB_SIGNED = DIRECT_MAP_BASE - (1 << 64)    # DIRECT_MAP_BASE as a viper int holds it
HOST_AREAS = {}         # id(area) -> weak reference to hw (CPython only)
_host = [None]          # the hw of the area the running function cast last


def register_area(area, hw):
    """Remember which machine an array's addresses belong to (for
    host_ptr32; the guest has one machine and real pointers)."""
    if not VIPER:
        import weakref                          # CPython only (MicroPython has none)
        HOST_AREAS[id(area)] = weakref.ref(hw)     # machines are big: never keep one alive


class HostPtr32:
    """viper's ptr32 on CPython: 32-bit words at a direct-mapped address
    (a signed word, as viper holds it), read through the machine's hw."""

    def __init__(self, hw, pa):
        self.hw, self.pa = hw, pa

    def __getitem__(self, i):
        return self.hw.read32(self.pa + 4 * i)

    def __setitem__(self, i, v):
        self.hw.write32(self.pa + 4 * i, v & 0xFFFFFFFF)


class HostBuf32:
    """viper's ptr32 over a buffer (a registered array) on CPython."""

    def __init__(self, buf):
        self.m = memoryview(buf).cast("B").cast("I")

    def __getitem__(self, i):
        return self.m[i]

    def __setitem__(self, i, v):
        self.m[i] = v & 0xFFFFFFFF


def host_ptr32(x):
    """ptr32(x) on CPython: x an int (a direct-mapped address), or a
    registered array."""
    if isinstance(x, int):
        return HostPtr32(_host[0], x - DMB_SIGNED)
    _host[0] = HOST_AREAS[id(x)]()
    return HostBuf32(x)


def signed64(x):
    """x as a viper int holds it (a signed 64-bit word)."""
    x &= MASK64
    return x - (1 << 64) if x >> 63 else x
