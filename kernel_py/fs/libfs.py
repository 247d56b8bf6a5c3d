# File operations every file system shares (Linux's fs/libfs.c,
# fs/read_write.c generic_file_llseek, mm/filemap.c's generic read/write
# paths, fs/seq_file.c): regular files over their SuperBlock's read, write
# and truncate; directories (getdents is fs/readdir.py's, over
# SuperBlock.readdir); O_PATH handles; and generated text files, the
# seq_file of the pseudo file systems (fs/procfs.py).

from kernel_py.fs.char_dev import chrdev_open
from kernel_py.fs.file import (
    MMAP_FILE, O_APPEND, FileOperations,
)
from kernel_py.fs.mode import S_IFMT, S_IFCHR, S_IFDIR, S_IFREG
from kernel_py.lib.errno import EBADF, EFBIG, EINVAL, EISDIR, ENXIO, errno_of
from kernel_py.lib.errors import KernelError

SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE = 0, 1, 2, 3, 4


def kerr(e):
    """A KernelError as a syscall's -errno."""
    return -errno_of(e.errname)


def generic_llseek(f, off, whence, size, maxsize):
    """generic_file_llseek_size: EINVAL for a negative result or one past
    maxsize, ENXIO for SEEK_DATA/SEEK_HOLE at or past the end."""
    if whence == SEEK_SET:
        new = off
    elif whence == SEEK_CUR:
        if off == 0:
            return f.pos
        new = f.pos + off
    elif whence == SEEK_END:
        new = size + off
    elif whence == SEEK_DATA:
        if off < 0 or off >= size:
            return -ENXIO
        new = off                       # no holes are reported: all data
    elif whence == SEEK_HOLE:
        if off < 0 or off >= size:
            return -ENXIO
        new = size
    else:
        return -EINVAL
    if new < 0 or new > maxsize:
        return -EINVAL
    f.pos = new
    return new


class RegularFile(FileOperations):
    """A regular file of any file system with data (FAT, ramfs)."""

    read_more = True
    seekable = True
    mmap = MMAP_FILE

    def read(self, f, t, n):
        return self.pread(f, t, n, f.pos)

    def read_done(self, f, n):
        f.pos += n

    def pread(self, f, t, n, pos):
        try:
            return f.sb.read(f.inode, pos, n)
        except KernelError as e:
            return kerr(e)

    def write(self, f, t, data):
        r = self.pwrite(f, t, data, f.pos, True)
        return r

    def pwrite(self, f, t, data, pos, move=False):
        sb = f.sb
        ino = f.inode
        if f.flags & O_APPEND:
            pos = sb.size(ino)          # as Linux, pwrite on an O_APPEND file appends too
        limit = sb.max_bytes
        if pos >= limit:
            return -EFBIG if data else 0
        if pos + len(data) > limit:
            data = data[:limit - pos]
        try:
            r = sb.write(ino, pos, data)
        except KernelError as e:
            return kerr(e)
        if move:
            f.pos = pos + r
        return r

    def llseek(self, f, off, whence):
        return generic_llseek(f, off, whence, f.sb.size(f.inode), f.sb.max_bytes)

    def fsync(self, f):
        try:
            f.sb.fsync(f.inode)
        except KernelError as e:
            return kerr(e)
        return 0


class Directory(FileOperations):
    """An open directory: read() is EISDIR (generic_read_dir); the position
    counts entries (fs/readdir.py keeps the listing in f.private)."""

    seekable = True                 # FMODE_PREAD is set: pread is EISDIR, not ESPIPE

    def read(self, f, t, n):
        return -EISDIR

    def pread(self, f, t, n, pos):
        return -EISDIR

    def llseek(self, f, off, whence):
        # dcache_dir_lseek: SEEK_SET and SEEK_CUR only; a new position
        # makes the next getdents64 list again (seekdir/rewinddir)
        if whence == SEEK_CUR:
            off += f.pos
        elif whence != SEEK_SET:
            return -EINVAL
        if off < 0:
            return -EINVAL
        if off != f.pos:
            f.pos = off
            f.private = None
        elif off == 0:
            f.private = None
        return off

    def fsync(self, f):
        try:
            f.sb.fsync(f.inode)
        except KernelError as e:
            return kerr(e)
        return 0


class PathOnly(FileOperations):
    """O_PATH: a location, not an open file (fdget refuses it: EBADF)."""

    def read(self, f, t, n):
        return -EBADF

    def write(self, f, t, data):
        return -EBADF


PATH_ONLY = PathOnly()
REGULAR = RegularFile()
DIRECTORY = Directory()


def open_by_mode(sb, ino, f, t):
    """The file operations for an inode by its type (do_dentry_open)."""
    mode = sb.mode(ino)
    kind = mode & S_IFMT
    if kind == S_IFREG:
        return REGULAR
    if kind == S_IFDIR:
        return DIRECTORY
    if kind == S_IFCHR:
        return chrdev_open(sb.k, ino.rdev, f)
    raise KernelError("ENXIO", "cannot open this kind of file")


class SeqText(FileOperations):
    """A generated text file (seq_file): the text is made at the first read
    from position 0 (and again after a seek back to 0), then read in
    chunks at any offset; each write(2) is handed to the file's write
    function as one piece of text. f.private is the file's state, a
    PseudoOpen (fs/procfs.py): generate() -> bytes, store(bytes) -> count."""

    read_more = True
    seekable = True

    def text(self, f):
        st = f.private
        if st.text is None:
            try:
                st.text = st.generate()
            except KernelError as e:
                return kerr(e)
        return st.text

    def read(self, f, t, n):
        return self.pread(f, t, n, f.pos)

    def pread(self, f, t, n, pos):
        text = self.text(f)
        if type(text) is int:
            return text
        if pos < 0:
            return -EINVAL
        return text[pos:pos + n]

    def read_done(self, f, n):
        f.pos += n

    def write(self, f, t, data):
        r = f.private.store(data)
        if r > 0:
            f.pos += r
        return r

    def pwrite(self, f, t, data, pos):
        return f.private.store(data)

    def llseek(self, f, off, whence):
        # seq_lseek: SEEK_SET and SEEK_CUR; back to 0 regenerates
        if whence == SEEK_CUR:
            off += f.pos
        elif whence != SEEK_SET:
            return -EINVAL
        if off < 0:
            return -EINVAL
        f.pos = off
        if off == 0:
            f.private.text = None
        return off


SEQ_TEXT = SeqText()
