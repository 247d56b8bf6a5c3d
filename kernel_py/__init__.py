# kernel_py: a Linux-style memory manager in Python. See DESIGN.md and docs/hw.md.
