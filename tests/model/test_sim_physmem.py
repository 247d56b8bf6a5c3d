"""The simulated machine's physical memory: accessors, bounds, views."""

import pytest
from hypothesis import given, settings, strategies as st

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE, DIRECT_MAP_SIZE
from kernel_py.sim import Machine, Fault
from kernel_py.sim import machine as machine_mod
from kernel_py.arch.x86.cpu import PF_WRITE, VEC_PF

MiB = 1 << 20


@pytest.fixture(scope="module")
def m():
    return Machine(64 * MiB, console=lambda s: None)


def test_fault_class_exported():
    assert Machine.Fault is Fault
    assert machine_mod.Fault is Fault
    assert issubclass(Fault, Exception)
    f = Fault(14, 2, 0x1234, 0x5678)
    assert f.args == (14, 2, 0x1234, 0x5678)
    assert (f.vector, f.error_code, f.address, f.rip) == (14, 2, 0x1234, 0x5678)


@pytest.mark.parametrize("width", [8, 16, 32, 64])
def test_read_write_widths_little_endian(m, width):
    pa = 0x800000
    m.fill(pa, 0, 16)
    write = getattr(m, "write%d" % width)
    read = getattr(m, "read%d" % width)
    value = 0x0123456789ABCDEF & ((1 << width) - 1)
    write(pa, value)
    assert read(pa) == value
    assert m.readbytes(pa, width // 8) == value.to_bytes(width // 8, "little")
    assert m.read8(pa + width // 8) == 0      # nothing beyond the width


@pytest.mark.parametrize("width", [8, 16, 32, 64])
def test_write_truncates_to_width(m, width):
    pa = 0x801000
    m.fill(pa, 0, 16)
    getattr(m, "write%d" % width)(pa, (1 << width) | 5)
    assert getattr(m, "read%d" % width)(pa) == 5
    getattr(m, "write%d" % width)(pa, -1)
    assert getattr(m, "read%d" % width)(pa) == (1 << width) - 1
    assert m.read8(pa + width // 8) == 0


@settings(max_examples=200, deadline=None)
@given(pa=st.integers(0, 64 * MiB - 8), v=st.integers(0, (1 << 64) - 1))
def test_read64_after_write64(m, pa, v):
    m.write64(pa, v)
    assert m.read64(pa) == v
    assert m.read32(pa) == v & 0xFFFFFFFF
    assert m.read16(pa + 6) == v >> 48


def test_fill_copy_bytes(m):
    m.fill(0x900000, 0xAB, 100)
    assert m.readbytes(0x900000, 101) == b"\xab" * 100 + b"\x00"
    m.writebytes(0x900010, b"hello")
    m.writebytes(0x900020, bytearray(b"BA"))
    m.writebytes(0x900030, memoryview(b"mv"))
    assert m.readbytes(0x900010, 5) == b"hello"
    assert m.readbytes(0x900020, 2) == b"BA"
    assert m.readbytes(0x900030, 2) == b"mv"
    m.copy(0x900100, 0x900010, 5)
    assert m.readbytes(0x900100, 5) == b"hello"


def test_copy_is_memmove(m):
    m.writebytes(0xA00000, bytes(range(16)))
    m.copy(0xA00004, 0xA00000, 8)           # overlapping, forwards
    assert m.readbytes(0xA00000, 16) == bytes([0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15])
    m.writebytes(0xA00000, bytes(range(16)))
    m.copy(0xA00000, 0xA00004, 8)           # overlapping, backwards
    assert m.readbytes(0xA00000, 12) == bytes([4, 5, 6, 7, 8, 9, 10, 11, 8, 9, 10, 11])


def test_mem_view_is_live_and_writable(m):
    v = m.mem(0xB00000, 16)
    assert isinstance(v, memoryview) and len(v) == 16 and not v.readonly
    v[0:4] = b"\x01\x02\x03\x04"
    assert m.read32(0xB00000) == 0x04030201
    m.write8(0xB00005, 0x77)
    assert v[5] == 0x77


def test_untouched_memory_is_zero():
    m = Machine(4 << 30, console=lambda s: None)
    # 4 GiB on a pc machine: 3 GiB below the PCI hole, 1 GiB above 4 GiB
    assert m.phys_size == 5 << 30
    assert m.read64((5 << 30) - 8) == 0
    m.write64((5 << 30) - 8, 7)
    assert m.read64((5 << 30) - 8) == 7


def test_big_machine_is_cheap():
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    before = rss()
    m = Machine(8 << 30, console=lambda s: None)
    m.write64((8 << 30) - 8, 1)
    assert rss() - before < 256 * MiB
    del m


@pytest.mark.parametrize("call,write", [
    (lambda m, pa: m.read8(pa), False),
    (lambda m, pa: m.read16(pa), False),
    (lambda m, pa: m.read32(pa), False),
    (lambda m, pa: m.read64(pa), False),
    (lambda m, pa: m.write8(pa, 1), True),
    (lambda m, pa: m.write16(pa, 1), True),
    (lambda m, pa: m.write32(pa, 1), True),
    (lambda m, pa: m.write64(pa, 1), True),
    (lambda m, pa: m.readbytes(pa, 4), False),
    (lambda m, pa: m.writebytes(pa, b"x"), True),
    (lambda m, pa: m.fill(pa, 0, 4), True),
    (lambda m, pa: m.mem(pa, 4), False),
    (lambda m, pa: m.copy(pa, 0, 4), True),
    (lambda m, pa: m.copy(0x100000, pa, 4), False),
])
def test_outside_memory_raises_fault(m, call, write):
    size = m.phys_size
    for pa in (size, size + 0x1000):
        with pytest.raises(Fault) as ei:
            call(m, pa)
        vec, err, addr, rip = ei.value.args
        assert vec == VEC_PF
        assert err == (PF_WRITE if write else 0)
        assert addr == DIRECT_MAP_BASE + pa      # the first byte outside
        assert m.read_cr2() == addr


@pytest.mark.parametrize("call", [
    lambda m, pa: m.read8(pa), lambda m, pa: m.read64(pa),
    lambda m, pa: m.write8(pa, 0), lambda m, pa: m.write32(pa, 0),
    lambda m, pa: m.fill(pa, 0, 4), lambda m, pa: m.readbytes(pa, 4),
    lambda m, pa: m.writebytes(pa, b"ab"), lambda m, pa: m.mem(pa, 4),
    lambda m, pa: m.copy(0, pa, 4), lambda m, pa: m.copy(pa, 0, 4),
])
def test_outside_the_direct_map_window_is_value_error(m, call):
    """As the guest's hw module: a negative address or one past the 64 TiB
    direct-map window is an argument error, not a fault."""
    for pa in (-8, -1, DIRECT_MAP_SIZE, DIRECT_MAP_SIZE + 8):
        with pytest.raises(ValueError):
            call(m, pa)


def test_direct_map_window_edge(m):
    with pytest.raises(ValueError):
        m.read64(DIRECT_MAP_SIZE - 4)        # would run past the window
    with pytest.raises(Fault):
        m.read8(DIRECT_MAP_SIZE - 1)         # inside it: no RAM there


def test_straddling_end_faults_at_first_outside_byte(m):
    size = m.phys_size
    m.write32(size - 4, 0)
    with pytest.raises(Fault) as ei:
        m.read64(size - 4)
    assert ei.value.address == DIRECT_MAP_BASE + size
    with pytest.raises(Fault):
        m.fill(size - 4, 0xEE, 8)
    # the bytes inside memory were written before the fault (hw.md)
    assert m.read32(size - 4) == 0xEEEEEEEE
    with pytest.raises(Fault):
        m.writebytes(size - 2, b"abcd")
    assert m.readbytes(size - 2, 2) == b"ab"
    assert len(m.readbytes(0, 0)) == 0


def test_physical_fault_prints_oops(capsys):
    m = Machine(16 * MiB)
    with pytest.raises(Fault):
        m.read64(m.phys_size)
    out = capsys.readouterr().out
    assert "BUG: unable to handle page fault" in out
    assert "Oops: 0000 [#1]" in out
    assert m.oops_count == 1


def test_physical_fault_consults_the_handler():
    """The guest's physical accessors load through the direct map inside
    the uaccess code, so their #PF reaches the handler too."""
    m = Machine(16 * MiB, console=lambda s: None, retry_limit=20)
    calls = []
    m.set_fault_handler(lambda *a: calls.append(a) or False)
    with pytest.raises(Fault) as ei:
        m.write64(m.phys_size, 1)
    va = DIRECT_MAP_BASE + m.phys_size
    assert calls == [(va, PF_WRITE, ei.value.rip)]
    assert ei.value.args[:3] == (VEC_PF, PF_WRITE, va)
    # True retries, but memory never appears: the retry limit ends it
    calls.clear()
    m.set_fault_handler(lambda *a: calls.append(a) or True)
    with pytest.raises(Fault):
        m.read8(m.phys_size)
    assert len(calls) == 20
    # a view is not protected: no handler, an oops at once
    calls.clear()
    with pytest.raises(Fault):
        m.mem(m.phys_size - 2, 4)
    assert calls == []


def test_machines_are_independent():
    a = Machine(16 * MiB, console=lambda s: None)
    b = Machine(16 * MiB, console=lambda s: None)
    a.write64(0x700000, 42)
    assert b.read64(0x700000) == 0
