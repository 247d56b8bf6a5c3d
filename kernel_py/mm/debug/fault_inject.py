# Fault injection (Linux lib/fault-inject.c, mm/failslab.c,
# mm/fail_page_alloc.c; Documentation/fault-injection/fault-injection.rst):
# make the slab layer or the buddy fail an allocation on purpose, so that
# every caller's failure path runs.
#
# A FaultAttr holds Linux's knobs, under /sys/kernel/debug/<name>/:
#   probability  percent of the calls that pass the other tests to fail
#   interval     only every interval-th such call may fail
#   times        failures left (-1: no limit), decremented per failure
#   space        a budget: calls are spared until it is used up (size each)
#   verbose      0 silent, 1 a log line per failure, 2 also the site
# plus, per user, ignore-gfp-wait (spare callers that may reclaim), and for
# fail_page_alloc min-order and ignore-gfp-highmem. Defaults are Linux's
# (FAULT_ATTR_INITIALIZER: interval 1, times 1, verbose 2; both ignore-*
# on, min-order 1), so a test sets what it wants. The boot parameters
# failslab= and fail_page_alloc= take <interval>,<probability>,<space>,<times>.
#
# should_fail() checks the tests in Linux's order. Randomness is a seeded
# xorshift32 (there is no random module in the guest): runs repeat.
#
# fail_nth (Linux's /proc/<pid>/fail-nth, here /proc/self/fail-nth: the
# console is the only task that allocates): writing N makes the Nth call
# that reaches either attribute's should_fail (past its filters) fail,
# whatever the probability; reading gives the calls left, 0 once the
# failure was injected. Sweeping N = 1, 2, ... until an operation runs
# without reaching 0 fails each of its allocations in turn.
#
# The allocators call a hook only while the attribute is armed (probability
# > 0): buddy.should_fail / SlabState.should_failslab are None otherwise,
# and the SLUB viper fast paths see a word in the slab area (G_NOFAST_ALLOC)
# that sends every allocation to the Python path, where the check is.

from kernel_py.lib.errors import KernelError
from kernel_py.mm.gfp import F_DIRECT_RECLAIM, F_HIGHMEM, F_NOFAIL, F_NOWARN
from kernel_py.mm.slab import slub_fast

SEEDS = {"failslab": 0x2545F491, "fail_page_alloc": 0x9E3779B9}


class FaultAttr:
    def __init__(self, k, name):
        self.k = k
        self.name = name
        self.probability = 0
        self.interval = 1
        self.times = 1
        self.space = 0
        self.verbose = 2
        self.count = 0              # calls that reached the interval test
        self.ignore_gfp_wait = True
        self.ignore_gfp_highmem = True      # fail_page_alloc only
        self.min_order = 1                  # fail_page_alloc only
        self.injected = 0
        self.calls = 0
        self.state = SEEDS.get(name, 0x12345678)
        self.on_change = None       # fn(attr): arm or disarm the allocator's hook
        self.task = None            # holds fail_nth (FaultInjection), shared by the attributes

    def armed(self):
        return self.probability > 0

    def rand_below(self, n):
        """get_random_u32_below(n): xorshift32, then Lemire's multiply-shift."""
        x = self.state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.state = x
        return (x * n) >> 32

    def should_fail(self, size, nowarn=False, site=None):
        """Linux's should_fail_ex: True means fail this call."""
        self.calls += 1
        task = self.task
        if task is not None and task.fail_nth:
            task.fail_nth -= 1
            if task.fail_nth:
                return False
            task.nth_done()
            return self.inject(nowarn, site)
        if self.probability == 0 or self.times == 0:
            return False
        if self.space > size:
            self.space -= size
            return False
        if self.interval > 1:
            self.count += 1
            if self.count % self.interval:
                return False
        if self.probability <= self.rand_below(100):
            return False
        return self.inject(nowarn, site)

    def inject(self, nowarn, site):
        if not nowarn:
            self.fail_dump(site)
        if self.times != -1 and self.times != 0:     # atomic_dec_not_zero
            self.times -= 1
        self.injected += 1
        return True

    def fail_dump(self, site):
        if self.verbose <= 0:
            return
        printk = self.k.printk
        printk("FAULT_INJECTION: forcing a failure.")
        printk("name %s, interval %d, probability %d, space %d, times %d" % (
            self.name, self.interval, self.probability, self.space, self.times))
        if self.verbose > 1:
            procs = self.k.procs
            cur = procs.current if procs is not None else None
            printk("CPU: 0 PID: %d Comm: %s" % (cur.pid if cur is not None else 0,
                                                  self.k.comm))
            printk("Call Trace:\n %s" % (site or self.name))

    def changed(self):
        if self.on_change is not None:
            self.on_change(self)


