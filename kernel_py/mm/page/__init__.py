# The page allocator (Linux mm/page_alloc.c and friends): memblock, mem_map, zones, buddy, pcp, page_ext, mempool, extfrag.
