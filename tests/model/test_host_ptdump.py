"""The host ptdump (qemu/kpyqemu/ptdump.py, tools/ptdump) over a simulated
machine: same text as the kernel's own dump, filters, and the W+X check."""

import io
import types

import pytest

import kernel_py.shell.all  # noqa: F401
from kernel_py.arch.x86.layout import DIRECT_MAP_BASE, KERNEL_BASE
from kernel_py.arch.x86.ptdump import KERNEL_SPACE
from kernel_py.shell.shell import Shell
from kernel_py.arch.x86.cpu import (
    PAGE_SIZE, PTE_ADDR_MASK, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_NX, _PAGE_PSE,
    _PAGE_RW, _PAGE_USER,
)
from kpyqemu import ptdump as hp
from kpyqemu.walker import PageWalker

from mmsupport import boot

WX_VA = 0xFFFFC90000000000          # vmalloc area: unused by the boot tables
USER_VA = 0x400000


class SimMachine:
    """What tools/ptdump needs from a machine (registers, read_phys,
    pause/resume, qmp_cmd), over the simulated one."""

    def __init__(self, k):
        self.k = k
        self.paused = 0

    def registers(self):
        return types.SimpleNamespace(cr3=self.k.hw.read_cr3(), get=lambda n, d=0: 1 << 11)

    def read_phys(self, pa, n):
        return bytes(self.k.hw.readbytes(pa, n))

    def qmp_cmd(self, name, **args):
        return {"running": True}

    def pause(self):
        self.paused += 1

    def resume(self):
        self.paused -= 1


@pytest.fixture(scope="module")
def k():
    return boot(128 << 20)


def walker(k, root=None):
    root = k.init_mm.pgd if root is None else root
    return PageWalker(root, lambda pa, n: bytes(k.hw.readbytes(pa, n)))


def test_host_dump_equals_guest_file(k):
    sh = Shell(k)
    assert hp.dump(walker(k)) == sh.execute("cat /sys/kernel/debug/page_tables/kernel")
    cr3 = k.hw.read_cr3() & PTE_ADDR_MASK
    assert hp.dump(walker(k, cr3), start=KERNEL_SPACE) == \
        sh.execute("cat /sys/kernel/debug/page_tables/current_kernel")


def test_accessed_dirty_do_not_change_the_text(k):
    w = walker(k)
    before = hp.dump(w)
    # set A and D on a direct-map leaf behind the kernel's back, as the CPU would
    steps = w.walk(DIRECT_MAP_BASE + 0x200000)
    leaf = steps[-1]
    addr = leaf.table_pa + 8 * leaf.index
    e = k.hw.read64(addr)
    k.hw.write64(addr, e | _PAGE_ACCESSED | _PAGE_DIRTY)
    try:
        assert hp.dump(walker(k)) == before
    finally:
        k.hw.write64(addr, e)


def test_entries_match_the_kernel_walk(k):
    from kernel_py.arch.x86 import ptdump as kp
    assert hp.entries(walker(k)) == kp.walk(k.hw, k.init_mm.pgd)


def test_filters(k):
    w = walker(k)
    ents = hp.entries(w)
    text = [e for e in hp.select(ents, "x") if e[0] >= KERNEL_SPACE]
    assert text and all(not e[2] & _PAGE_NX and not e[2] & _PAGE_RW for e in text)
    assert all(e[0] >= KERNEL_BASE for e in text)
    rw = hp.select(ents, "RW,NX")
    assert rw and all(e[2] & _PAGE_RW and e[2] & _PAGE_NX for e in rw)
    assert hp.select(ents, "!NX") == text
    assert hp.select(ents, user=True) == []
    assert hp.select(ents, wx=True) == []
    big = hp.select(ents, "2M")
    assert big and all(e[3] == 2 and e[2] & _PAGE_PSE for e in big)
    assert hp.select(ents, "!2M,!4K,!1G") == []
    with pytest.raises(ValueError):
        hp.parse_flags("RW,BOGUS")
    # a range
    d = hp.dump(w, start=KERNEL_BASE)
    assert d.startswith("---[ High Kernel Mapping ]---") and "ffff8880" not in d


def test_check_wx_reports_wx_and_user_kernel_pages(k):
    ents = hp.entries(walker(k))
    assert hp.check_wx(ents).ok
    pa = k.buddy.alloc_pages(0, 0)
    pb = k.buddy.alloc_pages(0, 0)
    root = k.init_mm.pgd
    k.pgtable.map(root, WX_VA, pa, _PAGE_RW)                      # W+X
    k.pgtable.map(root, WX_VA + PAGE_SIZE, pb, _PAGE_NX | _PAGE_USER | _PAGE_RW)
    try:
        r = hp.check_wx(hp.entries(walker(k)))
        assert not r.ok
        assert [x[0] for x in r.wx] == [WX_VA]
        assert [x[0] for x in r.user_kernel] == [WX_VA + PAGE_SIZE]
        text = str(r)
        assert "Found insecure W+X mapping at address 0x%016x" % WX_VA in text
        assert "Checked W+X mappings: FAILED, 1 W+X pages found." in text
        assert "user-accessible kernel mappings: FAILED, 1 pages found." in text
        # the command line: exit status 1, the W+X filter shows just that page
        args = hp.build_parser().parse_args(["--check-wx", "--wx", "--cr3", hex(root)])
        out = io.StringIO()
        m = SimMachine(k)
        assert hp.run(m, args, out) == 1
        assert m.paused == 0
        lines = out.getvalue().split("\n")
        shown = [l for l in lines if l.startswith("0x")]
        assert len(shown) == 1 and shown[0].startswith(
            "0x%016x-0x%016x           4K     RW " % (WX_VA, WX_VA + PAGE_SIZE))
        assert shown[0].endswith(" x  pte") and "GLB" not in shown[0]
        args = hp.build_parser().parse_args(["--check-only", "--user", "--cr3", hex(root)])
        out = io.StringIO()
        assert hp.run(m, args, out) == 1
        assert not [l for l in out.getvalue().split("\n") if l.startswith("0x")]
    finally:
        k.pgtable.unmap(root, WX_VA, free_tables=False)
        k.pgtable.unmap(root, WX_VA + PAGE_SIZE, free_tables=True)
        k.buddy.free_pages(pa, 0)
        k.buddy.free_pages(pb, 0)
    assert hp.check_wx(hp.entries(walker(k))).ok
    args = hp.build_parser().parse_args(["--check-wx", "--kernel"])
    out = io.StringIO()
    assert hp.run(SimMachine(k), args, out) == 0
    assert out.getvalue().startswith("---[ Kernel Space ]---")
