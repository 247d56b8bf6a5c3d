"""Every caller of the page and slab allocators survives their failure
(issue 7, item 3: "every caller handles failure: no crash, no leak").

Linux's fail_nth idea, through /proc/self/fail-nth: for each class of
caller, the Nth allocation inside one operation fails, for N = 1, 2, ...
until the operation runs through without reaching N. After every attempt
(failsupport.sweep): the answer is the output or one `error:` line from a
KernelError; the user page tables agree with the VMAs, RSS, refcounts,
rmap, LRU and swap map (mmcheck.check_all); and once the attempt's
leftovers are freed, frames by kind, slab active objects, swap slots,
vmalloc and kmalloc_large pages are the baseline's."""

import pytest

import swapsupport
from failsupport import NTH, snapshot, sweep
from fssupport import Box, make_fat, needs_mkfs
from mmcheck import boot
from pagedebugsupport import errors_in

BACKENDS = ["slub", "slab", "slob"]
MiB = 1 << 20


def expect(s, calls, errors=("ENOMEM",)):
    """Both sweeps saw at least `calls` allocations, and failures made
    the operation fail with these errors only (the others were absorbed:
    a fallback, a partial batch, a reserve)."""
    for mode, seen in s.items():
        assert seen.calls >= calls, (mode, seen.calls)
        assert seen.errors <= set(errors), (mode, seen.errors)
    assert s["from"].failed >= 1


def ok(run, line):
    out = run(line)
    assert not errors_in(out), (line, out)
    return out


def shell(cmdline=""):
    k, sh = boot(64 * MiB, cmdline)
    return k, sh.execute


# --- fail_nth itself ------------------------------------------------------------

def test_fail_nth_fails_exactly_the_nth_call_then_disarms():
    k, run = shell()
    ok(run, "echo N > /sys/kernel/debug/fail_page_alloc/ignore-gfp-wait")
    assert run("cat " + NTH) == "0"
    assert k.buddy.should_fail is None
    ok(run, "echo 3 > " + NTH)
    assert k.buddy.should_fail is not None and k.slab.area[255 * 16 + 2] == 1
    assert not errors_in(run("alloc_pages 1"))           # call 1
    assert not errors_in(run("alloc_pages 1"))           # call 2
    assert run("cat " + NTH) == "1"
    assert errors_in(run("alloc_pages 1")) == ["error: ENOMEM"]
    assert run("cat " + NTH) == "0"
    assert k.buddy.should_fail is None and k.slab.area[255 * 16 + 2] == 0   # disarmed
    assert not errors_in(run("alloc_pages 1"))
    assert k.fault_inject.fail_page_alloc.injected == 1
    for bad in ("echo -1 > " + NTH, "echo x > " + NTH):
        assert len(errors_in(run(bad))) == 1
    ok(run, "echo 5 > " + NTH)
    ok(run, "echo 0 > " + NTH)                           # 0 cancels
    assert k.buddy.should_fail is None


def test_fail_nth_keeps_the_filters():
    k, run = shell()
    ok(run, "echo 1 > " + NTH)                            # ignore-gfp-wait is Y: GFP_KERNEL is spared
    assert not errors_in(run("alloc_pages 1"))
    assert run("cat " + NTH) == "1"
    assert not errors_in(run("kmalloc 64"))
    ok(run, "echo 0 > " + NTH)


# --- processes: spawn, the fault path, fork, COW, shared memory --------------------

def test_spawn():
    k, run = shell()
    s = sweep(k, run, lambda _: run("spawn p"),
              teardown=lambda _, out: out and run("kill %s" % out))
    expect(s, 1)


def new_proc(run, length=2 * MiB, shared=False):
    pid = int(ok(run, "spawn p"))
    addr = int(ok(run, "mmap %d %d%s" % (pid, length, " shared" if shared else "")), 16)
    return pid, addr


def test_anonymous_fault_tables_and_frames():
    """touch: PDPT, PD and PT pages, then the pcp refill (order 5, then
    order 0 one by one) - a failure is SIGBUS with ENOMEM, the tables made
    so far stay linked (as in Linux), and exit frees them."""
    k, run = shell()
    s = sweep(k, run, lambda ctx: run("touch %d 0x%x %d w" % (ctx[0], ctx[1], 64 << 10)),
              setup=lambda: new_proc(run),
              teardown=lambda ctx, out: run("kill %d" % ctx[0]))
    expect(s, 4)


def test_zero_page_read_and_shared_anonymous_fault():
    k, run = shell()
    s = sweep(k, run, lambda ctx: run("touch %d 0x%x %d r" % (ctx[0], ctx[1], 64 << 10)),
              setup=lambda: new_proc(run),
              teardown=lambda ctx, out: run("kill %d" % ctx[0]))
    expect(s, 3)
    s = sweep(k, run, lambda ctx: run("touch %d 0x%x %d w" % (ctx[0], ctx[1], 64 << 10)),
              setup=lambda: new_proc(run, shared=True),
              teardown=lambda ctx, out: run("kill %d" % ctx[0]))
    expect(s, 4)


