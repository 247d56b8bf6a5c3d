# File systems: the VFS glue and FAT.
