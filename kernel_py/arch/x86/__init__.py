# x86-64: CPU constants, page tables, user-mode entry.
