"""#PF delivery from the virtual accessors (docs/hw.md "Faults"): the
handler's answer, retries, nested faults, oopses, and trap()."""

import pytest

from kernel_py.arch.x86.layout import KERNEL_BASE
from kernel_py.sim import Machine, Fault
from kernel_py.sim.pagetable import Builder
from kernel_py.arch.x86.cpu import (
    PF_PROT, PF_WRITE, PAGE_SIZE, VEC_BP, VEC_DE, VEC_GP, VEC_PF, VEC_UD,
    _PAGE_PRESENT as P, _PAGE_RW as RW,
)

MiB = 1 << 20
VA = 0x0000_0000_2000_0000
F1 = 0x4000000


def space(**kw):
    kw.setdefault("console", lambda s: None)
    m = Machine(128 * MiB, **kw)
    b = Builder(m, 0x2000000, 0x3000000)
    m.write_cr3(b.pml4)
    return m, b


@pytest.fixture
def mb():
    return space()


def text_range(m):
    return [(vs, ve) for n, vs, ve, ps in m.kernel_sections() if n == "text"][0]


def test_no_handler_raises_fault_with_args(mb):
    m, b = mb
    with pytest.raises(Fault) as ei:
        m.vwrite32(VA + 4, 1)
    vec, err, addr, rip = ei.value.args
    assert (vec, err, addr) == (VEC_PF, PF_WRITE, VA + 4)
    assert m.read_cr2() == VA + 4
    lo, hi = text_range(m)
    assert lo <= rip < hi


def test_handler_maps_and_retries(mb):
    m, b = mb
    calls = []

    def handler(va, err, rip):
        calls.append((va, err, rip))
        assert m.read_cr2() == va
        b.map(va & ~0xFFF, F1, flags=P | RW)
        return True

    m.set_fault_handler(handler)
    m.write64(F1 + 8, 0xDEAD)
    assert m.vread64(VA + 8) == 0xDEAD
    assert [(va, err) for va, err, rip in calls] == [(VA + 8, 0)]
    assert m.vread64(VA + 8) == 0xDEAD      # no second fault
    assert len(calls) == 1


@pytest.mark.parametrize("answer", [False, None, 0])
def test_handler_declines(mb, answer):
    m, b = mb
    calls = []
    m.set_fault_handler(lambda *a: calls.append(a) or answer)
    with pytest.raises(Fault) as ei:
        m.vread8(VA)
    assert ei.value.args[:3] == (VEC_PF, 0, VA)
    assert len(calls) == 1


def test_handler_exception_becomes_fault(mb):
    m, b = mb

    def handler(va, err, rip):
        raise KeyError("boom")

    m.set_fault_handler(handler)
    with pytest.raises(Fault) as ei:
        m.vread8(VA)
    assert isinstance(ei.value.__cause__, KeyError)
    assert ei.value.args[:3] == (VEC_PF, 0, VA)


def test_unregistering_the_handler(mb):
    m, b = mb
    m.set_fault_handler(lambda *a: True)
    m.set_fault_handler(None)
    with pytest.raises(Fault):
        m.vread8(VA)


def test_handler_that_fixes_nothing_is_bounded():
    m, b = space(retry_limit=50)
    calls = []
    m.set_fault_handler(lambda *a: calls.append(a) or True)
    with pytest.raises(Fault) as ei:
        m.vread8(VA)
    assert ei.value.args[:3] == (VEC_PF, 0, VA)
    assert len(calls) == 50


def test_default_retry_limit_is_finite(mb):
    m, b = mb
    n = [0]

    def handler(*a):
        n[0] += 1
        return True

    m.set_fault_handler(handler)
    with pytest.raises(Fault):
        m.vread8(VA)
    assert 100 <= n[0] <= 100000


def test_handler_may_take_several_tries(mb):
    m, b = mb
    seen = []

    def handler(va, err, rip):
        seen.append(err)
        if len(seen) == 1:      # first: map it read-only
            b.map(VA, F1, flags=P)
        else:                   # then: make it writable (4.10.4.3: no invlpg
            b.map(VA, F1, flags=P | RW)   # needed, the fault dropped it)
        return True

    m.set_fault_handler(handler)
    m.vwrite64(VA, 9)
    assert seen == [PF_WRITE, PF_PROT | PF_WRITE]
    assert m.read64(F1) == 9


