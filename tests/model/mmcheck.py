"""Independent checks of process address spaces on the simulated machine:
walk every process's user page tables from physical memory and compare
them with its VMAs, its RSS counters, the mem_map refcounts and the
buddy's free count; the reverse map and the anon LRU lists against the
PTEs; every swap slot's count against the swap PTEs that hold it and the
swap cache; file
mappings against the page cache (each mapped page the cache's page for
that offset, its count the cache's reference plus the PTEs) and the files'
i_mmap lists and pins."""

from kernel_py.kernel.kernel import Kernel
from kernel_py.fs.ramfs import RamInode
from kernel_py.mm.filemap.shmem import TmpFs
from kernel_py.arch.x86.layout import KERNEL_HALF
from kernel_py.mm.debug import debug_vm
from kernel_py.mm.types import (
    KIND_ANON, KIND_PAGECACHE, KIND_SHIFT, PG_active, PG_dirty, PG_lru, PG_swapcache,
    SWAP_COUNT_MASK, SWAP_HAS_CACHE, SWAP_MAP_BAD, is_swap_pte, swp_offset, swp_type, SHM_KEY,
    SHM_SWAPPED, VM_EXEC, VM_READ, VM_SHARED, VM_WRITE, _PAGE_PROTNONE,
)
from kernel_py.shell.shell import Shell
from kernel_py.sim.machine import Machine
from kernel_py.arch.x86.cpu import (
    PTE_ADDR_MASK, _PAGE_NX, _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, _PAGE_USER,
)
import kernel_py.shell.all  # noqa: F401


def boot(mem=64 << 20, cmdline=""):
    hw = Machine(mem, cmdline, console=lambda text: None)
    k = Kernel(hw, console=lambda msg: None)
    k.boot()
    return k, Shell(k)


def user_tables(k, pgd):
    """([table pa], {va: pte}) for the user half of a PML4: every table
    below it and every non-zero leaf entry."""
    r64 = k.hw.read64
    tables, leaves = [], {}
    for i4 in range(KERNEL_HALF):
        e4 = r64(pgd + i4 * 8)
        if not e4 & _PAGE_PRESENT:
            assert e4 == 0, "junk in an empty PML4 slot"
            continue
        assert not e4 & _PAGE_PSE
        t3 = e4 & PTE_ADDR_MASK
        tables.append(t3)
        for i3 in range(512):
            e3 = r64(t3 + i3 * 8)
            if not e3 & _PAGE_PRESENT:
                assert e3 == 0
                continue
            assert not e3 & _PAGE_PSE
            t2 = e3 & PTE_ADDR_MASK
            tables.append(t2)
            for i2 in range(512):
                e2 = r64(t2 + i2 * 8)
                if not e2 & _PAGE_PRESENT:
                    assert e2 == 0
                    continue
                assert not e2 & _PAGE_PSE
                t1 = e2 & PTE_ADDR_MASK
                tables.append(t1)
                for i1 in range(512):
                    e = r64(t1 + i1 * 8)
                    if e:
                        va = (i4 << 39) | (i3 << 30) | (i2 << 21) | (i1 << 12)
                        leaves[va] = e
    return tables, leaves


