# The page-fault handler (Linux's arch/x86/mm/fault.c + mm/memory.c's
# handle_mm_fault), registered with hw.set_fault_handler at boot.
#
# For the process whose address space is loaded (k.procs.cur_mm):
#   find the VMA (last hit cached), check the access against its flags
#   (PF_WRITE needs VM_WRITE, PF_INSTR needs VM_EXEC, a read any access:
#   x86 cannot map a page write- or execute-only); no VMA, but a stack
#   that grows down above: the stack grows (no_vma);
#   not present + write       -> a fresh zeroed frame, writable   (do_anonymous_page)
#   not present + read        -> the shared zero page, read-only
#   shared anonymous          -> the SharedAnon frame for that offset (read
#                                back from swap first when reclaim left a
#                                swap entry there: a major fault)
#   file (vma.file)           -> the page-cache page (filemap_fault; a major
#                                fault when it read the disk): mapped read-
#                                only on a read; a write to a private mapping
#                                copies it into an anon page (do_cow_fault),
#                                to a shared one maps it writable and dirties
#                                it (do_shared_fault); SIGBUS past EOF
#   present read-only + write -> copy-on-write, or reuse when the frame's
#                                refcount is 1 (the zero page always copies);
#                                a page-cache page: COW (private) or
#                                writable + dirty (shared: the page was
#                                cleaned for writeback, page_mkclean)
#   swap entry                -> swap-in (do_swap_page): a major fault, the
#                                page read back into a fresh private frame
#                                (kept in the swap cache), or a minor one
#                                when the swap cache still had it
#   anything else             -> SIGSEGV for that pid: the handler returns
#                                False, the accessor raises hw.Fault, and the
#                                command reports it (SegvError) and goes on.
#
# This is the hot path of the whole kernel: one Python function for the
# common cases (a fresh page, the zero page, the copy of a page shared since
# fork), everything bound to locals through default arguments, the tables
# walked with hw.read64 on physical addresses (in the guest, one call into
# viper: arch/x86/pgtable_fast.pte_lookup), no objects created besides the
# integers the hw calls return.

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.native import micropython
from kernel_py.arch.x86.layout import KERNEL_BASE, USER_END
from kernel_py.arch.x86.pgtable import pte_slot
from kernel_py.arch.x86.pgtable_fast import new_pte_out, pte_lookup
from kernel_py.arch.x86.native import VIPER
from kernel_py.mm.gfp import GFP_HIGHUSER_MOVABLE, __GFP_ZERO
from kernel_py.mm.types import (
    KIND_PAGECACHE, KIND_SHIFT, KIND_ZERO, OFF_COUNT, PG_swapcache, RECORD_SHIFT, RID_SHIFT, SHM_KEY,
    SHM_SWAPPED, VM_GROWSDOWN, VM_SHARED, VM_WRITE, _PAGE_PROTNONE,
)
from kernel_py.mm.page.page_ext import EXT_MASK, EXT_SHIFT
from kernel_py.mm.page.pcp import copy_page, zero_page
from kernel_py.mm.reclaim.rmap import PENDING_MAX
from kernel_py.mm.vm.memory import SWAPIN_MAJOR, k_swapin, shmem_swapin
from kernel_py.mm.vm.mmap import expand_stack
from kernel_py.arch.x86.cpu import (
    PAGE_SIZE, PF_INSTR, PF_PROT, PF_RSVD, PF_WRITE, PTE_ADDR_MASK,
    _PAGE_DIRTY, _PAGE_RW, _PAGE_USER,
)

GFP_ANON = GFP_HIGHUSER_MOVABLE | __GFP_ZERO
# refused file faults that are SIGBUS, not SIGSEGV (the page is not there)
SIGBUS_WHY = ("beyond end of file", "file read error")
FILE_FAULT_WHY = {"EFAULT": "beyond end of file", "ENOMEM": "out of memory"}
CODE_BYTES = 16

# the handler writes these as literals (a global is a dictionary lookup)
if EXT_SHIFT != 19 or EXT_MASK != 0x7FFFF or RECORD_SHIFT != 4 or OFF_COUNT != 4 or PF_WRITE != 2 \
        or _PAGE_RW != 2:
    raise ImportError("fault: the handler's literals are out of step with page_ext.py/types.py")


