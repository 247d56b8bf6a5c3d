"""The TLB (Intel SDM Vol. 3A, 4.10.2): cached translations, filled by
successful walks and flushed only by MOV to CR3 / CR4 and INVLPG.

Entries are kept per 4 KiB virtual page number (one dict lookup on a hit);
a 2 MiB or 1 GiB translation is cached for each 4 KiB page touched inside it
and also indexed by its own page so INVLPG of any address in it drops all of
them (4.10.4.1). Not-present translations are never cached (4.10.2.3).
When full, the TLB drops everything: evicting is always allowed (4.10.4.4).
"""

from kernel_py.sim.walk import R_GLOBAL

HUGE_SHIFTS = (21, 30)


class TLB:
    def __init__(self, capacity=8192):
        self.capacity = capacity
        self.entries = {}   # vpn -> (pa of the 4 KiB page, rights)
        self._huge = {}     # (shift, va >> shift) -> {vpn, ...}
        self.fills = 0
        self.flushes = 0

    def __len__(self):
        return len(self.entries)

    def fill(self, va, pa, size, rights):
        if len(self.entries) >= self.capacity:
            self.flush(keep_global=False)
        vpn = va >> 12
        self.entries[vpn] = (pa & ~0xFFF, rights)
        self.fills += 1
        if size > 4096:
            shift = size.bit_length() - 1
            self._huge.setdefault((shift, va >> shift), set()).add(vpn)

    def drop(self, va):
        """Forget the 4 KiB page of va (a fault on it, 4.10.4.1)."""
        self.entries.pop(va >> 12, None)

    def invlpg(self, va):
        """INVLPG: every entry for the page containing va, global or not."""
        self.entries.pop(va >> 12, None)
        for shift in HUGE_SHIFTS:
            vpns = self._huge.pop((shift, va >> shift), None)
            if vpns:
                for vpn in vpns:
                    self.entries.pop(vpn, None)

    def flush(self, keep_global):
        """MOV to CR3 (keep_global with CR4.PGE) or a full flush. The dict
        is emptied in place: the MMU holds a bound `entries.get`."""
        self.flushes += 1
        if not keep_global:
            self.entries.clear()
            self._huge.clear()
            return
        d = self.entries
        for vpn in [k for k, (_, r) in d.items() if not r & R_GLOBAL]:
            del d[vpn]
        for key in list(self._huge):
            vpns = {v for v in self._huge[key] if v in d}
            if vpns:
                self._huge[key] = vpns
            else:
                del self._huge[key]
