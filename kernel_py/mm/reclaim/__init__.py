# Reclaim: LRU lists, rmap, vmscan, swap, the OOM killer.
