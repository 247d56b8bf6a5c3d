"""The slab console commands and /proc files, through the kernel's shell."""

import pytest

from kernel_py.kernel.kernel import Kernel
from kernel_py.shell.shell import Shell
import kernel_py.shell.all  # noqa: F401
from kernel_py.sim.machine import Machine


def shell(cmdline=""):
    hw = Machine(64 << 20, cmdline, console=lambda text: None)
    k = Kernel(hw, console=lambda msg: None)
    k.boot()
    return k, Shell(k)


@pytest.mark.parametrize("backend", ["slab", "slub", "slob"])
def test_boot_selects_backend(backend):
    k, sh = shell("slab=%s" % backend)
    assert k.slab.default_backend == backend
    assert any(("slab: %s allocator" % backend.upper()) in line for line in k.log)


def test_kmalloc_kfree_commands():
    k, sh = shell()
    addr = sh.execute("kmalloc 100")
    assert addr.startswith("0xffff888")
    line = [l for l in sh.execute("cat /proc/slabinfo").splitlines() if l.startswith("kmalloc-128 ")][0]
    assert line.split()[1] == "1"
    assert sh.execute("kfree %s" % addr) == ""
    assert sh.execute("kfree %s" % addr).startswith("error: EINVAL: double free")
    assert sh.execute("kfree 0x1234").startswith("error: EINVAL")
    assert sh.execute("kmalloc 64 GFP_ATOMIC|__GFP_ZERO").startswith("0x")
    assert sh.execute("kmalloc 64 DMA").startswith("0x")
    assert sh.execute("kmalloc abc").startswith("error: EINVAL")


def test_kmem_cache_commands():
    k, sh = shell()
    out = sh.execute("kmem_cache_create my_cache 200 64 slab")
    assert out.startswith("my_cache: slab, object 200 bytes")
    a = sh.execute("kmem_cache_alloc my_cache")
    assert int(a, 16) % 64 == 0
    assert "my_cache" in sh.execute("cat /proc/slabinfo")
    assert sh.execute("kmem_cache_destroy my_cache").startswith("error: EBUSY")
    assert sh.execute("kmem_cache_free my_cache %s" % a) == ""
    assert sh.execute("kmem_cache_shrink my_cache") == ""
    assert sh.execute("kmem_cache_destroy my_cache") == ""
    assert "my_cache" not in sh.execute("cat /proc/slabinfo")
    assert sh.execute("kmem_cache_alloc my_cache").startswith("error: ENOENT")


def test_slabtop():
    k, sh = shell()
    sh.execute("kmalloc 30")
    out = sh.execute("slabtop -o").splitlines()
    assert out[0].startswith(" Active / Total Objects (% used)    : ")
    assert out[6].split() == ["OBJS", "ACTIVE", "USE", "OBJ", "SIZE", "SLABS", "OBJ/SLAB", "CACHE", "SIZE", "NAME"]
    assert any(l.endswith(" kmalloc-32") for l in out[7:])


def test_slub_debug_on_cmdline():
    k, sh = shell("slub_debug")
    a = sh.execute("kmalloc 64")
    pa = int(a, 16) - 0xFFFF888000000000
    k.hw.write8(pa + 64, 0x41)
    out = sh.execute("kfree %s" % a)
    assert out.startswith("error: EFAULT: BUG kmalloc-64: Redzone overwritten")
    assert "BUG kmalloc-64: Redzone overwritten" in "\n".join(k.log)