class FaultStats:
    """System-wide counters for /proc/vmstat."""

    def __init__(self):
        self.pgfault = 0            # every #PF the handler saw
        self.pgmajfault = 0         # faults that needed I/O (swap-in, file pages read)
        self.anon = 0               # fresh zeroed frames mapped
        self.zero = 0               # zero-page mappings
        self.cow = 0                # copy-on-write copies
        self.reuse = 0              # write faults that reused an exclusive page
        self.shmem = 0              # shared-anonymous faults
        self.file = 0               # faults on file mappings
        self.spurious = 0           # the PTE already allowed the access
        self.segv = 0               # faults that became SIGSEGV
        self.oom = 0                # faults that found no frame


class SegvInfo:
    """What the handler saw when it refused a fault (for the report)."""

    def __init__(self, pid, addr, err, rip, why):
        self.pid = pid
        self.addr = addr
        self.err = err
        self.rip = rip
        self.why = why


class SegvError(KernelError):
    """The one console line of a SIGSEGV: `error: SIGSEGV pid=.. addr=.. ip=.. code: ..`."""

    def __init__(self, text, errname="SIGSEGV"):
        super().__init__(errname, text)

    def line(self):
        return "error: %s %s" % (self.errname, self.detail)


def code_bytes(hw, rip, n=CODE_BYTES):
    """The bytes at a kernel-text RIP, read through physical memory ('??' if not)."""
    if rip < KERNEL_BASE:
        return " ".join(["??"] * n)
    try:
        data = hw.readbytes(rip - KERNEL_BASE, n)
    except Exception:  # noqa: BLE001
        return " ".join(["??"] * n)
    return " ".join("%02x" % b for b in data)


def segv_report(k, info, fault_args=None):
    """SegvError for a refused fault (or any hw.Fault raised under a process)."""
    if info is None:
        vector, err, addr, rip = fault_args
        return SegvError("pid=? addr=0x%x ip=0x%x error=0x%x code: %s" % (
            addr, rip, err, code_bytes(k.hw, rip)), "EFAULT:")
    text = "pid=%d addr=0x%x ip=0x%x error=0x%x (%s) code: %s" % (
        info.pid, info.addr, info.rip, info.err, info.why, code_bytes(k.hw, info.rip))
    if info.why == "out of memory":
        return SegvError(text, "ENOMEM: SIGBUS")
    if info.why in SIGBUS_WHY:
        return SegvError(text, "SIGBUS")
    return SegvError(text)


