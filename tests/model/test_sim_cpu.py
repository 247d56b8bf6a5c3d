"""The simulated machine's CPU registers, ports, exit and hot-path speed."""

import time

import pytest

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.sim import Machine
from kernel_py.sim.ports import PortBus

MiB = 1 << 20


@pytest.fixture
def m():
    return Machine(32 * MiB, console=lambda s: None)


class Recorder:
    def __init__(self, reply=0):
        self.reply = reply
        self.log = []

    def port_read(self, port, width):
        self.log.append(("r", port, width))
        return self.reply

    def port_write(self, port, width, value):
        self.log.append(("w", port, width, value))


def test_rdtsc_strictly_increasing(m):
    ts = [m.rdtsc() for _ in range(1000)]
    assert all(a < b for a, b in zip(ts, ts[1:]))
    t0 = m.rdtsc()
    time.sleep(0.01)
    assert m.rdtsc() - t0 >= 5_000_000          # ns


def test_cr3_roundtrip_and_flush(m):
    cr3 = m.read_cr3()
    m.vread64(DIRECT_MAP_BASE)
    assert len(m.tlb) > 0
    m.write_cr3(cr3)
    assert m.read_cr3() == cr3
    assert len(m.tlb) == 0


def test_unclaimed_ports_float_high(m):
    assert m.inb(0x80) == 0xFF
    assert m.inw(0x80) == 0xFFFF
    assert m.inl(0x80) == 0xFFFFFFFF
    m.outb(0x80, 1)                      # dropped


def test_attach_port_dispatch_and_widths(m):
    dev = Recorder(reply=0x1234_5678_9A)
    m.attach_port(range(0x1F0, 0x1F8), dev)
    assert m.inb(0x1F7) == 0x9A
    assert m.inw(0x1F0) == 0x789A
    assert m.inl(0x1F0) == 0x3456789A
    m.outb(0x1F2, 0x1FF)
    m.outw(0x1F0, 0x12345)
    m.outl(0x1F0, -1)
    assert dev.log[3:] == [("w", 0x1F2, 1, 0xFF), ("w", 0x1F0, 2, 0x2345),
                           ("w", 0x1F0, 4, 0xFFFFFFFF)]
    assert m.inb(0x1F8) == 0xFF          # outside the range


def test_attach_port_conflicts_and_bounds(m):
    m.attach_port(0x60, Recorder())
    with pytest.raises(ValueError):
        m.attach_port(range(0x5F, 0x62), Recorder())
    with pytest.raises(ValueError):
        m.attach_port(0x10000, Recorder())
    assert m.inb(0x5F) == 0xFF           # nothing half-attached


def test_insw_outsw_move_words_through_physical_memory(m):
    words = iter(range(0x100, 0x200))

    class Source(Recorder):
        def port_read(self, port, width):
            return next(words)

    sink = Recorder()
    m.attach_port(0x1F0, Source())
    m.attach_port(0x170, sink)
    m.insw(0x1F0, 0x100000, 4)
    assert m.readbytes(0x100000, 8) == bytes([0, 1, 1, 1, 2, 1, 3, 1])
    m.outsw(0x170, 0x100000, 4)
    assert [e[3] for e in sink.log] == [0x100, 0x101, 0x102, 0x103]
    assert all(e[:3] == ("w", 0x170, 2) for e in sink.log)


def test_exit_raises_system_exit(m):
    with pytest.raises(SystemExit) as ei:
        m.exit(0)
    assert ei.value.code == 0
    with pytest.raises(SystemExit) as ei:
        m.exit(5)
    assert ei.value.code == 5
    with pytest.raises(SystemExit) as ei:
        m.outb(0xF4, 2)                  # the device, reached directly
    assert ei.value.code == 2


def test_port_bus_is_per_machine():
    a, b = Machine(16 * MiB), Machine(16 * MiB)
    a.attach_port(0x3F8, Recorder(7))
    assert a.inb(0x3F8) == 7 and b.inb(0x3F8) == 0xFF
    assert isinstance(a.ports, PortBus)


def test_hot_paths_are_fast(m):
    """Loose bounds: physical 64-bit accesses and TLB-hit virtual ones must
    stay in the few-hundred-nanosecond range on the host."""
    read64, write64 = m.read64, m.write64
    vread64, vwrite64 = m.vread64, m.vwrite64
    va = DIRECT_MAP_BASE + 0x100000
    vwrite64(va, 1)
    n = 20000
    t = time.perf_counter()
    for i in range(n):
        write64(0x100000, i)
        read64(0x100000)
    phys = (time.perf_counter() - t) / n / 2
    t = time.perf_counter()
    for i in range(n):
        vwrite64(va, i)
        vread64(va)
    virt = (time.perf_counter() - t) / n / 2
    assert phys < 2e-6 and virt < 5e-6, (phys, virt)
