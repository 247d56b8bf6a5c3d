# File types and permission bits of st_mode (include/uapi/linux/stat.h),
# and the d_type getdents64 reports for them.

S_IFMT = 0o170000
S_IFSOCK = 0o140000
S_IFLNK = 0o120000
S_IFREG = 0o100000
S_IFBLK = 0o060000
S_IFDIR = 0o040000
S_IFCHR = 0o020000
S_IFIFO = 0o010000
S_ISUID = 0o4000
S_ISGID = 0o2000
S_ISVTX = 0o1000
S_IALLUGO = 0o7777


def S_ISDIR(m):
    return m & S_IFMT == S_IFDIR


def S_ISREG(m):
    return m & S_IFMT == S_IFREG


def S_ISLNK(m):
    return m & S_IFMT == S_IFLNK


def S_ISCHR(m):
    return m & S_IFMT == S_IFCHR


def S_ISFIFO(m):
    return m & S_IFMT == S_IFIFO


def dtype_of(mode):
    return (mode & S_IFMT) >> 12