def check_all(k, baseline=None):
    """Every invariant; returns the conservation total (free + pcp + in use)."""
    hw = k.hw
    mm_map = k.mem_map
    zero = k.zero_page
    init_pgd = k.init_mm.pgd
    refs = {}
    in_use = 0
    rkeys = {}                  # pfn -> [rmap keys the PTEs call for]
    swaprefs = {}               # (type, offset) -> swap PTEs
    cached = {}                 # page-cache pa -> PTEs mapping it
    for pid, task in k.procs.tasks.items():
        mm = task.mm
        if mm is None:                  # kernel threads and zombies have no address space
            continue
        # the kernel half is init_mm's, entry for entry
        assert hw.readbytes(mm.pgd + KERNEL_HALF * 8, KERNEL_HALF * 8) == \
            hw.readbytes(init_pgd + KERNEL_HALF * 8, KERNEL_HALF * 8)
        tables, leaves = user_tables(k, mm.pgd)
        assert len(tables) == mm.nr_pgtables, (pid, len(tables), mm.nr_pgtables)
        for t in tables:
            assert mm_map.kind(t >> 12) == 4, "table frame not KIND_PAGETABLE"
        in_use += len(tables) + 1
        anon = shmem = swapents = files = 0
        vmas = list(mm.vmas)
        for a, b in zip(vmas, vmas[1:]):
            assert a.end <= b.start, "VMAs overlap or are unsorted"
        for va, e in leaves.items():
            vma = mm.vmas.find(va)
            assert vma is not None, "pid %d: PTE at 0x%x outside every VMA" % (pid, va)
            if is_swap_pte(e):
                assert vma.shm is None, "pid %d: swap entry in a shared mapping at 0x%x" % (pid, va)
                si = k.swap.areas[swp_type(e)]
                assert si is not None, "pid %d: swap entry 0x%x of no area" % (pid, e)
                assert 0 < swp_offset(e) < si.max
                key = (swp_type(e), swp_offset(e))
                swaprefs[key] = swaprefs.get(key, 0) + 1
                swapents += 1
                continue
            pa = e & PTE_ADDR_MASK
            fl = vma.flags
            if not fl & (VM_READ | VM_WRITE | VM_EXEC):
                assert not e & _PAGE_PRESENT and e & _PAGE_PROTNONE, \
                    "pid %d: PROT_NONE page 0x%x accessible: 0x%x" % (pid, va, e)
            else:
                assert e & _PAGE_PRESENT, "pid %d: 0x%x not present in an accessible VMA" % (pid, va)
                assert e & _PAGE_USER
                assert bool(e & _PAGE_NX) == (not fl & VM_EXEC), "pid %d: NX wrong at 0x%x" % (pid, va)
                if e & _PAGE_RW:
                    assert fl & VM_WRITE, "pid %d: writable PTE in a read-only VMA" % pid
                    assert pa != zero, "the zero page mapped writable"
            if pa == zero:
                assert vma.shm is None
                continue
            kind = mm_map.flags(pa >> 12) >> KIND_SHIFT
            if vma.file is not None and kind == KIND_PAGECACHE:
                assert k.pagecache.owner(pa >> 12) == (vma.file.mapping, vma.offset_of(va)), \
                    "pid %d: 0x%x maps a page that is not the file's page there" % (pid, va)
                if e & _PAGE_RW:
                    assert vma.flags & VM_SHARED, "pid %d: a private mapping writes the cache" % pid
                    assert mm_map.flags(pa >> 12) & PG_dirty, "pid %d: writable, clean page" % pid
                cached[pa] = cached.get(pa, 0) + 1
                files += 1
                continue
            assert kind == KIND_ANON, "pid %d: 0x%x maps a frame of kind %d (kernel memory?)" % (pid, va, kind)
            refs[pa] = refs.get(pa, 0) + 1
            if vma.shm is not None:
                shmem += 1
                assert vma.shm.pages.get(vma.offset_of(va)) == pa
            else:
                anon += 1
                rkeys.setdefault(pa >> 12, []).append((mm, va))
                if e & _PAGE_RW:
                    assert mm_map.count(pa >> 12) == 1, "writable private page shared"
        assert mm.rss_anon == anon, (pid, mm.rss_anon, anon)
        assert mm.swapents == swapents, (pid, mm.swapents, swapents)
        assert k.anon.mms.get(mm.rid) is mm
        assert mm.rss_shmem == shmem, (pid, mm.rss_shmem, shmem)
        assert mm.rss_file == files, (pid, mm.rss_file, files)
    shms = {}
    for task in k.procs.tasks.values():
        for v in (task.mm.vmas if task.mm is not None else ()):
            if v.shm is not None:
                shms[v.shm.ino] = v.shm
    shm_frames = {}             # pfn -> the rmap word a shmem frame must have
    assert sorted(k.anon.shm) == sorted(shms), "k.anon.shm is not the live SharedAnon objects"
    for shm in shms.values():
        assert sorted(id(v) for v in shm.vmas) == sorted(
            id(v) for t in k.procs.tasks.values() if t.mm is not None
            for v in t.mm.vmas if v.shm is shm)
        assert shm.users == len(shm.vmas)
        for off, pa in shm.pages.items():
            if pa & SHM_SWAPPED:        # on swap: the object's index holds the slot
                e = pa & ~SHM_SWAPPED
                key = (swp_type(e), swp_offset(e))
                swaprefs[key] = swaprefs.get(key, 0) + 1
                continue
            refs[pa] = refs.get(pa, 0) + 1
            shm_frames[pa >> 12] = SHM_KEY | (shm.ino << 36) | off
    for sb in (k.vfs.superblocks() if k.vfs is not None else ()):
        if isinstance(sb, TmpFs):       # tmpfs files' pages on swap, memfds' too: one use each
            for ino in sb.swaplist.values():
                for e in ino.swapped.values():
                    key = (swp_type(e), swp_offset(e))
                    swaprefs[key] = swaprefs.get(key, 0) + 1
    for pa, n in refs.items():
        assert mm_map.count(pa >> 12) == n, "frame 0x%x: refcount %d, %d references" % (
            pa, mm_map.count(pa >> 12), n)
    for pa, n in cached.items():
        own = cache_refs(k, pa)
        assert mm_map.count(pa >> 12) == n + own, "cache page 0x%x: refcount %d, %d PTEs" % (
            pa, mm_map.count(pa >> 12), n)
    check_file_vmas(k)
    for pa in k.pcp.list:
        assert pa not in refs, "a frame on the pcp list is still mapped"
        assert mm_map.count(pa >> 12) == 1 and mm_map.kind(pa >> 12) == KIND_ANON
    check_rmap_lru(k, rkeys, shm_frames)
    check_swap_map(k, swaprefs)
    bad = debug_vm.check(k)[1]          # the kernel's own `check` agrees
    assert bad == [], bad
    total = k.buddy.nr_free_pages() + len(k.pcp) + len(refs) + in_use
    if baseline is not None:
        assert total == baseline, "frames leaked or double-counted: %d != %d" % (total, baseline)
    return total


