# Open files and file descriptors (Linux's struct file, fs/file.c and
# fs/file_table.c): a File is one open of something — a regular file, a
# directory, the terminal, a pipe end, an eventfd — with its position and
# flags and the operations of what it opened (f_op); an FdTable maps a
# task's descriptors to Files, with the close-on-exec bits. dup() and fork
# share a File (one position); open() makes a new one.
#
# Each File made by the VFS holds an object of the `filp` slab cache (as
# Linux's alloc_empty_file), freed with the last reference (fput): see
# fs/file_table.py. kmemleak finds it by walking the fd tables
# (FdTable.scan_refs, File.scan_refs: the filp, f_inode, private_data).
#
# f_op is a FileOperations (Linux's struct file_operations): what each
# kind of file does on read, write, llseek, ioctl, poll and the last close;
# the defaults answer as Linux does for a file without the method.
#
# The read protocol (fs/read_write.py): read(f, t, n) returns the bytes
# without committing them; once they reached the user, read_done(f, n)
# commits (a regular file's position moves, a pipe's buffers are
# consumed). A read whose copy to user space faults thus leaves the file as
# it was (Linux's pipe_read does not advance a buffer it could not copy).
# Files whose data is consumed as it is read (the terminal, eventfd) do it
# in read(), as Linux does: their data is lost on EFAULT there too.

from kernel_py.lib.errno import EBADF, EINVAL, EMFILE, ENOTTY, ESPIPE

O_ACCMODE = 0o3
O_RDONLY, O_WRONLY, O_RDWR = 0, 1, 2
O_CREAT = 0o100
O_EXCL = 0o200
O_NOCTTY = 0o400
O_TRUNC = 0o1000
O_APPEND = 0o2000
O_NONBLOCK = 0o4000
O_DSYNC = 0o10000
FASYNC = 0o20000
O_DIRECT = 0o40000
O_LARGEFILE = 0o100000
O_DIRECTORY = 0o200000
O_NOFOLLOW = 0o400000
O_NOATIME = 0o1000000
O_CLOEXEC = 0o2000000
__O_SYNC = 0o4000000
O_SYNC = __O_SYNC | O_DSYNC
O_PATH = 0o10000000
__O_TMPFILE = 0o20000000
FD_CLOEXEC = 1
# what F_SETFL may change (fs/fcntl.c SETFL_MASK)
SETFL_MASK = O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME

# poll events (include/uapi/asm-generic/poll.h)
POLLIN = 0x0001
POLLPRI = 0x0002
POLLOUT = 0x0004
POLLERR = 0x0008
POLLHUP = 0x0010
POLLNVAL = 0x0020
POLLRDNORM = 0x0040
POLLRDBAND = 0x0080
POLLWRNORM = 0x0100
POLLWRBAND = 0x0200
DEFAULT_POLLMASK = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM

# FileOperations.mmap (Linux's f_op->mmap, a function there): what mmap(2)
# of the file maps (mm/vm/mmap.py); None: the file has no mmap (ENODEV)
MMAP_FILE = 1           # its page cache (generic_file_mmap): a regular file
MMAP_ANON = 2           # anonymous memory (mmap_zero): /dev/zero


class FileOperations:
    read_more = False       # read() may be called again for the rest of a large count
    write_more = False      # a short write() is progress, not the end (pipes)
    seekable = False        # pread/pwrite work (FMODE_PREAD), lseek may
    mmap = None             # MMAP_FILE, MMAP_ANON, or None: ENODEV

    def read(self, f, t, n):
        """bytes (b"" at end of file), -errno, or None: would block (the
        caller sleeps on wait_queue(f) and retries). Nothing is consumed
        until read_done."""
        return -EINVAL

    def read_done(self, f, n):
        """The n bytes read() returned reached the user."""
        pass

    def pread(self, f, t, n, pos):
        return -ESPIPE

    def write(self, f, t, data):
        """The count written, -errno, or None: would block."""
        return -EINVAL

    def pwrite(self, f, t, data, pos):
        return -ESPIPE

    def llseek(self, f, off, whence):
        return -ESPIPE

    def ioctl(self, f, t, cmd, arg):
        return -ENOTTY

    def poll(self, f):
        """The POLL* events ready now (vfs_poll: DEFAULT_POLLMASK without a poll method)."""
        return DEFAULT_POLLMASK

    def wait_queue(self, f):
        """The WaitQueue a blocked reader or writer (or poll) sleeps on."""
        return None

    def fsync(self, f):
        return -EINVAL

    def release(self, f, k):
        pass

    def scan_private(self, f, out):
        """The slab addresses f's private_data points to (kmemleak's walk,
        fs/file_table.py); none by default."""
        pass


