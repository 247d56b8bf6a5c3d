# Open files and file descriptors (Linux's struct file, fs/file.c and
# fs/file_table.c): a File is one open of something — a regular file, a
# directory, the terminal, a pipe end, an eventfd — with its position and
# flags and the operations of what it opened (f_op); an FdTable maps a
# task's descriptors to Files, with the close-on-exec bits. dup() and fork
# share a File (one position); open() makes a new one.
#
# f_op is a FileOperations (Linux's struct file_operations): what each
# kind of file does on read, write, llseek, ioctl, poll and the last close;
# the defaults answer as Linux does for a file without the method.

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
O_DIRECT = 0o40000
O_LARGEFILE = 0o100000
O_DIRECTORY = 0o200000
O_NOFOLLOW = 0o400000
O_NOATIME = 0o1000000
O_CLOEXEC = 0o2000000
O_PATH = 0o10000000
FD_CLOEXEC = 1
# what F_SETFL may change (fs/fcntl.c SETFL_MASK)
SETFL_MASK = O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME


class FileOperations:
    def read(self, f, t, n):
        """bytes (b"" at end of file), -errno, or None: would block (the
        caller sleeps on wait_queue(f) and retries)."""
        return -EINVAL

    def write(self, f, t, data):
        """The count written, -errno, or None: would block."""
        return -EINVAL

    def llseek(self, f, off, whence):
        return -ESPIPE

    def ioctl(self, f, t, cmd, arg):
        return -ENOTTY

    def poll(self, f):
        """(readable, writable) now, for poll/select."""
        return (True, True)

    def wait_queue(self, f):
        """The WaitQueue a blocked reader or writer sleeps on."""
        return None

    def release(self, f, k):
        pass


class File:
    def __init__(self, f_op, flags, private=None, path=""):
        self.f_op = f_op
        self.flags = flags              # O_* as opened (access mode, status flags)
        self.pos = 0
        self.private = private          # what f_op needs: an inode, a pipe end...
        self.path = path                # for /proc/PID/fd and fdinfo
        self.count = 1                  # descriptors and mappings holding it

    def readable(self):
        return (self.flags & O_ACCMODE) in (O_RDONLY, O_RDWR)

    def writable(self):
        return (self.flags & O_ACCMODE) in (O_WRONLY, O_RDWR)

    def get(self):
        self.count += 1
        return self

    def fput(self, k):
        self.count -= 1
        if self.count == 0:
            self.f_op.release(self, k)


class FdTable:
    """Linux's files_struct: fd -> File, and the close-on-exec set."""

    def __init__(self, max_fds=1024):
        self.fds = []
        self.cloexec = set()
        self.max_fds = max_fds
        self.count = 1                  # tasks sharing it (CLONE_FILES)

    def get(self):
        self.count += 1
        return self

    def file(self, fd):
        fds = self.fds
        if 0 <= fd < len(fds):
            return fds[fd]
        return None

    def alloc_fd(self, f, start=0, cloexec=False):
        """The lowest free descriptor >= start, now holding f; -EMFILE."""
        fds = self.fds
        fd = start
        while fd < len(fds) and fds[fd] is not None:
            fd += 1
        if fd >= self.max_fds:
            return -EMFILE
        while len(fds) <= fd:
            fds.append(None)
        fds[fd] = f
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

    def close(self, k, fd):
        f = self.file(fd)
        if f is None:
            return -EBADF
        self.fds[fd] = None
        self.cloexec.discard(fd)
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
        return n

    def open_count(self):
        return sum(1 for f in self.fds if f is not None)