def test_nested_faults(mb):
    """The handler touches another missing page; the inner fault is handled
    by the same handler, then the outer access completes."""
    m, b = mb
    log = []
    other = VA + 0x100000

    def handler(va, err, rip):
        log.append(va)
        page = va & ~0xFFF
        if page == VA:
            b.map(VA, F1, flags=P | RW)
            m.vwrite64(other + 16, 0x77)                 # nested fault
            m.write8(F1, 0x42)                           # physical accessor
        else:
            b.map(page, F1 + PAGE_SIZE, flags=P | RW)
        return True

    m.set_fault_handler(handler)
    assert m.vread8(VA) == 0x42
    assert log == [VA, other + 16]
    assert m.read64(F1 + PAGE_SIZE + 16) == 0x77
    assert m.read_cr2() == other + 16         # CR2 holds the latest fault


def test_nested_unhandled_fault_fails_the_outer_access(mb):
    m, b = mb

    def handler(va, err, rip):
        if va == VA:
            m.vread8(VA + 0x5000)             # not handled below
            return True
        return False

    m.set_fault_handler(handler)
    with pytest.raises(Fault) as ei:
        m.vread8(VA)
    assert ei.value.address == VA
    assert isinstance(ei.value.__cause__, Fault)
    assert ei.value.__cause__.address == VA + 0x5000


def test_partial_write_then_handler_completes_it(mb):
    m, b = mb
    b.map(VA, F1, flags=P | RW)
    m.set_fault_handler(lambda va, e, r: b.map(va & ~0xFFF, F1 + PAGE_SIZE,
                                               flags=P | RW) or True)
    m.vwritebytes(VA + PAGE_SIZE - 2, b"wxyz")
    assert m.readbytes(F1 + PAGE_SIZE - 2, 2) == b"wx"
    assert m.readbytes(F1 + PAGE_SIZE, 2) == b"yz"


def test_oops_printed_when_unhandled(capsys):
    m = Machine(32 * MiB)
    m.write_cr3(Builder(m, 0x1000000, 0x1100000).pml4)
    with pytest.raises(Fault):
        m.vwrite8(0x1000, 1)
    out = capsys.readouterr().out
    assert "unable to handle page fault for address: 0000000000001000" in out
    assert "#PF: supervisor write access in kernel mode" in out
    assert "error_code(0x0002) - not-present page" in out
    assert m.oops_count == 1


def test_handled_fault_prints_nothing(capsys):
    m = Machine(32 * MiB)
    b = Builder(m, 0x1000000, 0x1100000)
    m.write_cr3(b.pml4)
    m.set_fault_handler(lambda va, e, r: b.map(va & ~0xFFF, 0x1800000) or True)
    m.vread8(0x5000)
    assert capsys.readouterr().out == ""
    assert m.oops_count == 0


def test_system_exit_in_handler_propagates(mb):
    m, b = mb
    m.set_fault_handler(lambda *a: m.exit(3))
    with pytest.raises(SystemExit) as ei:
        m.vread8(VA)
    assert ei.value.code == 3


@pytest.mark.parametrize("kind,vector,err", [
    ("de", VEC_DE, 0), ("bp", VEC_BP, 0), ("ud", VEC_UD, 0),
    ("gp", VEC_GP, 0), ("pf", VEC_PF, PF_WRITE),
])
def test_trap(mb, kind, vector, err):
    m, b = mb
    calls = []
    m.set_fault_handler(lambda *a: calls.append(a) or True)
    m.cr2 = 0x1234
    with pytest.raises(Fault) as ei:
        m.trap(kind)
    v, e, addr, rip = ei.value.args
    assert (v, e) == (vector, err)
    if kind == "pf":
        assert addr == 0 and m.read_cr2() == 0
    else:
        assert m.read_cr2() == 0x1234
    assert rip >= KERNEL_BASE
    assert calls == []                       # outside any accessor
    assert m.oops_count == 1


def test_trap_unknown_kind(mb):
    m, b = mb
    with pytest.raises(ValueError):
        m.trap("nmi")