def forked_parent(run):
    """A parent with private (touched, read-only zero) and shared pages
    in two VMAs far apart (each its own page-table pages)."""
    pid, a = new_proc(run, 1 * MiB)
    b = int(ok(run, "mmap %d %d shared fixed=0x%x" % (pid, 64 << 10, 0x40000000)), 16)
    ok(run, "touch %d 0x%x %d w" % (pid, a, 256 << 10))
    ok(run, "touch %d 0x%x %d r" % (pid, a + (512 << 10), 64 << 10))
    ok(run, "touch %d 0x%x %d w" % (pid, b, 64 << 10))
    return pid, a, b


def test_fork():
    k, run = shell()

    def teardown(ctx, out):
        run("kill %d" % ctx[0])
        if out:
            run("kill %s" % out)
    s = sweep(k, run, lambda ctx: run("fork %d" % ctx[0]), setup=lambda: forked_parent(run),
              teardown=teardown)
    expect(s, 6)


def test_copy_on_write_fault():
    """After fork the parent's pages are shared read-only: a write copies
    (a pcp refill that can fail) - on failure neither side changes."""
    k, run = shell()

    def setup():
        pid, a, b = forked_parent(run)
        child = int(ok(run, "fork %d" % pid))
        return pid, a, child
    s = sweep(k, run, lambda ctx: run("touch %d 0x%x %d w" % (ctx[2], ctx[1], 256 << 10)),
              setup=setup, teardown=lambda ctx, out: (run("kill %d" % ctx[0]), run("kill %d" % ctx[2])))
    expect(s, 2)


def test_malloc_in_a_process():
    """umalloc: brk heap growth and its first touch, and the mmap path."""
    k, run = shell()
    for size in (100, 200 << 10):
        s = sweep(k, run, lambda ctx: run("malloc %d %d" % (ctx, size)),
                  setup=lambda: int(ok(run, "spawn m")),
                  teardown=lambda ctx, out: run("kill %d" % ctx))
        expect(s, 1)


