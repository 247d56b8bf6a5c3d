"""The counter table (mm/vmstat.py) behind /proc/vmstat and /proc/meminfo:
the files' field names and order on a booted machine, and the console's
free/top/vmstat computed from the same figures."""

from kernel_py.mm import vmstat

from swapsupport import boot, meminfo, run

MEMINFO_FIELDS = [
    "MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapCached",
    "Active(anon)", "Inactive(anon)", "Active(file)", "Inactive(file)", "SwapTotal",
    "SwapFree", "Dirty", "Writeback", "AnonPages", "Mapped", "Shmem", "Slab",
    "SReclaimable", "SUnreclaim", "VmallocTotal", "VmallocUsed", "VmallocChunk",
    "PyHeapTotal", "PyHeapUsed", "PyHeapLive", "PyHeapPeak",                 # the kernel's own: last
]

VMSTAT_FIELDS = [
    "nr_free_pages", "pgalloc_dma", "pgalloc_dma32", "pgalloc_normal", "pgfree",
    "allocstall_normal", "nr_inactive_file", "nr_active_file", "nr_file_pages", "nr_dirty",
    "nr_writeback", "nr_dirtied", "nr_written", "nr_dirty_threshold",
    "nr_dirty_background_threshold", "pgpgin", "pgpgout", "pgactivate", "pgdeactivate",
    "pgscan_file", "pgsteal_file", "pgrotated", "drop_pagecache", "drop_slab",
    "pagecache_hits", "pagecache_misses", "nr_inactive_anon", "nr_active_anon",
    "nr_anon_pages", "pgactivate_anon", "pgdeactivate_anon", "pgrotated_anon", "pswpin",
    "pswpout", "swap_ra", "swapcache_add", "swapcache_find", "swapcache_reuse",
    "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct", "pgscan_anon",
    "pgsteal_anon", "pageoutrun", "kswapd_wakeups", "oom_kill", "pgfault", "pgmajfault",
    "pgcowfault", "pgcowreuse", "pgzeropage", "pganonfault", "pgshmemfault", "pgfilefault",
    "pgspurious", "pgsegv", "pgfault_oom",
]


def workload(sh):
    pid = run(sh, "spawn w")
    addr = run(sh, "mmap %s 4M" % pid)
    run(sh, "touch %s %s 4M" % (pid, addr))
    run(sh, "fork %s" % pid)
    run(sh, "echo 1M > /sys/fs/cgroup/memory.reclaim")
    return pid, addr


def test_proc_files_field_names_and_order():
    k, sh = boot()
    workload(sh)
    lines = run(sh, "cat /proc/meminfo").split("\n")
    assert [l.split(":")[0] for l in lines] == MEMINFO_FIELDS
    for l in lines:                         # Linux's layout: name: padded to 16, kB in 8
        name = l.split(":")[0]
        assert l == "%-16s%8d kB" % (name + ":", int(l[16:-3]))
    lines = run(sh, "cat /proc/vmstat").split("\n")
    assert [l.split()[0] for l in lines] == VMSTAT_FIELDS
    assert all(len(l.split()) == 2 and l.split()[1].isdigit() for l in lines)


def test_table_is_the_one_definition():
    names = [row[0] for row in vmstat.VM_STAT_ITEMS]
    assert len(names) == len(set(names))
    shown = [row[0] for row in vmstat.VM_STAT_ITEMS if row[2] == vmstat.VMSTAT]
    assert shown == VMSTAT_FIELDS
    k, sh = boot()
    for name in names:
        assert isinstance(vmstat.counter(k, name), int)


def test_meminfo_reads_the_counters():
    k, sh = boot()
    workload(sh)
    mi = meminfo(sh)
    c = lambda name: vmstat.counter(k, name) * 4
    assert mi["MemFree"] == c("nr_free_pages")
    assert mi["Active(file)"] == c("nr_active_file")
    assert mi["Inactive(anon)"] == c("nr_inactive_anon")
    assert mi["AnonPages"] == c("nr_anon_pages") > 0
    assert mi["Cached"] + mi["Buffers"] == c("nr_file_pages")
    assert mi["Slab"] == c("nr_slab_reclaimable") + c("nr_slab_unreclaimable")
    assert mi["SwapCached"] == c("nr_swapcached")
    assert mi["SwapTotal"] - mi["SwapFree"] > 0


def test_free_top_vmstat_agree_with_meminfo():
    k, sh = boot()
    workload(sh)
    mi = meminfo(sh)
    sreclaim = vmstat.counter(k, "nr_slab_reclaimable") * 4
    bc = mi["Buffers"] + mi["Cached"] + sreclaim
    used = mi["MemTotal"] - mi["MemFree"] - bc
    mem = run(sh, "free").split("\n")[1].split()
    assert mem == ["Mem:"] + ["%d" % v for v in (mi["MemTotal"], used, mi["MemFree"], 0, bc,
                                                 mi["MemAvailable"])]
    swap = run(sh, "free").split("\n")[2].split()
    assert swap == ["Swap:", "%d" % mi["SwapTotal"], "%d" % (mi["SwapTotal"] - mi["SwapFree"]),
                    "%d" % mi["SwapFree"]]
    top = run(sh, "top -b -n 1 -E k").split("\n")
    assert top[3].split() == ["KiB", "Mem", ":", "%d" % mi["MemTotal"], "total,",
                              "%d" % mi["MemFree"], "free,", "%d" % used, "used,",
                              "%d" % bc, "buff/cache"]
    row = run(sh, "vmstat").split("\n")[2].split()
    assert row[2:6] == ["%d" % (mi["SwapTotal"] - mi["SwapFree"]), "%d" % mi["MemFree"],
                        "%d" % mi["Buffers"], "%d" % (mi["Cached"] + sreclaim)]


def test_a_switched_off_owner_leaves_its_rows_out():
    k, sh = boot()
    fault, k.fault = k.fault, None
    try:
        names = [n for n, _ in vmstat.vmstat_pairs(k)]
        assert "pgfault" not in names and "nr_free_pages" in names
        assert vmstat.counter(k, "pgfault") == 0
    finally:
        k.fault = fault
