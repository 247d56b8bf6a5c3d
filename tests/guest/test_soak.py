"""The soak (issue 7, item 6), short: a seeded random workload
(kpyqemu/soak.py: processes, mmap/touch/fork/kill, mprotect, sbrk,
kmalloc/kfree, a cache of each slab backend, vmalloc, files on /mnt, swap,
one OOM hog; data regions with pattern checksums through swap, PROT_NONE,
fork/COW and shared mappings of files and anonymous memory) on a slab=slob guest (the make-soak run covers all three),
with the kernel's `check` and the host's page-table walks every 40
operations: no violation. Then tools/memmap's picture of the same guest,
its frame counts against /proc/meminfo and `check`, and the same picture
read over QMP alone through the kernel's debug anchor. `make soak` runs the
long version over slab, slub and slob."""

import os
import re

import pytest

from kpyqemu import memmap, soak

OPS = int(os.environ.get("KPY_SOAK_OPS", "240"))
SEED = int(os.environ.get("KPY_SOAK_SEED", "1"))
pytestmark = pytest.mark.skipif(not os.path.exists(soak.MKFS), reason="needs dosfstools")


def test_short_soak_keeps_every_invariant_then_memmap_matches_meminfo(boot, tmp_path):
    data, swap, fat, host_swap = soak.make_disks(tmp_path, swap_mb=24)
    g = boot(mem=soak.GUEST_MEM, cmdline="slab=slob noswap", drives=[str(data), str(swap)])
    # 12 MiB of data (make soak holds more than free RAM): the OOM hog pushes
    # it out, the reads after it bring it back in
    s = soak.Soak(g, SEED, check_every=40, ooms=1, fat=fat, host_swap=host_swap,
                  working_set=12 << 20)
    rep = s.run(OPS)
    print(rep.summary())
    assert rep.violations == []
    assert 0 < rep.heap_kb[1] < rep.heap_kb[0]              # the heap is not what fails first
    assert rep.ops >= OPS and rep.rounds >= OPS // 40 + 2 and rep.checks > rep.rounds * 3
    assert rep.oom_kills >= 1 and rep.pswpout > 0
    assert set(rep.op_errors) <= {"ENOMEM"}
    assert rep.data_checks > 0 and rep.pswpin > 0 and rep.shared_checks > 0
    assert len(rep.frag) == OPS // 5 + 2 and all(len(row) == 11 for _, row in rep.frag)

    g.run("spawn painter")
    pid = int(g.run("ps").split("\n")[-1].split()[0])
    a = g.run("mmap %d 2M" % pid)
    g.run("touch %d %s 2M w" % (pid, a))
    v = g.run("vmalloc 200000")
    snap = memmap.snapshot(g)
    counts = snap.counts()
    mi = {l.split(":")[0]: int(l.split()[1]) for l in g.run("cat /proc/meminfo").split("\n")}
    census = dict(re.findall(r"^(\w+)\s+(\d+)$", g.run("check"), re.M))
    assert sum(n for c, n in counts.items() if c.startswith("free")) * 4 == mi["MemFree"]
    assert counts["vmalloc"] * 4 == mi["VmallocUsed"]
    assert counts["anon"] * 4 == mi["AnonPages"]
    assert counts["anon"] + counts.get("pcp", 0) == int(census["anon"])
    assert counts["reserved"] == int(census["reserved"])
    assert len(snap.cats) == int(census["total"])
    # over QMP alone (tools/memmap --qmp): the debug anchor gives the same picture, pcp as anon
    qsnap = memmap.snapshot_qmp(g)
    assert qsnap.cats == ["anon" if c == "pcp" else c for c in snap.cats]
    png = tmp_path / "memmap.png"
    w, h, rows = memmap.read_png(memmap.write_memmap_png(str(png), snap))
    assert w > 128 * 4 and h > len(snap.cats) // 128 * 4
    assert memmap.read_png(memmap.frag_canvas(rep.frag).png())[0] > len(rep.frag)
    g.run("vfree %s" % v)
    g.run("kill %d" % pid)
    assert g.run("check").endswith("check: ok")
