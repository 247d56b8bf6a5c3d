"""The simulated machine's boot state: firmware map, reserved ranges, kernel
sections, control registers and the boot page tables."""

import pytest

from kernel_py.arch.x86 import layout
from kernel_py.arch.x86.layout import (
    DIRECT_MAP_BASE, KERNEL_BASE, E820_RAM, E820_RESERVED, BOOT_IDENTITY_SIZE,
)
from kernel_py.sim import Machine
from kernel_py.sim.walk import R_EXEC, R_USER, R_WRITE
from kernel_py.arch.x86.cpu import (
    CR0_PG, CR0_WP, CR4_PAE, CR4_PGE, EFER_NXE, PMD_SIZE, PAGE_SIZE,
)

MiB = 1 << 20
GiB = 1 << 30


def machine(size=128 * MiB, **kw):
    return Machine(size, console=lambda s: None, **kw)


def ram(m):
    return [(b, b + n) for b, n, t in m.memory_map() if t == E820_RAM]


def test_control_registers():
    m = machine()
    assert m.read_cr0() & (CR0_PG | CR0_WP) == CR0_PG | CR0_WP
    assert m.read_cr4() & (CR4_PAE | CR4_PGE) == CR4_PAE | CR4_PGE
    assert m.read_efer() & EFER_NXE
    assert m.read_cr2() == 0


def test_cmdline_and_accel():
    m = Machine(16 * MiB, cmdline="slab=slub loglevel=7")
    assert m.cmdline() == "slab=slub loglevel=7"
    assert Machine(16 * MiB).cmdline() == ""
    assert m.accel() == "sim"


def test_memory_map_128m_like_qemu_pc():
    m = machine(128 * MiB)
    mm = m.memory_map()
    assert (0, 0x9FC00, E820_RAM) in mm
    assert (0x9FC00, 0x400, E820_RESERVED) in mm
    assert (0xF0000, 0x10000, E820_RESERVED) in mm
    assert (0xFFFC0000, 0x40000, E820_RESERVED) in mm
    assert ram(m) == [(0, 0x9FC00), (MiB, 128 * MiB - (128 << 10))]


@pytest.mark.parametrize("size,low,high", [
    (3 * GiB, 3 * GiB, 0),                        # below 3.5 GiB: all low
    (0xE0000000, 3 * GiB, 0xE0000000 - 3 * GiB),  # 3.5 GiB: split at 3 GiB
    (6 * GiB, 3 * GiB, 3 * GiB),
])
def test_memory_map_above_4g(size, low, high):
    m = machine(size)
    r = ram(m)
    assert r[1][1] == low - (128 << 10)
    total = sum(e - b for b, e in r)
    assert total == 0x9FC00 + (low - (128 << 10) - MiB) + high
    assert low + high == size
    if high:
        assert r[-1] == (4 * GiB, 4 * GiB + high)
    else:
        assert r[-1][1] < 4 * GiB


def test_memory_map_sorted_disjoint():
    for size in (16 * MiB, 128 * MiB, 5 * GiB):
        mm = machine(size).memory_map()
        for (b0, n0, _), (b1, n1, _) in zip(mm, mm[1:]):
            assert b0 + n0 <= b1


def test_reserved_ranges():
    m = machine()
    res = {name: (s, e) for s, e, name in m.reserved()}
    assert set(res) >= {"kernel", "heap", "stack", "boot-tables", "firmware"}
    ks, ke = res["kernel"]
    assert ks == MiB and ke - ks == 4 * MiB
    for inner in ("heap", "stack"):
        s, e = res[inner]
        assert ks <= s < e <= ke
    assert res["firmware"] == (0, MiB)       # as the guest: all below the image
    bs, be = res["boot-tables"]
    assert be > bs and (bs >= ke or be <= ks)
    assert m.read_cr3() & ~0xFFF >= bs and m.read_cr3() < be
    for s, e, name in m.reserved():    # the rest lies inside RAM
        if name != "firmware":
            assert any(b <= s and e <= t for b, t in ram(m)), name


def test_kernel_sections():
    m = machine()
    secs = {n: (vs, ve, ps) for n, vs, ve, ps in m.kernel_sections()}
    # hw.md's five, plus the guard page the guest also reports
    assert list(secs) == ["text", "rodata", "data", "bss", "stack-guard", "stack"]
    ks, ke = [(s, e) for s, e, n in m.reserved() if n == "kernel"][0]
    for name, (vs, ve, ps) in secs.items():
        assert vs == KERNEL_BASE + ps
        assert vs % PAGE_SIZE == 0 and ve % PAGE_SIZE == 0 and ve > vs
        assert ks <= ps and ps + (ve - vs) <= ke
    order = ["text", "rodata", "data", "bss"]
    for a, b in zip(order, order[1:]):
        assert secs[a][1] <= secs[b][0]
    bss, guard, stack = secs["bss"], secs["stack-guard"], secs["stack"]
    # the stack, and a guard page below it, lie inside bss
    assert guard[1] == stack[0] and guard[1] - guard[0] == PAGE_SIZE
    assert bss[0] <= guard[0] and stack[1] <= bss[1]
    # the reserved "stack" range covers guard and stack, as on the guest
    res = {name: (s, e) for s, e, name in m.reserved()}
    assert res["stack"] == (guard[2], stack[2] + stack[1] - stack[0])


@pytest.mark.parametrize("size", [128 * MiB, 6 * GiB])
def test_boot_direct_map_covers_all_ram(size):
    m = machine(size)
    for b, e in ram(m):
        for pa in (b, (b + e) // 2 & ~7, e - 8):
            w = m.probe(DIRECT_MAP_BASE + pa)
            assert w.pa == pa and w.size == PMD_SIZE
            assert w.rights & R_WRITE and not w.rights & R_USER
            assert not w.rights & R_EXEC          # direct map is NX
    m.write64(e - 8, 0xFEEDFACE)
    assert m.vread64(DIRECT_MAP_BASE + e - 8) == 0xFEEDFACE


def test_boot_identity_map_and_kernel_image():
    m = machine()
    for va in (0, 0x1000, 100 * MiB, BOOT_IDENTITY_SIZE - PAGE_SIZE):
        w = m.probe(va)
        assert w.pa == va and w.size == PMD_SIZE
    assert m.probe(BOOT_IDENTITY_SIZE).pa is None
    for n, vs, ve, ps in m.kernel_sections():
        w = m.probe(vs)
        assert w.pa == ps and w.size == PMD_SIZE and w.rights & R_EXEC
    m.write32(0x300000, 0xC0DE)
    assert m.vread32(KERNEL_BASE + 0x300000) == 0xC0DE
    assert m.vread32(0x300000) == 0xC0DE
    assert m.vread32(layout.phys_to_virt(0x300000)) == 0xC0DE


def test_boot_tables_have_no_user_or_global_entries():
    m = machine()
    s, e = [(s, e) for s, e, n in m.reserved() if n == "boot-tables"][0]
    for pa in range(s, e, 8):
        v = m.read64(pa)
        assert not v & 0x4, hex(pa)     # US
        assert not v & 0x100, hex(pa)   # G