class File:
    def __init__(self, f_op, flags, private=None, path=""):
        self.f_op = f_op
        self.flags = flags              # O_* as opened (access mode, status flags)
        self.pos = 0
        self.private = private          # what f_op needs: an inode, a pipe end...
        self.path = path                # the absolute path opened (/proc/PID/fd, dirfd, fchdir)
        self.count = 1                  # descriptors and mappings holding it
        self.sb = None                  # the file system and inode opened (None: anonymous)
        self.inode = None
        self.pinned = False             # the inode is pinned until the last fput
        self.va = 0                     # the filp slab object (fs/file_table.py)

    def readable(self):
        return (self.flags & O_ACCMODE) in (O_RDONLY, O_RDWR) and not self.flags & O_PATH

    def writable(self):
        return (self.flags & O_ACCMODE) in (O_WRONLY, O_RDWR) and not self.flags & O_PATH

    def get(self):
        self.count += 1
        return self

    def scan_refs(self, out):
        """What kmemleak's scan reads through this file: its filp object
        (the fd table's pointer), f_inode and private_data."""
        if self.va > 0:
            out.append(self.va)
        if self.inode is not None:
            self.inode.scan_refs(out)
        self.f_op.scan_private(self, out)

    def fput(self, k):
        self.count -= 1
        if self.count == 0:
            try:
                self.f_op.release(self, k)
            finally:
                if self.pinned:
                    self.pinned = False
                    self.sb.unpin(self.inode)
                if self.va:
                    k.vfs.files.free_file(self)


NR_OPEN = 1 << 20          # fs.nr_open (fs/file.c sysctl_nr_open): no descriptor at or above it


