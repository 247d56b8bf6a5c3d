# The initramfs (Linux's init/initramfs.c, unpack_to_rootfs): the boot
# loader's module, a cpio archive in the "newc" format, unpacked into the
# root file system (the tmpfs at /) before anything else is mounted.
#
# The format (Documentation/driver-api/early-userspace/buffer-format.rst):
# each entry is a 110-byte header of ASCII — "070701" (or "070702", with a
# checksum this parser does not verify, as Linux only checks it when asked)
# and thirteen 8-digit hex fields — then the NUL-terminated name padded so
# header and name end on a multiple of 4, then the data padded to 4. A
# symlink's data is its target. Hard links share (ino, dev) and nlink > 1;
# as newc writers do, the data comes with the last of them (Linux's
# maybe_link / do_copy); the names before it are linked to the inode made
# for the first. "TRAILER!!!" ends the archive; zero padding may follow it
# (and a second archive may follow that, as Linux accepts concatenated
# archives).
#
# Entries are made with the root SuperBlock's own methods (mkdir, create,
# write, symlink, mknod, link), so the pages of the files are the file
# system's (shmem pages of the tmpfs). A bad archive stops the unpacking
# with an error (Linux: "Initramfs unpacking failed: ..."), and what was
# unpacked so far stays.

from kernel_py.fs.mode import S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK
from kernel_py.lib.errors import KernelError

NEWC_MAGICS = (b"070701", b"070702")
HEADER_LEN = 110
NFIELDS = 13
TRAILER = "TRAILER!!!"
CHUNK = 1 << 16                 # a file's data goes to the file system in 64 KiB writes

# the header's fields, in order
F_INO, F_MODE, F_UID, F_GID, F_NLINK, F_MTIME, F_FILESIZE = 0, 1, 2, 3, 4, 5, 6
F_DEVMAJOR, F_DEVMINOR, F_RDEVMAJOR, F_RDEVMINOR, F_NAMESIZE, F_CHECK = 7, 8, 9, 10, 11, 12


def pad4(n):
    return (n + 3) & ~3


def parse_header(buf, off):
    """The 13 fields of the header at off, or raise EINVAL."""
    if off + HEADER_LEN > len(buf):
        raise KernelError("EINVAL", "initramfs: truncated header at %d" % off)
    magic = bytes(buf[off:off + 6])
    if magic not in NEWC_MAGICS:
        raise KernelError("EINVAL", "initramfs: no cpio magic at %d (%r)" % (off, magic))
    fields = []
    p = off + 6
    for _ in range(NFIELDS):
        try:
            fields.append(int(bytes(buf[p:p + 8]).decode(), 16))
        except ValueError:
            raise KernelError("EINVAL", "initramfs: bad header field at %d" % p)
        p += 8
    return fields


def entries(buf):
    """Yield (name, fields, data) of each entry of the newc archive(s) in
    buf (bytes or a memoryview; data is a slice of it), the trailers left
    out."""
    off = 0
    end = len(buf)
    while off < end:
        if buf[off] == 0:               # padding between or after archives
            off += 4
            continue
        f = parse_header(buf, off)
        nsize = f[F_NAMESIZE]
        name_at = off + HEADER_LEN
        if nsize < 1 or name_at + nsize > end:
            raise KernelError("EINVAL", "initramfs: bad name size %d at %d" % (nsize, off))
        name = bytes(buf[name_at:name_at + nsize - 1]).decode()
        data_at = pad4(name_at + nsize)
        size = f[F_FILESIZE]
        if data_at + size > end:
            raise KernelError("EINVAL", "initramfs: %s: data past the end" % name)
        off = pad4(data_at + size)
        if name == TRAILER:
            continue
        yield name, f, buf[data_at:data_at + size]


class Unpacker:
    """One unpacking into the root file system sb."""

    def __init__(self, sb):
        self.sb = sb
        self.links = {}                 # (ino, major, minor) -> inode of the first name
        self.nr_files = 0
        self.nr_dirs = 0
        self.nr_links = 0
        self.nr_bytes = 0

    def parent(self, path):
        """(directory inode, last name) of a path inside the archive."""
        sb = self.sb
        comps = [c for c in path.split("/") if c and c != "."]
        if not comps:
            return None, None
        d = sb.root
        for c in comps[:-1]:
            nxt = sb.lookup(d, c)
            if nxt is None:                 # a writer may leave out parents: make them
                nxt = sb.mkdir(d, c, 0o755)
            elif not nxt.is_dir:
                raise KernelError("ENOTDIR", "initramfs: %s" % path)
            d = nxt
        return d, comps[-1]

    def clear(self, d, name, is_dir):
        """An existing name is replaced (Linux's clean_path), a directory kept."""
        sb = self.sb
        old = sb.lookup(d, name)
        if old is None:
            return None
        if old.is_dir and is_dir:
            return old
        if old.is_dir:
            sb.rmdir(d, name)
        else:
            sb.unlink(d, name)
        return None

    def add(self, name, f, data):
        d, last = self.parent(name)
        if d is None:
            return                          # "." : the root itself
        sb = self.sb
        mode = f[F_MODE]
        kind = mode & S_IFMT
        perm = mode & 0o7777
        old = self.clear(d, last, kind == S_IFDIR)
        if kind == S_IFDIR:
            if old is None:
                sb.mkdir(d, last, perm)
                self.nr_dirs += 1
        elif kind == S_IFREG:
            self.regular(d, last, f, perm, data)
        elif kind == S_IFLNK:
            sb.symlink(d, last, bytes(data).decode())
            self.nr_links += 1
        elif kind in (S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK):
            sb.mknod(d, last, mode, (f[F_RDEVMAJOR], f[F_RDEVMINOR]))
        else:
            raise KernelError("EINVAL", "initramfs: %s: unknown file type 0%o" % (name, kind))

    def regular(self, d, name, f, perm, data):
        sb = self.sb
        key = (f[F_INO], f[F_DEVMAJOR], f[F_DEVMINOR])
        first = self.links.get(key) if f[F_NLINK] > 1 else None
        if first is not None:
            sb.link(first, d, name)
            ino = first
        else:
            ino = sb.create(d, name, perm)
            if f[F_NLINK] > 1:
                self.links[key] = ino
            self.nr_files += 1
        pos = 0
        n = len(data)
        while pos < n:
            take = min(CHUNK, n - pos)
            w = sb.write(ino, pos, data[pos:pos + take])
            if w <= 0:
                raise KernelError("ENOSPC", "initramfs: %s: short write" % name)
            pos += w
        self.nr_bytes += n


def unpack(sb, buf):
    """Unpack the archive(s) in buf into sb; the Unpacker (its counts).
    Raises KernelError for a bad archive, after unpacking what came before."""
    u = Unpacker(sb)
    for name, f, data in entries(buf):
        u.add(name, f, data)
    return u