def cache_refs(k, pa):
    """The references a cached page holds besides its PTEs: the cache's,
    and ramfs's own on its files' pages (fs/ramfs.py: never reclaimed)."""
    owner = k.pagecache.owner(pa >> 12)
    return 2 if owner is not None and isinstance(owner[0].host, RamInode) else 1


def check_file_vmas(k):
    """Every file VMA is in its mapping's i_mmap (owned by its mm) and
    nothing else is; a file's references are its VMAs, and its inode is
    pinned once while it has any; unmapped cached pages hold only the
    cache's reference."""
    vmas = {}
    files = {}
    for task in k.procs.tasks.values():
        for v in (task.mm.vmas if task.mm is not None else ()):
            if v.file is not None:
                assert v.mm is task.mm
                vmas[id(v)] = v
                files.setdefault(id(v.file), [v.file, 0])[1] += 1
    pc = k.pagecache
    if pc is None:
        return
    listed = 0
    for m in pc.mappings.values():
        for v in m.i_mmap:
            assert vmas.get(id(v)) is v and v.file.mapping is m, "stale VMA in i_mmap"
            listed += 1
        if not m.i_mmap:
            own = 2 if isinstance(m.host, RamInode) else 1
            for pa in m.pages.values():
                assert k.mem_map.count(pa >> 12) == own, "unmapped cache page with extra references"
    assert listed == len(vmas)
    pins = {}
    for f, n in files.values():
        assert f.count == n, "%s: %d references, %d VMAs" % (f.path, f.count, n)
        pins[id(f.ino)] = (f.ino, pins.get(id(f.ino), (None, 0))[1] + 1)
    opened = {}                 # open Files (descriptors) pin their inodes too
    for task in k.procs.tasks.values():
        if task.files is not None:
            for f in task.files.fds:
                if f is not None and f.pinned:
                    opened[id(f)] = f
    for f in opened.values():
        if id(f.inode) in pins:
            ino, n = pins[id(f.inode)]
            pins[id(f.inode)] = (ino, n + 1)
    for ino, n in pins.values():
        assert ino.refs == n, "%s pinned %d times for %d open files" % (ino.name, ino.refs, n)


