# kmemleak and per-site allocation tracking on the console (Linux:
# /sys/kernel/debug/kmemleak, /sys/kernel/debug/slab/<cache>/alloc_traces),
# and the commands that make leaks and linked objects on purpose: kforget
# (let go of a console handle), fdforget (empty a process's descriptor
# without fput: its File leaks), kwrite/kread (a word of a held object, e.g.
# a pointer to another object), kmemleak-test (samples/kmemleak).

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import DIRECT_MAP_BASE, VMALLOC_END, VMALLOC_START
from kernel_py.mm.debug import kmemleak
from kernel_py.mm.gfp import GFP_KERNEL, __GFP_ZERO
from kernel_py.mm.slab.common import SLAB_STORE_USER
from kernel_py.shell import handles
from kernel_py.shell.cmd_mm import parse_int
from kernel_py.shell.cmd_slab import need, parse_addr
from kernel_py.shell.registry import command, pattern_file, pseudo_file
from kernel_py.arch.x86.tsc import HZ
from kernel_py.arch.x86.cpu import PAGE_SIZE

KMEMLEAK_FILE = "/sys/kernel/debug/kmemleak"
USAGE = "scan|scan=on|scan=off|scan=SECS|clear|off|dump=ADDR|min_age=MS"
TEST_LEAKS = (32, 32, 1024, 1024, 2048, 2048, 4096, 4096)
TEST_VMALLOC = (64, 64)
TEST_NODES = 10
NODE_SIZE = 64
LIST_OFF = 8            # struct list_head inside a node: next, then prev


def tracker(k):
    t = k.kmemleak
    if t is None or not t.enabled or not t.scanning:
        raise KernelError("EPERM", "kmemleak is off (boot with kmemleak=on)")
    return t


def records(k):
    """The allocation records, for the alloc_traces views."""
    t = k.kmemleak
    if t is None or not t.enabled:
        raise KernelError("EPERM", "allocation sites are not recorded "
                          "(boot with kmemleak=on or slub_debug=U)")
    return t


@pseudo_file(KMEMLEAK_FILE, write=lambda k, text: write_kmemleak(k, text))
def read_kmemleak(k):
    return tracker(k).report()


def write_kmemleak(k, text):
    cmd = text.strip()
    if cmd == "on":
        raise KernelError("EINVAL", "kmemleak can only be turned on at boot (kmemleak=on)")
    t = tracker(k)
    if cmd == "scan":
        t.scan()
    elif cmd.startswith("scan="):
        v = cmd[5:]
        secs = None if v == "on" else 0 if v == "off" else parse_int(v, "scan period")
        if secs is not None and secs < 0:
            raise KernelError("EINVAL", "scan period %d s" % secs)
        t.set_scan_thread(secs)
    elif cmd == "clear":
        t.clear()
    elif cmd == "off":
        t.disable()
    elif cmd.startswith("dump="):
        t.dump(parse_addr(cmd[5:]))
    elif cmd.startswith("min_age="):
        ms = parse_int(cmd[8:], "min_age")
        if ms < 0:
            raise KernelError("EINVAL", "min_age %d ms" % ms)
        t.min_age = ms * HZ // 1000
    else:
        raise KernelError("EINVAL", "%r: kmemleak takes %s" % (cmd, USAGE))


def traced_caches(k):
    """The caches that have an alloc_traces file."""
    t = k.kmemleak
    if t is None or not t.enabled:
        return ()
    return [s.name for s in k.slab.all_caches() if t.scanning or s.flags & SLAB_STORE_USER]


@pattern_file("/sys/kernel/debug/slab/", "/alloc_traces", names=traced_caches)
def read_alloc_traces(k, cache):
    """With slub_debug=U alone, only the caches it names have the file."""
    t = records(k)
    if not t.scanning and not k.slab.find(cache).flags & SLAB_STORE_USER:
        raise KernelError("ENOENT", "%s: no SLAB_STORE_USER (slub_debug=U,%s)" % (cache, cache))
    k.slab.find(cache)              # ENOENT for an unknown cache
    return t.alloc_traces(cache)


@pseudo_file("/sys/kernel/debug/alloc_sites")
def read_alloc_sites(k):
    return records(k).summary()


# --- making leaks and links on purpose ---------------------------------------

