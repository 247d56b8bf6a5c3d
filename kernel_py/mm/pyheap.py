# The kernel's own Python heap (no Linux counterpart: Linux's own memory is
# slab and vmalloc, which /proc/meminfo already shows). The guest sizes the
# MicroPython VM's heap from RAM at boot (guest/boot_info.c place_heap: an
# eighth of RAM, 24..256 MiB) and reserves it in memblock; hw.heap_info()
# says its size and how much of it the allocator holds (docs/hw.md). Asking
# reads the heap's whole allocation table (O(heap): measured on TCG, ~1.2 ms
# for a 30 MiB heap, ~11 ms for 254 MiB), so the figure is sampled:
# at most every SAMPLE_MS from the background work (kernel.background,
# which the idle loop and each console command run) and on each read of
# /proc/meminfo. The peak is the largest sample, a lower bound of the true
# peak between samples.

SAMPLE_MS = 1000


class PyHeap:
    """k.pyheap: the VM heap's size, its use when last sampled, the peak."""

    def __init__(self, hw, clock):
        self.hw = hw
        self.clock = clock
        self.total = 0
        self.used = 0
        self.peak = 0
        self.samples = 0
        self.next_sample = 0            # TSC of the next periodic sample
        self.sample()

    def sample(self):
        total, used = self.hw.heap_info()
        self.total = total
        self.used = used
        if used > self.peak:
            self.peak = used
        self.samples += 1
        return used

    def tick(self):
        """The periodic sample, from the background work."""
        now = self.clock.rdtsc()
        if now >= self.next_sample:
            self.next_sample = now + self.clock.hz * SAMPLE_MS // 1000
            self.sample()

    def meminfo_pairs(self):
        """/proc/meminfo's lines of their own, in kB (Linux's tools skip
        names they do not know)."""
        self.sample()
        return [("PyHeapTotal", self.total >> 10), ("PyHeapUsed", self.used >> 10),
                ("PyHeapPeak", self.peak >> 10)]