def check_rmap_lru(k, rkeys, shm_frames=None):
    """Each private anon frame's rmap word names an address it is mapped at
    in every process that maps it, and its PTEs are exactly the ones
    rmap.ptes() finds; every other frame's word is 0. Each such frame is on
    one anon LRU list (flags to match) or in the lru_add batch."""
    anon = k.anon
    mm_map = k.mem_map
    words = []
    left = mm_map.nr_pfns
    for pa in anon.ext:                     # the page_ext words, read in bulk
        n = min(left, 1 << 19)
        words.extend(memoryview(bytes(k.hw.readbytes(pa, n * 8))).cast("Q"))
        left -= n
    shm_frames = shm_frames or {}
    for pfn in range(mm_map.nr_pfns):
        key = words[pfn]
        if pfn in shm_frames:
            assert key == shm_frames[pfn], "shmem pfn 0x%x: rmap word 0x%x" % (pfn, key)
            continue
        if pfn not in rkeys:
            assert key == 0, "pfn 0x%x: rmap word 0x%x but no private PTE maps it" % (pfn, key)
            continue
        maps = rkeys[pfn]
        va = (key & ((1 << 36) - 1)) << 12
        assert key and all(v == va for mm, v in maps), "pfn 0x%x: rmap va 0x%x, PTEs at %s" % (
            pfn, va, [hex(v) for mm, v in maps])
        found = anon.ptes(pfn)
        protnone = any(not mm.pte(v) & _PAGE_PRESENT for mm, v in maps)
        if found is None:
            assert protnone or mm_map.count(pfn) != len(maps), "pfn 0x%x: PTEs not found" % pfn
        else:
            assert sorted((id(m), v) for m, v, s_, e in found) == sorted((id(m), v) for m, v in maps)
    act, inact = anon.active.pfns(), anon.inactive.pfns()
    assert len(act) == anon.active.n and len(inact) == anon.inactive.n
    assert not set(act) & set(inact)
    for pfn in act:
        f = mm_map.flags(pfn)
        assert f & PG_lru and f & PG_active, mm_map.describe(pfn)
        assert pfn in rkeys or pfn in shm_frames, "active anon list holds unmapped frame 0x%x" % pfn
    for pfn in inact:
        f = mm_map.flags(pfn)
        assert f & PG_lru and not f & PG_active, mm_map.describe(pfn)
        assert pfn in rkeys or pfn in shm_frames, "inactive anon list holds unmapped frame 0x%x" % pfn
    pending = set(pa >> 12 for pa in anon.pending)
    for pfn in list(rkeys) + list(shm_frames):
        if not mm_map.flags(pfn) & PG_lru:
            assert pfn in pending, "mapped anon frame 0x%x on no list" % pfn
    if anon.active.n:
        assert anon.active.last == act[-1]
    if anon.inactive.n:
        assert anon.inactive.last == inact[-1]


def check_swap_map(k, swaprefs):
    """Every slot's count is the number of swap PTEs holding it, plus
    SWAP_HAS_CACHE exactly when a page in the swap cache has that slot
    (both ways: the page's flag and entry, the area's cache array); the
    free-slot totals agree."""
    swap = k.swap
    sc = k.swapcache
    free = 0
    total = 0
    cached = 0
    for si in swap.active():
        inuse = 0
        for off in range(1, si.max):
            c = si.map[off]
            if c == SWAP_MAP_BAD:
                continue
            assert c & SWAP_COUNT_MASK == swaprefs.get((si.type, off), 0), "slot %d:%d count %d, %d PTEs" % (
                si.type, off, c, swaprefs.get((si.type, off), 0))
            pa = sc.lookup(si, off)
            assert bool(c & SWAP_HAS_CACHE) == (pa is not None), "slot %d:%d cache flag" % (si.type, off)
            if pa is not None:
                cached += 1
                assert k.mem_map.flags(pa >> 12) & PG_swapcache
                assert k.mem_map.kind(pa >> 12) == KIND_ANON and k.mem_map.count(pa >> 12) >= 1
                assert sc.entry_of(pa >> 12) == (si, off)
            if c:
                inuse += 1
        assert inuse == si.inuse, (si.inuse, inuse)
        if si.writeok:
            free += si.pages - si.inuse
            total += si.pages
    for key in swaprefs:
        assert swap.areas[key[0]] is not None
    assert swap.nr_swap_pages == free, (swap.nr_swap_pages, free)
    assert swap.total_swap_pages == total
    assert sc.nr == cached, (sc.nr, cached)
