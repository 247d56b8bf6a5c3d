# Address spaces: VMAs, mmap, the fault handler, init_mm, vmalloc.