class FdTable:
    """Linux's files_struct: fd -> File, and the close-on-exec set. It
    grows as descriptors are allocated; RLIMIT_NOFILE bounds them."""

    def __init__(self, max_fds=NR_OPEN):
        self.fds = []
        self.cloexec = set()
        self.max_fds = max_fds
        self.count = 1                  # tasks sharing it (CLONE_FILES)
        self.next_fd = 0                # no free descriptor below this (files->next_fd)

    def get(self):
        self.count += 1
        return self

    def file(self, fd):
        fds = self.fds
        if 0 <= fd < len(fds):
            return fds[fd]
        return None

    def alloc_fd(self, f, start=0, cloexec=False, limit=None):
        """The lowest free descriptor >= start, now holding f; -EMFILE
        (below `limit`, RLIMIT_NOFILE, when given)."""
        fds = self.fds
        top = self.max_fds if limit is None else min(limit, self.max_fds)
        fd = max(start, self.next_fd)
        while fd < len(fds) and fds[fd] is not None:
            fd += 1
        if fd >= top:
            return -EMFILE
        while len(fds) <= fd:
            fds.append(None)
        fds[fd] = f
        if start <= self.next_fd:
            self.next_fd = fd + 1
        if cloexec:
            self.cloexec.add(fd)
        else:
            self.cloexec.discard(fd)
        return fd

    def install(self, k, fd, f, cloexec=False):
        """dup2's step: fd holds f, closing what it held."""
        fds = self.fds
        while len(fds) <= fd:
            fds.append(None)
        old = fds[fd]
        fds[fd] = f
        if cloexec:
            self.cloexec.add(fd)
        else:
            self.cloexec.discard(fd)
        if old is not None:
            old.fput(k)

    def take(self, fd):
        """Empty fd without dropping its reference (a failed syscall undoing
        its own install): the File."""
        f = self.file(fd)
        if f is not None:
            self.fds[fd] = None
            self.cloexec.discard(fd)
            self.next_fd = min(self.next_fd, fd)
        return f

    def close(self, k, fd):
        f = self.file(fd)
        if f is None:
            return -EBADF
        self.fds[fd] = None
        self.cloexec.discard(fd)
        self.next_fd = min(self.next_fd, fd)
        f.fput(k)
        return 0

    def close_all(self, k):
        self.count -= 1
        if self.count > 0:
            return
        for fd in range(len(self.fds)):
            if self.fds[fd] is not None:
                self.close(k, fd)

    def close_on_exec(self, k):
        for fd in sorted(self.cloexec):
            self.close(k, fd)

    def dup(self, k):
        """fork: a copy of the table; each File gains a reference."""
        n = FdTable(self.max_fds)
        n.fds = [f.get() if f is not None else None for f in self.fds]
        n.cloexec = set(self.cloexec)
        n.next_fd = self.next_fd
        return n

    def scan_refs(self, out):
        """The fdtable's pointers, followed (kmemleak's walk)."""
        for f in self.fds:
            if f is not None:
                f.scan_refs(out)

    def open_count(self):
        return sum(1 for f in self.fds if f is not None)

    def fdsize(self):
        """/proc/PID/status FDSize: the table's size, which Linux grows by
        powers of two from 64 (NR_OPEN_DEFAULT, expand_fdtable)."""
        n = 64
        while n < len(self.fds):
            n <<= 1
        return n


# -- dup, dup2, dup3 (Linux's fs/file.c) ----------------------------------------------

def nofile(t):
    """RLIMIT_NOFILE's soft limit: descriptors are below it."""
    rlim = t.rlim
    return rlim[7][0] if rlim is not None else t.files.max_fds


def fdget_raw(t, fd):
    """The File at fd (an int register: the low 32 bits, as Linux's
    unsigned int fd), O_PATH files included (fstat, fchdir, fcntl, dirfd)."""
    fd &= 0xFFFFFFFF
    if fd & 0x80000000:
        return None
    return t.files.file(fd)


def fdget(t, fd):
    """fdget: as fdget_raw, but an O_PATH file is no file (EBADF) for
    read, write, lseek, ioctl, getdents, fsync, ftruncate."""
    f = fdget_raw(t, fd)
    if f is None or f.flags & O_PATH:
        return None
    return f


def sys_dup(t, fildes):
    f = fdget_raw(t, fildes)
    if f is None:
        return -EBADF
    fd = t.files.alloc_fd(f.get(), 0, False, nofile(t))
    if fd < 0:
        f.fput(t.k)
    return fd


def do_dup2(t, oldfd, newfd, flags):
    f = fdget_raw(t, oldfd)
    newfd &= 0xFFFFFFFF
    if newfd >= nofile(t) or newfd >= t.files.max_fds:
        return -EBADF
    if f is None:
        return -EBADF
    t.files.install(t.k, newfd, f.get(), bool(flags & O_CLOEXEC))
    return newfd


def sys_dup2(t, oldfd, newfd):
    if (oldfd & 0xFFFFFFFF) == (newfd & 0xFFFFFFFF):
        return newfd & 0xFFFFFFFF if fdget_raw(t, oldfd) is not None else -EBADF
    return do_dup2(t, oldfd, newfd, 0)


def sys_dup3(t, oldfd, newfd, flags):
    if flags & ~O_CLOEXEC:
        return -EINVAL
    if (oldfd & 0xFFFFFFFF) == (newfd & 0xFFFFFFFF):
        return -EINVAL
    return do_dup2(t, oldfd, newfd, flags)
