# The boot sequence's helpers that Linux keeps in init/: the initramfs.
