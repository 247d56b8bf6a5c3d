# memfd_create(2) (Linux's mm/memfd.c): an anonymous file in memory,
# "memfd:NAME", open read-write. As on Linux it is an unlinked inode of
# the internal shmem mount (vfs.shm_mnt, a tmpfs mounted nowhere:
# fs/mount.py): its pages are shmem pages (Shmem in /proc/meminfo), held
# in the page cache until the last descriptor and the last mapping are
# gone, and reclaim writes cold unmapped ones to swap as it does /tmp's
# (mm/filemap/shmem.py). ftruncate sizes it, read/write/mmap
# use it as any regular file. Sealing (MFD_ALLOW_SEALING) is accepted; no
# F_ADD_SEALS here. MFD_HUGETLB: no hugetlbfs (ENOSYS, as Linux without
# CONFIG_HUGETLBFS).

from kernel_py.fs.file import O_LARGEFILE, O_RDWR, File, nofile
from kernel_py.fs.libfs import REGULAR
from kernel_py.fs.mode import S_IFREG
from kernel_py.lib.errno import EFAULT, EINVAL, ENOSYS, errno_of
from kernel_py.lib.errors import KernelError

MFD_CLOEXEC = 0x0001
MFD_ALLOW_SEALING = 0x0002
MFD_HUGETLB = 0x0004
MFD_ALL_FLAGS = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB
MFD_HUGE_SHIFT = 26
MFD_HUGE_MASK = 0x3f
MFD_NAME_PREFIX = "memfd:"
MFD_NAME_MAX_LEN = 255 - len(MFD_NAME_PREFIX)


def sys_memfd_create(t, uname, flags):
    k = t.k
    flags &= 0xFFFFFFFF
    allowed = MFD_ALL_FLAGS | (MFD_HUGE_MASK << MFD_HUGE_SHIFT if flags & MFD_HUGETLB else 0)
    if flags & ~allowed:
        return -EINVAL
    name = k.hw.strncpy_from_user(uname, MFD_NAME_MAX_LEN + 1)
    if name is None:
        return -EFAULT
    if len(name) > MFD_NAME_MAX_LEN:
        return -EINVAL
    if flags & MFD_HUGETLB:
        return -ENOSYS
    try:
        text = name.decode()
    except (UnicodeError, ValueError):          # not UTF-8: byte for byte (as /proc shows it)
        text = "".join([chr(c) for c in name])
    try:
        f = memfd_file(k, MFD_NAME_PREFIX + text)
    except KernelError as e:
        return -errno_of(e.errname)
    fd = t.files.alloc_fd(f, 0, bool(flags & MFD_CLOEXEC), nofile(t))
    if fd < 0:
        f.fput(k)
    return fd


def memfd_file(k, name):
    """The File of a new unlinked regular file `name` (shmem_file_setup)."""
    sb = k.vfs.shm_mnt
    ino = sb.new_inode(S_IFREG | 0o777)
    ino.nlink = 0                       # unlinked from birth: it goes with the last pin
    ino.deleted = True
    ino.name = name
    f = File(REGULAR, O_RDWR | O_LARGEFILE, None, "/" + name)     # (/proc says "(deleted)")
    f.sb = sb
    f.inode = ino
    try:
        k.vfs.files.alloc_file(f)
    except KernelError:
        sb.free_inode(ino)
        raise
    sb.pin(ino)
    f.pinned = True
    return f
