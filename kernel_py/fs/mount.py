# The namespace at boot (Linux's init/do_mounts.c, init/initramfs.c,
# fs/namespace.c, drivers/base/devtmpfs.c): a tmpfs root (rootfs) into
# which the boot loader's initramfs is unpacked (BusyBox and its links,
# /etc), then the directories a Linux root has where the archive left them
# out, devtmpfs on /dev with the nodes of the devices this kernel drives,
# procfs on /proc, sysfs on /sys; the data disk's FAT is mounted on /mnt by
# fs/vfs.py's init, through Vfs.mount, which calls make_mountpoint.

from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE
from kernel_py.drivers import mem  # noqa: F401 - registers /dev/null & co (char_dev)
from kernel_py.fs import namei
from kernel_py.fs.anon_inodes import AnonFs
from kernel_py.fs.file_table import FileTable
from kernel_py.fs.inode import DT_DIR
from kernel_py.fs.mode import S_IFCHR, S_ISREG
from kernel_py.fs.pipe import PipeFs
from kernel_py.fs.procfs import ProcFs, SysFs
from kernel_py.init import initramfs
from kernel_py.lib.errors import KernelError
from kernel_py.mm.filemap.shmem import TmpFs

ROOT_DIRS = (("bin", 0o755), ("dev", 0o755), ("mnt", 0o755), ("proc", 0o555),
             ("sys", 0o555), ("tmp", 0o1777))
INITRD = "modules"              # the boot loader's modules in hw.reserved(): the initramfs

# devtmpfs's nodes: name, (major, minor), mode (drivers/char/mem.c's
# devlist, drivers/tty/tty_io.c's tty and console)
DEVICES = (
    ("console", (5, 1), 0o600), ("tty", (5, 0), 0o666),
    ("null", (1, 3), 0o666), ("zero", (1, 5), 0o666), ("full", (1, 7), 0o666),
    ("random", (1, 8), 0o666), ("urandom", (1, 9), 0o666), ("kmsg", (1, 11), 0o644),
)
# what udev adds on Linux systems, and programs expect
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"))


def init_namespace(k):
    vfs = k.vfs
    vfs.files = FileTable(k)
    root = TmpFs(k, "rootfs")
    vfs.ns["/"] = root
    populate_rootfs(k, root)
    for name, mode in ROOT_DIRS:
        if root.lookup(root.root, name) is None:
            root.mkdir(root.root, name, mode)
    dev = TmpFs(k, "devtmpfs")
    for name, rdev, mode in DEVICES:
        dev.mknod(dev.root, name, S_IFCHR | mode, rdev)
    for name, target in DEV_LINKS:
        dev.symlink(dev.root, name, target)
    vfs.ns["/dev"] = dev
    vfs.ns["/proc"] = ProcFs(k)
    vfs.ns["/sys"] = SysFs(k)
    vfs.pipefs = PipeFs(k)
    vfs.anon = AnonFs(k)
    vfs.shm_mnt = TmpFs(k, "tmpfs")       # memfd_create's files (shm_mnt, mm/shmem.c's shmem_fill_super)


def populate_rootfs(k, root):
    """init/initramfs.c's populate_rootfs: each module the boot loader
    passed is a newc archive, unpacked into the root; `noinitrd` on the
    command line leaves them alone. Unpacked, the module's whole pages go
    to the page allocator (free_initrd_mem), as Linux's "Freeing initrd
    memory" does."""
    if "noinitrd" in k.params:
        return
    for start, end, name in k.memmap.reserved:
        if name != INITRD or end <= start:
            continue
        k.printk("Trying to unpack rootfs image as initramfs... (%d KiB at 0x%x)" % (
            (end - start) >> 10, start))
        try:
            u = initramfs.unpack(root, k.hw.mem(start, end - start))
        except KernelError as exc:
            k.printk("Initramfs unpacking failed: %s (%s)" % (exc.detail, exc.errname))
            continue
        k.printk("initramfs: %d files (%d KiB), %d directories, %d symlinks" % (
            u.nr_files, u.nr_bytes >> 10, u.nr_dirs, u.nr_links))
        free_initrd_mem(k, start, end)


def free_initrd_mem(k, start, end):
    """The module's pages to the buddy (free_reserved_area), the partial
    last page too: the boot loader starts each module on a page of its own."""
    first, last = start >> PAGE_SHIFT, (end + PAGE_SIZE - 1) >> PAGE_SHIFT
    if last > first:
        k.buddy.free_range(first, last)
        k.printk("Freeing initrd memory: %dK" % ((last - first) << 2))


def make_mountpoint(k, point):
    """mkdir -p of a mount point on the file systems below it, where they
    allow it; the mount works without (namei finds mounts by path)."""
    comps = [c for c in point.encode().split(b"/") if c]
    stack = namei.root_stack(k)
    for c in comps:
        try:
            stack = namei.walk(k, None, stack, [c], True, False, namei.Links())
            continue
        except KernelError:
            pass
        path, sb, d = stack[-1]
        try:
            sb.mkdir(d, c.decode(), 0o755)
            stack = namei.walk(k, None, stack, [c], True, False, namei.Links())
        except KernelError:
            return


def namespace_file(k, path):
    """Vfs.get_file for a path outside the block mounts: (file system,
    inode) of a regular file, pinned (see Vfs.get_file)."""
    if not path.startswith("/"):
        raise KernelError("EINVAL", "%s: give an absolute path" % path)
    stack = namei.lookup(k, None, namei.AT_FDCWD, path.encode())
    p, sb, ino = stack[-1]
    if ino.is_dir:
        raise KernelError("EISDIR", p)
    if not S_ISREG(sb.mode(ino)):
        raise KernelError("EACCES", "%s: not a regular file" % p)
    fat = getattr(sb, "fat", None)
    if fat is not None:                 # FAT reached through a symlink: as Vfs.get_file
        fat.mapping_of(ino)
        ino.refs += 1
        return fat, ino
    sb.mapping_of(ino)
    sb.pin(ino)
    return sb, ino


def namespace_stack(k, path):
    """The lookup stack of a path of the namespace programs see, for the
    console (no task: the walk starts at the root)."""
    if not path.startswith("/"):
        raise KernelError("EINVAL", "%s: give an absolute path" % path)
    if "/" not in k.vfs.ns:
        raise KernelError("ENOENT", path)
    return namei.lookup(k, None, namei.AT_FDCWD, path.encode())


def namespace_read(k, path):
    """The console's cat of a file outside the block mounts (the tmpfs
    root, devtmpfs): its bytes through its file system's read."""
    p, sb, ino = namespace_stack(k, path)[-1]
    if ino.is_dir:
        raise KernelError("EISDIR", p)
    if not S_ISREG(sb.mode(ino)):
        raise KernelError("EINVAL", "%s: not a regular file" % p)
    return sb.read(ino, 0, sb.size(ino))


def namespace_listdir(k, path):
    """[(name, is_dir, size)] sorted by name, as Vfs.listdir, for a
    directory (or a file: itself) of the namespace."""
    p, sb, ino = namespace_stack(k, path)[-1]
    if not ino.is_dir:
        return [(p.rsplit("/", 1)[-1], False, sb.size(ino))]
    out = []
    for name, _ino, dtype in sb.readdir(ino):
        child = sb.lookup(ino, name)
        size = sb.size(child) if child is not None and not child.is_dir else 0
        out.append((name, dtype == DT_DIR, size))
    return sorted(out)