class FaultHandler:
    """Builds the handler closure for kernel `k` and keeps its state."""

    def __init__(self, k):
        self.k = k
        self.stats = FaultStats()
        self.last_segv = None
        zp = k.buddy.alloc_pages(GFP_ANON, 0, KIND_ZERO)
        if zp is None:
            raise KernelError("ENOMEM", "no frame for the zero page")
        self.zero_page = zp
        self.pcp = k.pcp
        self.anon = k.anon
        self.inline_cow = True          # the handler copies a shared anon page itself (_build)
        self.fast_walk = VIPER          # the handler walks with pgtable_fast.pte_lookup
        self.pte_out = new_pte_out()    # ... which returns the PTE there
        self.handler = self._build()

    def refuse(self, mm, va, err, rip, why):
        st = self.stats
        if why == "out of memory":
            st.oom += 1
        else:
            st.segv += 1
        task = self.k.procs.current
        pid = task.pid if task is not None else 0
        if task is not None:
            task.segv += 1
        self.last_segv = SegvInfo(pid, va, err, rip, why)
        return False

    def _build(self):
        k = self.k
        hw = k.hw
        procs = k.procs
        st = self.stats
        refuse = self.refuse
        wp = self.wp_fault
        rare = self.rare_fault
        kernel_fault = self.kernel_fault
        cow = self.inline_cow
        vwalk = pte_lookup if self.fast_walk else None

        @micropython.native
        def handler(va, err, rip, procs=procs, st=st, r64=hw.read64, w64=hw.write64,
                    pcp_list=self.pcp.list, refill=self.refill, fill=hw.fill,
                    zero=self.zero_page, refuse=refuse,
                    wp=wp, rare=rare, nomap=self.no_vma, USER_END=USER_END, ADDR=PTE_ADDR_MASK,
                    ext=self.anon.ext, lru_add=self.anon.pending.append, slot=pte_slot, hw=hw,
                    cow=cow, counts=k.mem_map.base + 4, r32=hw.read32, w32=hw.write32,
                    copy=hw.copy, invlpg=hw.invlpg, vwalk=vwalk, pte_out=self.pte_out):
            if va >= USER_END:
                return kernel_fault(va)
            mm = procs.cur_mm
            if mm is None:
                return False
            st.pgfault += 1
            vma = mm.vma_cache
            if va < vma.start or va >= vma.end:
                vma = mm.vmas.find(va)
                if vma is None:
                    return nomap(mm, va, err, rip)
                mm.vma_cache = vma
            fl = vma.flags
            if err & 2:                                     # PF_WRITE
                if not fl & 2:                              # VM_WRITE
                    return refuse(mm, va, err, rip, "write to a read-only mapping")
            elif err & 16:                                  # PF_INSTR
                if not fl & 4:                              # VM_EXEC
                    return refuse(mm, va, err, rip, "execute in a no-exec mapping")
            elif not fl & 7:                                # VM_READ|WRITE|EXEC: readable (x86)
                return refuse(mm, va, err, rip, "read from a PROT_NONE mapping")
            if err & 8:                                     # PF_RSVD
                return refuse(mm, va, err, rip, "reserved bit set in a page table")
            # pgtable.walk inlined: PML4 -> PDPT -> PD entries (byte offsets:
            # index << 3), the PTE's slot when all three are present (in
            # viper in the guest: pgtable_fast.pte_lookup, with the PTE);
            # else the walk itself, allocating the missing tables
            if vwalk is not None:
                t = vwalk(pte_out, mm.pgd, va)
                e = pte_out[0]
            else:
                e = r64(mm.pgd + ((va >> 36) & 0xFF8))
                if e & 1:
                    e = r64((e & ADDR) + ((va >> 27) & 0xFF8))
                    if e & 1:
                        e = r64((e & ADDR) + ((va >> 18) & 0xFF8))
                t = 0
                if e & 1:
                    t = (e & ADDR) + ((va >> 9) & 0xFF8)    # the PTE
                    e = r64(t)
            if not t:
                t = slot(hw, mm.pgd, va, mm.new_table)
                if t is None:
                    return refuse(mm, va, err, rip, "out of memory")
                e = r64(t)
            if e & 1:
                # wp_page_copy's common case inlined: a write to a private
                # anon page still shared with another PTE (fork), a frame
                # on the pcp list (no allocation: nothing can change
                # meanwhile); the lru_add batch is bounded by refill, as
                # for a fresh page. Anything else: wp_fault.
                if cow and err & 2 and not e & 2 and pcp_list and vma.vm_ops is None:
                    pa = e & ADDR
                    a = counts + ((pa >> 12) << 4)          # the frame's count
                    c = r32(a)
                    if c > 1 and pa != zero:
                        new = pcp_list.pop()
                        copy(new, pa, 4096)                 # copy_page, inlined
                        w32(a, c - 1)
                        w64(t, new | vma.rw_bits)
                        invlpg(va)
                        p = new >> 12                       # anon.add_new, inlined
                        w64(ext[p >> 19] + ((p & 0x7FFFF) << 3), mm.rkey | (va >> 12))
                        lru_add(new)
                        st.cow += 1
                        return True
                return wp(mm, vma, va, err, rip, t, e)
            if e or vma.vm_ops is not None:
                return rare(mm, vma, va, err, rip, t, e)
            if err & 2:                                     # do_anonymous_page
                if pcp_list:
                    pa = pcp_list.pop()
                else:
                    pa = refill()
                    if pa is None:
                        return refuse(mm, va, err, rip, "out of memory")
                fill(pa, 0, 4096)                           # zero_page, inlined
                w64(t, pa | vma.rw_bits)
                mm.rss_anon += 1
                p = pa >> 12                                # rmap (page_ext), the lru_add batch
                w64(ext[p >> 19] + ((p & 0x7FFFF) << 3), mm.rkey | (va >> 12))
                lru_add(pa)
                st.anon += 1
                return True
            w64(t, zero | vma.prot_bits)                    # read: the zero page
            st.zero += 1
            return True

        return handler

    def no_vma(self, mm, va, err, rip):
        """No VMA holds va: a stack that grows down takes it when it may
        (find_vma + expand_stack, arch/x86/mm/fault.c), and the fault is
        handled in the grown VMA; anything else is SIGSEGV (SEGV_MAPERR)."""
        vma = mm.vmas.find_vma(va)
        if vma is not None and vma.flags & VM_GROWSDOWN and \
                expand_stack(self.k.procs.current, mm, vma, va):
            self.stats.pgfault -= 1             # the retry counts it
            return self.handler(va, err, rip)
        return self.refuse(mm, va, err, rip, "no mapping")

    def refill(self):
        """The pcp refill of the hot path; bounds the lru_add batch (which
        is otherwise drained between commands and before reclaim, off the
        fault path)."""
        anon = self.anon
        if len(anon.pending) > PENDING_MAX:
            anon.drain()
        return self.pcp.refill()

    def kernel_fault(self, va):
        """A #PF on a kernel address is never resolved here (kernel memory
        is mapped when it is allocated): refuse it, so the accessor oopses,
        and first say what the address is if it is vmalloc space - e.g.
        the guard page after an area."""
        vm = self.k.vmalloc
        what = vm.describe(va) if vm is not None else None
        pd = self.k.page_debug
        if not what and pd is not None:
            what = pd.describe_fault(va)        # debug_pagealloc: a freed page
        if what:
            self.k.printk("BUG: unable to handle page fault for address: 0x%x (%s)" % (va, what))
        return False

    @micropython.native
    def wp_fault(self, mm, vma, va, err, rip, t, e):
        """do_wp_page: a fault on a present PTE. A write to a read-only
        page of a shared mapping makes it writable (wp_page_shared); of a
        private one, reuses the page when this PTE is its only user
        (wp_page_reuse) or copies it (wp_page_copy; a page-cache page:
        cow_file_page). Anything else is a spurious fault (or a refused
        one: a user page's protection). The four wp functions are native
        code: the split costs the COW path a call, which native code pays
        back (measured with -icount: bench faults N cow)."""
        k = self.k
        hw = k.hw
        if not err & PF_WRITE or e & _PAGE_RW:
            if err & PF_PROT and not err & (PF_WRITE | PF_INSTR) and not e & _PAGE_USER:
                return self.refuse(mm, va, err, rip, "protection")
            self.stats.spurious += 1            # a stale TLB entry: the PTE allows it
            hw.invlpg(va)
            return True
        pa = e & PTE_ADDR_MASK
        if vma.vm_ops is not None:
            if vma.shm is not None:
                return self.wp_page_shared(mm, vma, va, err, rip, t, e, pa)
            if hw.read16(k.mem_map.base + ((pa >> 12) << RECORD_SHIFT)) >> KIND_SHIFT == KIND_PAGECACHE:
                if vma.flags & VM_SHARED:
                    return self.wp_page_shared(mm, vma, va, err, rip, t, e, pa)
                return self.cow_file_page(mm, vma, va, err, rip, t, pa, e)
        if pa == self.zero_page:
            return self.wp_page_copy(mm, vma, va, err, rip, t, e, pa, 0, 0)
        a = k.mem_map.base + ((pa >> 12) << RECORD_SHIFT) + 4      # the count (OFF_COUNT)
        c = hw.read32(a)
        if c == 1:                              # exclusive
            return self.wp_page_reuse(va, t, e, pa)
        return self.wp_page_copy(mm, vma, va, err, rip, t, e, pa, a, c)

    @micropython.native
    def wp_page_reuse(self, va, t, e, pa):
        """The PTE is the page's only user: writable in place. A page still
        in the swap cache leaves it: its swap copy goes stale, and other
        processes may still swap that slot in."""
        k = self.k
        hw = k.hw
        if hw.read16(k.mem_map.base + ((pa >> 12) << RECORD_SHIFT)) & PG_swapcache:
            k.swapcache.delete(pa >> 12)
        hw.write64(t, e | _PAGE_RW)
        hw.invlpg(va)
        self.stats.reuse += 1
        return True

    @micropython.native
    def wp_page_copy(self, mm, vma, va, err, rip, t, e, pa, a, c):
        """Copy-on-write of a private anonymous page (count c at a), or of
        the zero page (a = 0): a fresh frame with its copy (zeroed) takes
        the PTE's place, writable."""
        k = self.k
        hw = k.hw
        zero = not a
        lst = self.pcp.list
        if lst:                                 # no allocation: nothing can change
            new = lst.pop()
        else:
            if not zero:
                hw.write32(a, c + 1)            # pinned while allocating: reclaim skips it
            new = self.pcp.refill()
            if not zero:
                c = hw.read32(a) - 1
                hw.write32(a, c)
            if new is None:
                return self.refuse(mm, va, err, rip, "out of memory")
            if (hw.read64(t) ^ e) & ~0x60 or (not zero and c == 1):
                # the PTE changed while allocating, or the other users of the
                # page went away (an OOM kill): fault again, on the new state
                k.anon.release(new)
                self.pcp.free(new)
                return True
        key = mm.rkey | (va >> 12)
        if zero:
            zero_page(hw, new)
            mm.rss_anon += 1
        else:
            copy_page(hw, new, pa)
            hw.write32(a, c - 1)
        hw.write64(t, new | vma.rw_bits)
        hw.invlpg(va)
        self.anon.add_new(new, key)
        self.stats.cow += 1
        return True

    @micropython.native
    def wp_page_shared(self, mm, vma, va, err, rip, t, e, pa):
        """A write to a shared mapping's page mapped read-only: writable in
        place. A page-cache page is dirtied first (throttled by the dirty
        limits): it was mapped read-only to see this write (a read fault, or
        page_mkclean before writeback)."""
        k = self.k
        hw = k.hw
        if vma.shm is not None:                 # shared anonymous memory
            hw.write64(t, e | _PAGE_RW)
            hw.invlpg(va)
            self.stats.shmem += 1
            return True
        cache = k.pagecache
        mapping = vma.file.mapping
        if cache.owner(pa >> 12) is None:       # no longer in the cache (cannot happen: truncate unmaps)
            return self.refuse(mm, va, err, rip, "beyond end of file")
        cache.balance_dirty_pages(mapping)      # throttled before this page is dirtied: no livelock
        cache.set_page_dirty(mapping, pa)
        hw.write64(t, hw.read64(t) | _PAGE_RW)  # (writeback may have cleaned the PTE)
        hw.invlpg(va)
        self.stats.file += 1
        return True

    def rare_fault(self, mm, vma, va, err, rip, t, e):
        """Not present: a PROT_NONE entry whose VMA became accessible, a
        swap entry, a file page or a shared anonymous page."""
        k = self.k
        hw = k.hw
        st = self.stats
        if e:
            if not e & _PAGE_PROTNONE:
                return self.do_swap_page(mm, vma, va, err, rip, t, e)
            pa = e & PTE_ADDR_MASK
            bits = vma.prot_bits
            if vma.shm is not None and vma.flags & VM_WRITE:
                bits = vma.rw_bits
            hw.write64(t, pa | bits | (e & _PAGE_DIRTY))   # D kept (swap cache: the disk copy may be stale)
            return True                         # a write retries into wp_fault
        if vma.file is not None:
            return self.file_fault(mm, vma, va, err, rip, t)
        shm = vma.shm
        off = vma.offset_of(va)
        if off >= shm.size:                     # past the object (mremap grew the mapping): SIGBUS
            return self.refuse(mm, va, err, rip, "beyond end of file")
        pa = shm.pages.get(off)
        if pa is None:
            pa = self.pcp.alloc()
            if pa is None:
                return self.refuse(mm, va, err, rip, "out of memory")
            if shm.pages.get(off) is not None:  # filled while allocating (reclaim ran)
                self.pcp.free(pa)
                return True
            zero_page(hw, pa)
            shm.pages[off] = pa                 # the object's reference
            k.anon.add_new(pa, SHM_KEY | (shm.ino << RID_SHIFT) | off)
        elif pa & SHM_SWAPPED:                  # on swap: read it back (shmem_swapin_folio)
            return self.shmem_swapin(mm, vma, va, err, rip, shm, off, pa)
        mm.get_page(pa)                         # the mapping's reference
        hw.write64(t, pa | (vma.rw_bits if vma.flags & VM_WRITE else vma.prot_bits))
        mm.rss_shmem += 1
        st.shmem += 1
        return True

    def shmem_swapin(self, mm, vma, va, err, rip, shm, off, v):
        """A shared anonymous page on swap: read into a frame the object
        holds again (a major fault); the access retries and maps it."""
        try:
            pa = shmem_swapin(self.k, shm, off, v)
        except KernelError:
            return self.refuse(mm, va, err, rip, "swap read error")
        if pa is None:
            return self.refuse(mm, va, err, rip, "out of memory")
        self.stats.pgmajfault += 1
        return True

    def file_fault(self, mm, vma, va, err, rip, t):
        """do_read_fault / do_cow_fault / do_shared_fault: the page from the
        page cache (read from the disk: a major fault)."""
        k = self.k
        cache = k.pagecache
        mapping = vma.file.mapping
        st = self.stats
        try:
            pa, major = cache.filemap_fault(mapping, vma.offset_of(va))
        except KernelError as exc:
            return self.refuse(mm, va, err, rip, FILE_FAULT_WHY.get(exc.errname, "file read error"))
        st.file += 1
        if major:
            st.pgmajfault += 1
        if not err & PF_WRITE:                  # read-only even when writable: a write faults again
            k.hw.write64(t, pa | vma.prot_bits)
            mm.rss_file += 1
            return True
        if not vma.flags & VM_SHARED:
            return self.cow_file_page(mm, vma, va, err, rip, t, pa)
        cache.balance_dirty_pages(mapping)      # throttled before this page is dirtied: no livelock
        cache.set_page_dirty(mapping, pa)
        k.hw.write64(t, pa | vma.rw_bits)
        mm.rss_file += 1
        return True

    def cow_file_page(self, mm, vma, va, err, rip, t, pa, e=0):
        """A private mapping's write: the page-cache page is copied into a
        fresh anonymous page, which replaces it. We hold one reference on
        the cache page: the new PTE's (e = 0: not mapped yet) or that of
        the PTE e that maps it now."""
        k = self.k
        hw = k.hw
        cache = k.pagecache
        new = self.pcp.alloc()                  # the cache page stays pinned by our reference
        if new is None or (hw.read64(t) ^ e) & ~0x60:
            if new is not None:                 # the PTE changed meanwhile: fault again
                k.anon.release(new)
                self.pcp.free(new)
            if not e:
                cache.put_page(pa)
            return True if new is not None else self.refuse(mm, va, err, rip, "out of memory")
        copy_page(hw, new, pa)
        hw.write64(t, new | vma.rw_bits)
        if e:
            hw.invlpg(va)
            mm.rss_file -= 1
        cache.put_page(pa)
        mm.rss_anon += 1
        self.anon.add_new(new, mm.rkey | (va >> 12))
        self.stats.cow += 1
        return True

    def do_swap_page(self, mm, vma, va, err, rip, t, e):
        """A swap entry: read the page back (a major fault), or map it from
        the swap cache."""
        k = self.k
        if vma.shm is not None or k.swap.lookup(e)[0] is None:
            return self.refuse(mm, va, err, rip, "bad swap entry 0x%x" % e)
        try:
            ok = k_swapin(k, mm, vma, va & ~0xFFF, t, e)
        except KernelError:
            return self.refuse(mm, va, err, rip, "swap read error")
        if not ok:
            return self.refuse(mm, va, err, rip, "out of memory")
        if ok == SWAPIN_MAJOR:
            self.stats.pgmajfault += 1
        return True


