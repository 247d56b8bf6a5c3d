# The LRU lists (Linux's struct lruvec): one list type for the four lists,
# inactive/active anon (mm/reclaim/rmap.py's AnonLru) and inactive/active
# file (the page cache's, mm/reclaim/vmscan.py's FileLru). A PfnList
# threaded through the mem_map records' next/prev fields, so a list costs
# no heap per page; new pages go to the head, scans start at the tail
# (`last`). Which list a page is on is in its record: PG_lru, PG_active.
# LruLists is the pair of one kind (anon or file) with the moves both
# kinds make the same way.

from kernel_py.mm.page.mem_map import PfnList
from kernel_py.mm.types import PG_active, PG_lru, PG_referenced


class LruList(PfnList):
    """An LRU list (active/inactive, file or anon): a PfnList with a name."""

    def __init__(self, mem_map, name):
        super().__init__(mem_map)
        self.name = name


class LruLists:
    """The active and inactive lists of one kind of page and their
    counters; the owner (AnonLru, the page cache) has base (mem_map's pa)
    and _w16 (hw.write16)."""

    def init_lru_lists(self, mem_map, kind):
        self.active = LruList(mem_map, "active_" + kind)
        self.inactive = LruList(mem_map, "inactive_" + kind)
        self.pgactivate = 0         # /proc/vmstat
        self.pgdeactivate = 0
        self.pgrotated = 0

    def lru_del(self, pfn, a, f):
        """Take pfn (record at a, flags f with PG_lru) off its list."""
        if f & PG_active:
            self.active.remove(pfn)
        else:
            self.inactive.remove(pfn)
        self._w16(a, f & ~(PG_lru | PG_active))

    def activate_page(self, pfn, a, f):
        """An inactive page (record at a, flags f) to the active list."""
        self.inactive.remove(pfn)
        self.active.push(pfn)
        self._w16(a, (f | PG_active) & ~PG_referenced)
        self.pgactivate += 1
