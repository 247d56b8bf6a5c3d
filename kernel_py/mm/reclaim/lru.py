# The LRU list (Linux's struct lruvec lists): one type for the four lists,
# inactive/active anon (mm/reclaim/rmap.py's AnonLru) and inactive/active
# file (the page cache's, mm/reclaim/vmscan.py's FileLru). A PfnList
# threaded through the mem_map records' next/prev fields, so a list costs
# no heap per page; new pages go to the head, scans start at the tail
# (`last`). Which list a page is on is in its record: PG_lru, PG_active.

from kernel_py.mm.page.mem_map import PfnList


class LruList(PfnList):
    """An LRU list (active/inactive, file or anon): a PfnList with a name."""

    def __init__(self, mem_map, name):
        super().__init__(mem_map)
        self.name = name
