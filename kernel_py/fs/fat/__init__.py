# FAT16 / FAT32 (Microsoft's "FAT: General Overview of On-Disk Format"),
# with VFAT long names, over a block device: the file system of the data
# disk (mounted at /mnt, fs/vfs.py). Laid out as Linux's fs/fat/:
#
#   super.py    FatFs: the boot sector and FSInfo, mount, statfs, sync,
#               umount, the slab caches of inodes and dentries
#   fatent.py   the FAT itself: cluster chains, allocation, freeing
#   dir.py      directory entries, VFAT long names and their short
#               aliases, lookup, readdir, create, mkdir, unlink, rmdir
#   inode.py    FatInode, the inode and dentry caches, the address space
#               of a file and the read/write/truncate of its data
#
# FatFs is one object per mounted file system (what the VFS calls); its
# methods live in those four files. File data goes through the page cache
# (each regular file's AddressSpace, its inode as the host); metadata (boot
# sector, FSInfo, the FATs, directories) through the block device's buffer
# cache (fs/buffer.py).
#
# Inodes and dentries are cached (icache, dcache), each with an object of
# the slab caches "fat_inode_cache" and "dentry" (SLAB_RECLAIM_ACCOUNT)
# that holds its real fields (inode.py), which drop_caches 2 shrinks; the
# caches are kmemleak's root for those objects (super.py). Cluster chains
# are cached per inode.
#
# Writes allocate clusters at once (no delayed allocation); sync writes the
# file pages, then the dirty directory entries, FSInfo, the buffer cache,
# and flushes the disk's cache.
#
# Below: the on-disk format the four files share (Linux's msdos_fs.h).

ATTR_READ_ONLY = 0x01
ATTR_HIDDEN = 0x02
ATTR_SYSTEM = 0x04
ATTR_VOLUME_ID = 0x08
ATTR_DIRECTORY = 0x10
ATTR_ARCHIVE = 0x20
ATTR_LONG_NAME = 0x0F

DIRENT = 32                                      # bytes of a directory entry
DATE = ((2025 - 1980) << 9) | (1 << 5) | 1     # no RTC: 2025-01-01 00:00
