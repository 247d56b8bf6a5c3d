# The slab allocators behind one kmem_cache interface: SLAB, SLUB, SLOB and kmalloc.
