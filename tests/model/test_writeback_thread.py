"""The writeback thread (kernel/kthread.py's "writeback", mm/filemap/
page_writeback.py flusher): dirty data older than dirty_expire_centisecs is
written without a sync, the thread looks again every
dirty_writeback_centisecs while anything is dirty, and sleeps otherwise."""

import time

from fssupport import Box, make_fat, needs_mkfs


def dirty_kb(b):
    for line in b.run("cat /proc/meminfo").splitlines():
        if line.startswith("Dirty:"):
            return int(line.split()[1])
    raise AssertionError("no Dirty line")


@needs_mkfs
def test_old_dirty_data_is_written_by_the_thread(tmp_path):
    b = Box([str(make_fat(tmp_path / "data.img", 32, 16))])
    try:
        k = b.k
        assert "writeback" in [t.comm for t in k.procs.tasks.values()]
        b.run("echo 100 > /proc/sys/vm/dirty_expire_centisecs")      # 1 s
        b.run("echo 1 > /proc/sys/vm/dirty_writeback_centisecs")     # look every 10 ms
        b.run("fill /mnt/f 256K pattern")
        assert dirty_kb(b) >= 256
        runs = k.pagecache.flusher_runs
        time.sleep(0.05)
        b.run("echo tick")                  # the console's turn: due timers, kernel threads
        assert k.pagecache.flusher_runs > runs      # it looked...
        assert dirty_kb(b) >= 256                   # ...but the data is not old yet
        time.sleep(1.1)
        b.run("echo tick")
        assert dirty_kb(b) == 0                     # written, with no sync
        runs = k.pagecache.flusher_runs
        time.sleep(0.05)
        b.run("echo tick")
        assert k.pagecache.flusher_runs == runs     # nothing dirty: the thread sleeps
    finally:
        b.close()
