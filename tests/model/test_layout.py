"""guest/layout.h and kernel_py/arch/x86/layout.py: the address-space constants and
GDT selectors the C platform and the Python kernel both use agree."""

from cheader import defines

from kernel_py.arch.x86 import layout, cpu as x86
from kernel_py.sim import firmware

# The platform's own sizes: the kernel learns them at run time from
# hw.reserved() and hw.kernel_sections(), so arch/x86/layout.py does not repeat them.
C_ONLY = {"BOOT_DIRECT_GIB", "KSTACK_SIZE", "IST_STACK_SIZE", "VM_HEAP_MIN", "VM_HEAP_MAX",
          "VM_HEAP_RAM_SHIFT",
          "PYSTACK_SIZE", "HEAP_ALIGN"}
# Defined once on the Python side, elsewhere than arch/x86/layout.py.
ELSEWHERE = {
    "PAGE_SIZE": x86.PAGE_SIZE,
    "KERNEL_LOAD_PHYS": firmware.IMAGE_START,      # the sim loads its image there too
    "HEAP_MIN_PHYS": layout.DMA_LIMIT,             # the heap lies above ZONE_DMA
}


def test_every_define_agrees_with_python():
    c = defines("guest/layout.h")
    assert {"KERNEL_BASE", "DIRECT_MAP_BASE", "SEL_KCODE", "SEL_UCODE"} <= set(c)
    for name, value in c.items():
        if name in C_ONLY:
            continue
        if name in ELSEWHERE:
            assert ELSEWHERE[name] == value, name
            continue
        assert hasattr(layout, name), "%s is in guest/layout.h, not in arch/x86/layout.py" % name
        assert getattr(layout, name) == value, name
    assert C_ONLY | set(ELSEWHERE) <= set(c), "stale names in this test"


def test_selectors_fit_syscall_and_sysret():
    """SDM Vol. 2B: SYSCALL loads CS = STAR[47:32], SS = CS + 8; SYSRETQ
    loads SS = STAR[63:48] + 8 and CS = STAR[63:48] + 16, RPL 3."""
    star_k, star_u = layout.SEL_KCODE, layout.SEL_UCODE32
    assert layout.SEL_KDATA == star_k + 8
    assert layout.SEL_UDATA == star_u + 8
    assert layout.SEL_UCODE == star_u + 16
    for sel in (layout.SEL_UCODE32, layout.SEL_UDATA, layout.SEL_UCODE):
        assert sel & 3 == 3
    for sel in (layout.SEL_KCODE, layout.SEL_KDATA, layout.SEL_TSS):
        assert sel & 7 == 0
    # Linux's values (arch/x86/include/asm/segment.h), as user programs see them
    assert (layout.SEL_UCODE, layout.SEL_UDATA) == (0x33, 0x2B)
    assert layout.SEL_TSS > layout.SEL_UCODE


def test_the_files_cite_this_test():
    from cheader import ROOT
    assert "tests/model/test_layout.py" in (ROOT / "guest/layout.h").read_text()
    assert "tests/model/test_layout.py" in (ROOT / "kernel_py/arch/x86/layout.py").read_text()
    assert "tests/model/test_ptrace_layout.py" in (ROOT / "guest/ptrace.h").read_text()
