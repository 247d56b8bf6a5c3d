# The console's handles: the addresses its commands handed out (kmalloc,
# kmem_cache_alloc, vmalloc) and have not taken back (kfree,
# kmem_cache_free, vfree) or let go of (kforget). The console is how a
# person or the harness uses the kernel: an object it handed out is held on
# their behalf, the way a file descriptor holds a kernel object for a user
# process. The table (k.console_handles: address -> (size, kind)) is kernel
# data referring to those objects, so it is one of kmemleak's roots;
# dropping a handle with kforget makes a real leak.

from kernel_py.lib.errors import KernelError
from kernel_py.mm.debug import kmemleak
from kernel_py.mm.slab.kmalloc import ZERO_SIZE_PTR


def hold(k, va, size, kind):
    if va is not None and va > ZERO_SIZE_PTR:
        k.console_handles[va] = (size, kind)
    return va


def drop(k, va):
    k.console_handles.pop(va, None)


def get(k, va):
    """(size, kind) of a handle the console holds."""
    h = k.console_handles.get(va)
    if h is None:
        raise KernelError("ENOENT", "0x%x is not an address the console holds" % va)
    return h


kmemleak.register_root("console handles", lambda k: list(k.console_handles))