def phys(k, va):
    """Physical address behind a held object's byte (direct map or vmalloc)."""
    if VMALLOC_START <= va < VMALLOC_END:
        return k.vmalloc.vmalloc_to_page(va) + (va & (PAGE_SIZE - 1))
    return va - DIRECT_MAP_BASE


def held_word(k, args):
    """(pa, offset) of the 64-bit word at ADDR+OFFSET of a held object."""
    va = parse_addr(args[0])
    size = handles.get(k, va)[0]
    off = parse_int(args[1], "offset")
    if off < 0 or off % 8 or off + 8 > size:
        raise KernelError("EINVAL", "offset %d: an 8-byte aligned word inside the %d-byte object"
                          % (off, size))
    return phys(k, va + off)


@command("kforget", "kforget ADDR", "drop the console's handle on an object (it leaks)")
def cmd_kforget(k, args):
    need(args, 1, 1, "kforget ADDR")
    va = parse_addr(args[0])
    handles.get(k, va)
    handles.drop(k, va)
    return ""


@command("fdforget", "fdforget PID FD",
         "empty a process's descriptor without closing it: its File leaks (for kmemleak)")
def cmd_fdforget(k, args):
    """A debug facility: the File loses the fd table's pointer but keeps
    the reference that pointer stood for, as a kernel path that forgets an
    fput would leave it. Prints the File's filp object."""
    need(args, 2, 2, "fdforget PID FD")
    t = k.procs.get(args[0])
    fd = parse_int(args[1], "fd")
    f = t.files.file(fd) if t.files is not None else None
    if f is None:
        raise KernelError("EBADF", "process %d has no descriptor %d" % (t.pid, fd))
    t.files.take(fd)
    return "0x%x" % max(f.va, 0)


@command("kwrite", "kwrite ADDR OFFSET VALUE",
         "store a 64-bit VALUE (e.g. another object's address) in an object the console holds")
def cmd_kwrite(k, args):
    need(args, 3, 3, "kwrite ADDR OFFSET VALUE")
    pa = held_word(k, args)
    put64(k, pa, parse_addr(args[2]))
    return ""


@command("kread", "kread ADDR OFFSET", "the 64-bit word at ADDR+OFFSET of an object the console holds")
def cmd_kread(k, args):
    need(args, 2, 2, "kread ADDR OFFSET")
    pa = held_word(k, args)
    return "0x%016x" % (k.hw.read32(pa) | (k.hw.read32(pa + 4) << 32))


def allocated(va, what):
    if va is None:
        raise KernelError("ENOMEM", what)
    return va


@command("kmemleak-test", "kmemleak-test",
         "samples/kmemleak: leak 10 objects on purpose, and keep a list of 10 reachable ones")
def cmd_kmemleak_test(k, args):
    """Leaks: kmalloc 32..4096 and vmalloc(64), pointers dropped. Not leaks:
    a doubly linked list whose head (a root, like the sample's static
    LIST_HEAD) points at the first node's list_head, i.e. into the node."""
    need(args, 0, 0, "kmemleak-test")
    out = ["kmemleak: Kmemleak testing"]
    for size in TEST_LEAKS:
        va = allocated(k.kmalloc.kmalloc(size, GFP_KERNEL), "kmalloc")
        out.append("kmemleak: kmalloc(%d) = 0x%x" % (size, va))
    for size in TEST_VMALLOC:
        va = allocated(k.vmalloc.vmalloc(size), "vmalloc")
        out.append("kmemleak: vmalloc(%d) = 0x%x" % (size, va))
    prev = 0
    head = None
    for _ in range(TEST_NODES):
        va = allocated(k.kmalloc.kmalloc(NODE_SIZE, GFP_KERNEL | __GFP_ZERO), "kzalloc")
        out.append("kmemleak: kzalloc(sizeof(*elem)) = 0x%x" % va)
        node = va + LIST_OFF
        if prev:
            put64(k, prev - DIRECT_MAP_BASE, node)              # prev->next
            put64(k, node - DIRECT_MAP_BASE + 8, prev)          # node->prev
        else:
            head = node
        prev = node
    test_lists(k).append(head)
    return "\n".join(out)


def put64(k, pa, value):
    k.hw.write32(pa, value & 0xFFFFFFFF)
    k.hw.write32(pa + 4, value >> 32)


def test_lists(k):
    """The heads of the lists kmemleak-test built (the module's data)."""
    return k.kmemleak_test_lists


kmemleak.register_root("kmemleak-test test_list", test_lists)
