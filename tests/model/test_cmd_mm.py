"""The physical-memory console: /proc files, alloc_pages/free_pages, pfdemo."""

import re

import pytest

import kernel_py.shell.all  # noqa: F401
from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.mm.page.zone import MAX_ORDER
from kernel_py.shell.cmd_mm import fragmentation_index
from kernel_py.shell.shell import Shell
from kernel_py.arch.x86.cpu import PAGE_SIZE, PTE_ADDR_MASK, _PAGE_USER

from mmsupport import boot, state


@pytest.fixture
def sh():
    k = boot(128 << 20)
    return Shell(k)


def run(sh, line):
    return sh.execute(line)


def test_buddyinfo_format(sh):
    lines = run(sh, "cat /proc/buddyinfo").split("\n")
    assert len(lines) == 2
    for ln, name in zip(lines, ("DMA", "DMA32")):
        assert re.match(r"^Node 0, zone %8s (\s*\d+ ){11}$" % name, ln), ln
    nums = [int(x) for x in lines[1].split()[4:]]
    assert nums == sh.kernel.zones[1].nr_free()


def test_alloc_free_commands_change_buddyinfo(sh):
    before = run(sh, "cat /proc/buddyinfo")
    pa = run(sh, "alloc_pages 3 DMA")
    assert re.match(r"^0x[0-9a-f]+$", pa) and int(pa, 16) < 16 << 20
    assert run(sh, "cat /proc/buddyinfo") != before
    assert run(sh, "free_pages %s 3" % pa) == ""
    assert run(sh, "cat /proc/buddyinfo") == before
    assert run(sh, "free_pages %s 3" % pa).startswith("error: EINVAL")
    assert run(sh, "alloc_pages 0 GFP_ATOMIC|__GFP_ZERO").startswith("0x")
    assert run(sh, "alloc_pages 0 __GFP_BOGUS").startswith("error: EINVAL")
    assert run(sh, "alloc_pages 11").startswith("error: EINVAL")
    assert run(sh, "alloc_pages x").startswith("error: EINVAL")
    assert run(sh, "free_pages 0x1000").startswith("error: EINVAL")


def test_enomem_line(sh):
    k = sh.kernel
    out = ""
    for _ in range(200):
        out = run(sh, "alloc_pages %d DMA" % MAX_ORDER)
        if not out.startswith("0x"):
            break
    assert out == "error: ENOMEM"
    before = state(k)
    assert run(sh, "alloc_pages %d DMA" % MAX_ORDER) == "error: ENOMEM"
    assert state(k) == before


def test_zoneinfo_meminfo_vmstat(sh):
    k = sh.kernel
    z = run(sh, "cat /proc/zoneinfo")
    dma = k.zones[0]
    assert "Node 0, zone      DMA\n  pages free     %d\n" % dma.free_pages in z
    for key, val in (("min", dma.min_wmark()), ("low", dma.low_wmark()), ("high", dma.high_wmark()),
                     ("spanned", dma.spanned_pages), ("present", dma.present_pages),
                     ("managed", dma.managed_pages)):
        assert "\n        %-8s %d\n" % (key, val) in z
    m = dict(re.findall(r"^(\w+):\s+(\d+) kB$", run(sh, "cat /proc/meminfo"), re.M))
    assert int(m["MemTotal"]) == k.buddy.managed_pages() * 4
    assert int(m["MemFree"]) == k.buddy.nr_free_pages() * 4
    assert 0 < int(m["MemAvailable"]) < int(m["MemFree"])
    v0 = dict(l.split() for l in run(sh, "cat /proc/vmstat").split("\n"))
    pa = run(sh, "alloc_pages 2")
    run(sh, "free_pages %s 2" % pa)
    v1 = dict(l.split() for l in run(sh, "cat /proc/vmstat").split("\n"))
    assert int(v1["pgalloc_dma32"]) - int(v0["pgalloc_dma32"]) == 4
    assert int(v1["pgfree"]) - int(v0["pgfree"]) == 4


def test_extfrag_index(sh):
    out = run(sh, "cat /sys/kernel/debug/extfrag/extfrag_index").split("\n")
    assert out[0].startswith("Node 0, zone      DMA -1.000 ")
    # Linux's formula: 1000 - (1000 + free_pages*1000/requested) / free_blocks
    nr = [4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]          # 4 free pages, 4 blocks
    assert fragmentation_index(nr, 0) == -1000
    assert fragmentation_index(nr, 1) == 1000 - (1000 + 4 * 1000 // 2) // 4   # 250
    assert fragmentation_index([0] * 11, 3) == 0
    assert fragmentation_index([0, 0, 1] + [0] * 8, 3) == 1000 - (1000 + 500) // 1   # -500


def test_ptdump_files(sh):
    k = sh.kernel
    text = run(sh, "cat /sys/kernel/debug/page_tables/kernel")
    assert "---[ Low Kernel Mapping ]---" in text and "0xffff888000200000" in text
    assert "USR" not in text
    cur = run(sh, "cat /sys/kernel/debug/page_tables/current_kernel")
    assert cur == text[text.index("---[ Kernel Space ]---"):]
    assert run(sh, "cat /sys/kernel/debug/page_tables/current_user") == "---[ User Space ]---"


def test_pfdemo(sh):
    k = sh.kernel
    hw = k.hw
    free0 = k.buddy.nr_free_pages()
    out = run(sh, "pfdemo")
    m = re.match(r"^cr3=0x([0-9a-f]+) va=0x([0-9a-f]+) pa=0x([0-9a-f]+) faults=1$", out)
    assert m, out
    cr3, va, pa = (int(x, 16) for x in m.groups())
    assert hw.read_cr3() & PTE_ADDR_MASK == cr3 != k.init_mm.pgd
    assert hw.probe(va, cr3).pa == pa                # the MMU's own walk
    walker = pytest.importorskip("kpyqemu.walker")
    t = walker.PageWalker(cr3, hw.readbytes).translate(va)
    assert t.pa == pa and t.user
    assert hw.read64(pa) == hw.vread64(va) != 0
    # the kernel keeps running on the shared kernel half
    assert hw.vread64(DIRECT_MAP_BASE + pa) == hw.read64(pa)
    assert "USR RW" in run(sh, "cat /sys/kernel/debug/page_tables/current_user")
    assert re.match(r"^cr3=0x[0-9a-f]+ va=0x400000 pa=0x[0-9a-f]+ faults=1$", run(sh, "pfdemo"))
    assert run(sh, "pfdemo restore") == "cr3=0x%x" % k.init_mm.pgd
    assert k.buddy.nr_free_pages() == free0
    with pytest.raises(hw.Fault):
        hw.vread64(va)
