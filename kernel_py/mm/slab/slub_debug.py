# slub_debug: poisoning and red zones (Linux: the debug half of mm/slub.c).
#
# A debug cache lays each slot out as
#     [left red zone][object][right red zone][free pointer]
# Free objects hold POISON_FREE (0x6b) with POISON_END (0xa5) as the last
# byte; red zones hold SLUB_RED_INACTIVE (0xbb) while the object is free and
# SLUB_RED_ACTIVE (0xcc) while it is allocated. Checking the bytes on alloc
# catches writes after free; checking the red zones on free catches overflows.

from kernel_py.mm.slab.common import DMB, SLAB_POISON, SLAB_RED_ZONE

POISON_INUSE = 0x5A
POISON_FREE = 0x6B
POISON_END = 0xA5
SLUB_RED_INACTIVE = 0xBB
SLUB_RED_ACTIVE = 0xCC
RULE = "=" * 77
DASH = "-" * 77


def poisons(s):
    """Objects of caches with a constructor are never poisoned (as in Linux)."""
    return (s.flags & SLAB_POISON) and not s.ctor


def init_object(s, obj, active):
    """Fill the red zones and (for free objects) the poison of obj (a pa)."""
    hw = s.hw
    if s.flags & SLAB_RED_ZONE:
        val = SLUB_RED_ACTIVE if active else SLUB_RED_INACTIVE
        hw.fill(obj - s.red_left_pad, val, s.red_left_pad)
        hw.fill(obj + s.object_size, val, s.inuse - s.object_size)
    if poisons(s) and not active:
        hw.fill(obj, POISON_FREE, s.object_size - 1)
        hw.write8(obj + s.object_size - 1, POISON_END)


def first_bad(data, value):
    for i in range(len(data)):
        if data[i] != value:
            return i
    return -1


def check_bytes(s, obj, what, start, n, value):
    """Report and repair the first run of bytes in [start, start+n) that is
    not `value`; returns the problem as (what, offset) or None."""
    if n <= 0:
        return None
    data = s.hw.readbytes(start, n)
    i = first_bad(data, value)
    if i < 0:
        return None
    j = n
    while j > i and data[j - 1] == value:
        j -= 1
    fault = start + i
    printk = s.st.printk
    printk(RULE)
    printk("BUG %s: %s overwritten" % (s.name, what))
    printk(DASH)
    printk("INFO: 0x%x-0x%x @offset=%d. First byte 0x%x instead of 0x%x"
           % (DMB + fault, DMB + start + j - 1, fault - obj, data[i], value))
    printk("INFO: Object 0x%x @offset=%d (slab 0x%x, object size %d)"
           % (DMB + obj, fault - obj, DMB + (obj & ~0xFFF), s.object_size))
    printk("FIX %s: Restoring %s 0x%x-0x%x=0x%x"
           % (s.name, what, DMB + fault, DMB + start + j - 1, value))
    s.hw.fill(start + i, value, j - i)
    return (what, fault - obj)


def check_object(s, obj, active):
    """Verify the red zones and poison of obj; the first problem or None."""
    bad = None
    if s.flags & SLAB_RED_ZONE:
        val = SLUB_RED_ACTIVE if active else SLUB_RED_INACTIVE
        bad = check_bytes(s, obj, "Left Redzone", obj - s.red_left_pad, s.red_left_pad, val) or bad
        bad = check_bytes(s, obj, "Redzone", obj + s.object_size, s.inuse - s.object_size, val) or bad
    if poisons(s) and not active:
        bad = check_bytes(s, obj, "Poison", obj, s.object_size - 1, POISON_FREE) or bad
        bad = check_bytes(s, obj, "Poison", obj + s.object_size - 1, 1, POISON_END) or bad
    return bad


def bug_line(s, obj, bad):
    return "BUG %s: %s overwritten: object 0x%x offset %d" % (s.name, bad[0], DMB + obj, bad[1])
