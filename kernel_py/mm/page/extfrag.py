# External fragmentation indices (Linux mm/vmstat.c, CONFIG_COMPACTION's
# debugfs files). Only the unusable free space index is here: the share of
# free memory that an allocation of a given order cannot use because it
# sits in smaller blocks. Integer thousandths (no floats in the guest);
# Linux prints them as %d.%03d.


def unusable_free_index(nr_free, order):
    """Thousandths of free pages in blocks below `order`, from the free
    block counts by order (`nr_free[o]`, as /proc/buddyinfo shows them);
    1000 when nothing is free (Linux's unusable_free_index)."""
    free = 0
    suitable = 0
    for o in range(len(nr_free)):
        free += nr_free[o] << o
        if o >= order:
            suitable += nr_free[o] << (o - order)
    if not free:
        return 1000
    return (free - (suitable << order)) * 1000 // free
