# Memory management: every allocator, page-table decision and fault policy.
