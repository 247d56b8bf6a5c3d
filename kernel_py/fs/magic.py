# The file systems' magic numbers (Linux's include/uapi/linux/magic.h):
# statfs's f_type, which df -T and programs that test for a file system
# (is this tmpfs? procfs?) read.

TMPFS_MAGIC = 0x01021994
RAMFS_MAGIC = 0x858458F6
PROC_SUPER_MAGIC = 0x9FA0
SYSFS_MAGIC = 0x62656572
MSDOS_SUPER_MAGIC = 0x4D44
PIPEFS_MAGIC = 0x50495045
ANON_INODE_FS_MAGIC = 0x09041934