# --- slab, kmalloc, vmalloc: every backend ---------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", [100, 4096, 20000])
def test_kmalloc(backend, size):
    k, run = shell("slab=%s" % backend)
    s = sweep(k, run, lambda _: run("kmalloc %d" % size),
              teardown=lambda _, out: out and run("kfree %s" % out))
    expect(s, 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_kmem_cache_alloc_grows_the_cache(backend):
    k, run = shell("slab=%s" % backend)
    # 2100 bytes: a SLOB page holds one, so the first object needs a page on
    # every backend (SLOB shares its pages between caches: the boot's own
    # objects can leave room for a smaller one)
    ok(run, "kmem_cache_create fi 2100")
    s = sweep(k, run, lambda _: run("kmem_cache_alloc fi"),
              teardown=lambda _, out: out and run("kmem_cache_free fi %s" % out))
    expect(s, 2)


@pytest.mark.parametrize("size", [4096, 5 * 4096])
def test_vmalloc(size):
    k, run = shell()
    s = sweep(k, run, lambda _: run("vmalloc %d" % size),
              teardown=lambda _, out: out and run("vfree %s" % out))
    expect(s, size // 4096)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mempool_falls_back_to_its_reserve(backend):
    from kernel_py.mm.page.mempool import mempool_create_kmalloc_pool
    k, run = shell("slab=%s" % backend)
    km = k.kmalloc
    pool = mempool_create_kmalloc_pool(2, km, 256)
    ok(run, "echo N > /sys/kernel/debug/failslab/ignore-gfp-wait")
    ok(run, "echo 1 > " + NTH)
    e = pool.alloc()
    assert e is not None and pool.curr_nr == 1            # the allocator failed: the reserve
    pool.free(e)
    assert pool.curr_nr == 2
    pool.destroy()


# --- swap: out, in, fork of swap entries, swapoff --------------------------------------

def swapped_proc(run, sh):
    pid, addr = new_proc(run, 256 << 10)
    ok(run, "touch %d 0x%x %d w" % (pid, addr, 256 << 10))
    run("echo 1M > /sys/fs/cgroup/memory.reclaim")     # the 64 pages go to swap
    return pid, addr


def test_swap_in():
    k, sh = swapsupport.boot()
    run = sh.execute
    base_out = swapsupport.vmstat(sh)["pswpout"]

    def op(ctx):
        return run("memsum %d 0x%x %d" % (ctx[0], ctx[1], 256 << 10))
    s = sweep(k, run, op, setup=lambda: swapped_proc(run, sh),
              teardown=lambda ctx, out: run("kill %d" % ctx[0]))
    assert swapsupport.vmstat(sh)["pswpout"] > base_out
    expect(s, 2)


def test_fork_with_swap_entries_and_swapoff():
    k, sh = swapsupport.boot()
    run = sh.execute

    def teardown(ctx, out):
        run("kill %d" % ctx[0])
        if out:
            run("kill %s" % out)
    s = sweep(k, run, lambda ctx: run("fork %d" % ctx[0]), setup=lambda: swapped_proc(run, sh),
              teardown=teardown)
    expect(s, 1)

    def swapoff_teardown(ctx, out):
        run("kill %d" % ctx[0])
        if "/dev/sdb" not in run("cat /proc/swaps"):
            ok(run, "swapon /dev/sdb")
    s = sweep(k, run, lambda ctx: run("swapoff /dev/sdb"), setup=lambda: swapped_proc(run, sh),
              teardown=swapoff_teardown)
    expect(s, 2)


# --- files: page cache, FAT metadata, inodes and dentries, writeback ----------------------

@pytest.fixture
def fat_box(tmp_path):
    img = make_fat(tmp_path / "data.img", 24, fat=16)
    boxes = []

    def make(backend):
        b = Box([str(img)], cmdline="slab=%s" % backend)
        boxes.append(b)
        return b
    yield make
    for b in boxes:
        b.close()


FILE_OPS = {
    "create": ("write /mnt/new.txt hello", "rm /mnt/new.txt"),
    "create_long_name": ("write /mnt/a-long-file-name.text hello", "rm /mnt/a-long-file-name.text"),
    "fill": ("fill /mnt/f.bin 40K", "rm /mnt/f.bin"),
    "mkdir": ("mkdir /mnt/dir", "rmdir /mnt/dir"),
    "append": ("append /mnt/old.txt more", None),
    "read": ("sha256sum /mnt/old.txt", None),
    "rm": ("rm /mnt/old.txt", None),
    "sync": ("sync", None),
}


@needs_mkfs
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(FILE_OPS))
def test_file_operations(fat_box, backend, name):
    b = fat_box(backend)
    k, run = b.k, b.sh.execute
    line, undo = FILE_OPS[name]

    def setup():
        if "old.txt" not in run("ls /mnt"):
            ok(run, "fill /mnt/old.txt 12K")
        if name == "sync":
            ok(run, "append /mnt/old.txt dirty")
        ok(run, "sync")
        ok(run, "echo 3 > /proc/sys/vm/drop_caches")         # cold: every read allocates

    def teardown(ctx, out):
        if undo is not None and out is not None:
            ok(run, undo)
        ls = run("ls /mnt")
        for leftover in ("new.txt", "a-long-file-name.text", "f.bin"):
            if leftover in ls:          # a failed write may leave the file created
                ok(run, "rm /mnt/%s" % leftover)
        if "dir" in ls.split():
            ok(run, "rmdir /mnt/dir")
        if "old.txt" not in run("ls /mnt"):
            ok(run, "fill /mnt/old.txt 12K")
    setup()
    teardown(None, None)
    s = sweep(k, run, lambda _: run(line), setup=setup, teardown=teardown)
    if name == "sync":              # writeback allocates nothing: dirty pages are in memory
        assert s["nth"].calls == 0
    else:
        expect(s, 1)
    assert not errors_in(run("sha256sum /mnt/old.txt"))


# --- the guest's workload, on the model: 10% everywhere, swap and files -------------------

@needs_mkfs
def test_swap_and_file_workload_at_10_percent_no_leak(tmp_path):
    from pagedebugsupport import SwapFileWorkload, accounting, inject_everywhere, settle
    img = make_fat(tmp_path / "data.img", 24, fat=16)
    b = Box([str(img), bytearray(16 * MiB)])
    k, run = b.k, b.sh.execute
    ok(run, "mkswap /dev/sdb")
    ok(run, "swapon /dev/sdb")
    caches = [l.split()[0] for l in run("cat /proc/slabinfo").split("\n")[2:] if l.strip()]
    warm = SwapFileWorkload(run, seed=31)
    for _ in range(150):
        warm.step()
    warm.release_all()
    settle(run, caches)
    base, pcp0, swap0 = accounting(run), len(k.pcp), snapshot(k, run)["swap"]
    inject_everywhere(run, 10)
    w = SwapFileWorkload(run, seed=32)
    for _ in range(600):
        w.step()
    inject_everywhere(run, 0)
    fi = k.fault_inject
    assert w.bad == [], w.bad[:3]
    assert w.failed > 20 and fi.failslab.injected + fi.fail_page_alloc.injected > 40
    vm = swapsupport.vmstat(b.sh)
    assert vm["pswpout"] > 0 and vm["pswpin"] > 0
    w.release_all()
    settle(run, caches)
    mem, buddy, slabs = accounting(run)
    assert mem // 4 + len(k.pcp) == base[0] // 4 + pcp0
    assert slabs == base[2]
    assert snapshot(k, run)["swap"] == swap0
    b.close()