def should_fail_alloc_page(attr, gfp, order):
    """mm/fail_page_alloc.c"""
    if order < attr.min_order or gfp & F_NOFAIL:
        return False
    if attr.ignore_gfp_highmem and gfp & F_HIGHMEM:
        return False
    if attr.ignore_gfp_wait and gfp & F_DIRECT_RECLAIM:
        return False
    return attr.should_fail(1 << order, gfp & F_NOWARN, "__alloc_pages order %d" % order)


def should_failslab(attr, s, gfp, size=0):
    """mm/failslab.c: s is the cache (None: SLOB's kmalloc, size given)."""
    if gfp & F_NOFAIL:
        return False
    if attr.ignore_gfp_wait and gfp & F_DIRECT_RECLAIM:
        return False
    name = s.name if s is not None else "kmalloc"
    return attr.should_fail(s.object_size if s is not None else size, gfp & F_NOWARN,
                            "slab_pre_alloc_hook %s" % name)


# --- the knobs: (file, attribute, kind); kinds as debugfs prints them ---------

COMMON_FILES = (("probability", "probability", "ulong"), ("interval", "interval", "ulong"),
                ("times", "times", "int"), ("space", "space", "int"),
                ("verbose", "verbose", "ulong"), ("ignore-gfp-wait", "ignore_gfp_wait", "bool"))
PAGE_FILES = COMMON_FILES + (("min-order", "min_order", "ulong"),
                             ("ignore-gfp-highmem", "ignore_gfp_highmem", "bool"))


def show(attr, field, kind):
    v = getattr(attr, field)
    if kind == "bool":
        return "Y" if v else "N"
    return "%d" % v


def parse(field, kind, text):
    """A knob's value from what was written (KernelError EINVAL if bad)."""
    word = text.strip()
    if kind == "bool":
        if word[:1] in ("Y", "y", "1") or word.lower() == "on":
            return True
        if word[:1] in ("N", "n", "0") or word.lower() == "off":
            return False
        raise KernelError("EINVAL", "%s: %r is not a boolean" % (field, word))
    try:
        v = int(word, 0)
    except ValueError:
        raise KernelError("EINVAL", "%s: %r is not a number" % (field, word))
    lo, hi = (-(1 << 31), (1 << 31) - 1) if kind == "int" else (0, (1 << 62) - 1)
    if kind == "uint":
        hi = (1 << 32) - 1
    if not lo <= v <= hi:
        raise KernelError("EINVAL", "%s: %d out of range" % (field, v))
    if field == "interval" and v == 0:
        raise KernelError("EINVAL", "interval must be at least 1")
    return v


def store(attr, field, kind, text):
    setattr(attr, field, parse(field, kind, text))
    attr.changed()


def setup_fault_attr(attr, text):
    """The boot parameter: <interval>,<probability>,<space>,<times>."""
    parts = text.split(",")
    if len(parts) != 4:
        raise KernelError("EINVAL", "%s=%s: want interval,probability,space,times" % (attr.name, text))
    try:
        attr.interval, attr.probability, attr.space, attr.times = [int(p, 0) for p in parts]
    except ValueError:
        raise KernelError("EINVAL", "%s=%s: not numbers" % (attr.name, text))
    attr.interval = max(1, attr.interval)


class FaultInjection:
    """k.fault_inject: the two attributes, wired to the buddy and the slab layer."""

    def __init__(self, k):
        self.k = k
        self.failslab = FaultAttr(k, "failslab")
        self.fail_page_alloc = FaultAttr(k, "fail_page_alloc")
        self.failslab.on_change = self.arm_slab
        self.fail_page_alloc.on_change = self.arm_page
        self.fail_nth = 0
        self.failslab.task = self.fail_page_alloc.task = self
        for attr in (self.failslab, self.fail_page_alloc):
            if attr.name in k.params:
                try:
                    setup_fault_attr(attr, k.params[attr.name])
                except KernelError as e:
                    k.printk("fault_inject: %s" % e.detail)
                attr.changed()

    def set_fail_nth(self, n):
        """Write to /proc/self/fail-nth: 0 disarms, N > 0 fails the Nth call."""
        self.fail_nth = n
        self.arm_page(self.fail_page_alloc)
        self.arm_slab(self.failslab)

    def nth_done(self):
        """The Nth call came: the hooks stay only where a probability wants them."""
        self.arm_page(self.fail_page_alloc)
        self.arm_slab(self.failslab)

    def arm_page(self, attr):
        buddy = self.k.buddy
        if attr.armed() or self.fail_nth:
            buddy.should_fail = lambda gfp, order: should_fail_alloc_page(attr, gfp, order)
        else:
            buddy.should_fail = None

    def arm_slab(self, attr):
        st = self.k.slab
        if st is None:
            return
        g = slub_fast.GLOBAL_ID * slub_fast.NF + slub_fast.G_NOFAST_ALLOC
        if attr.armed() or self.fail_nth:
            st.should_failslab = lambda s, gfp, size=0: should_failslab(attr, s, gfp, size)
            st.area[g] = 1
        else:
            st.should_failslab = None
            st.area[g] = 0
