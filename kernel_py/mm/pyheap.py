# The kernel's own Python heap (no Linux counterpart: Linux's own memory is
# slab and vmalloc, which /proc/meminfo already shows). The guest sizes the
# MicroPython VM's heap from RAM at boot (guest/boot_info.c place_heap: an
# eighth of RAM, 24..256 MiB) and reserves it in memblock. The platform
# measures it (docs/hw.md, heap_info): what is in use now, garbage
# included, and, at the end of every collection, what survived it: the
# kernel's live data, and the largest such figure since boot. The heap
# fails when live data outgrows it, so that peak is the figure to watch
# (the soak reports it); "in use now" only says how far the next
# collection is. Reading the figures walks the heap's allocation table
# (~1.2 ms per 30 MiB on TCG), so it happens when /proc/meminfo is read.


class PyHeap:
    """k.pyheap: /proc/meminfo's lines about the VM heap."""

    def __init__(self, hw):
        self.hw = hw

    def figures(self):
        """(size, in use now, live after the last collection, peak live,
        collections) in bytes; before the first collection everything held
        counts as live (an upper bound: nothing was freed yet)."""
        size, used, live, peak, collections = self.hw.heap_info()
        if not collections:
            live = used
        return size, used, live, max(peak, live), collections

    def meminfo_pairs(self):
        """/proc/meminfo's lines of their own, in kB (Linux's tools skip
        names they do not know)."""
        size, used, live, peak, _n = self.figures()
        return [("PyHeapTotal", size >> 10), ("PyHeapUsed", used >> 10),
                ("PyHeapLive", live >> 10), ("PyHeapPeak", peak >> 10)]
