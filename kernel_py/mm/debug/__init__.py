# Memory debugging: debug_vm, debug_pagealloc, page_owner, kmemleak, fault injection, the debug anchor.
