# The slab allocators behind one kmem_cache interface (Linux mm/slab.h,
# mm/slab_common.c's kmem_cache_init): the backends, chosen on the kernel
# command line (slab=slab|slub|slob, default slub) or per cache, and the
# boot of the slab layer. The interface they share is common.py's (which
# knows no backend: the table below is handed to its SlabState), kmalloc's
# size classes are kmalloc.py's.

from kernel_py.mm.slab.common import SlabState
from kernel_py.mm.slab.kmalloc import Kmalloc
from kernel_py.mm.slab.slab import SlabCache
from kernel_py.mm.slab.slob import SlobCache
from kernel_py.mm.slab.slub import SlubCache

# slab= name (common.BACKENDS) -> the KmemCache subclass of its caches
BACKEND_CLASSES = {"slab": SlabCache, "slub": SlubCache, "slob": SlobCache}


def kmem_cache_init(k):
    """Boot: the slab layer over the buddy, then the kmalloc caches.
    Returns (SlabState, Kmalloc); the kernel keeps them as k.slab, k.kmalloc."""
    st = SlabState(k.hw, k.mem_map, k.buddy, BACKEND_CLASSES, k.printk, k.params)
    km = Kmalloc(st)
    k.printk("slab: %s allocator, %d kmalloc caches%s" % (
        st.default_backend.upper(), len(st.all_caches()),
        ", slub_debug" if st.debug_flags else ""))
    return st, km
