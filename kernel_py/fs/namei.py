# Path lookup and the calls that make and remove names (Linux's
# fs/namei.c): link_path_walk's component-by-component walk with `.`,
# `..`, repeated slashes, mount crossing, symlinks (ELOOP past MAXSYMLINKS,
# 40, in one lookup), the *at calls' dirfd (AT_FDCWD = -100) and
# AT_EMPTY_PATH; mkdir, rmdir, unlink, rename, link and symlink with their
# *at forms.
#
# Where a lookup stands is a stack of (path, SuperBlock, inode) from the
# root down: `..` pops it (and never above the root, as Linux's follow_dotdot
# at the root), a mount point crossed pushes the mounted file system's
# root, an absolute symlink restarts it at the root. The path strings are
# the canonical absolute paths (no symlinks in them): what getcwd,
# /proc/PID/cwd and /proc/PID/fd show.
#
# Mounts are found by path (Vfs.ns: mount point -> SuperBlock). Linux finds
# them by dentry; a path works the same for lookups and lets the console
# keep mounting on a path that has no directory beneath (`mount /dev/sda
# /data`, which Linux would refuse with ENOENT; Vfs.mount makes the
# directory on the root file system when it can).
#
# The working directory (t.fs.cwd) and a directory fd are kept as those
# canonical paths, and a lookup relative to them walks the path again
# (Linux keeps a struct path). A directory renamed after chdir or open is
# thus found under its old name only while that name still leads to it;
# an open directory fd that no longer does is used as it is, without `..`.
#
# Names are UTF-8 here (FAT's long names are UTF-16 on disk): a name that
# is not valid UTF-8 cannot exist (ENOENT) and cannot be created (EINVAL).

from kernel_py.fs.file import fdget_raw
from kernel_py.fs.inode import (
    AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, MAXSYMLINKS, NAME_MAX, PATH_MAX,
    new_decode_dev,
)
from kernel_py.fs.mode import S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK
from kernel_py.fs.libfs import kerr
from kernel_py.lib.errno import EFAULT, EINVAL, ENAMETOOLONG, ENOENT, EPERM
from kernel_py.lib.errors import KernelError

RENAME_NOREPLACE = 1


class Jump:
    """A magic link's target (/proc/PID/fd/N): the open file's own
    (sb, inode), with the text readlink shows."""

    def __init__(self, text, sb, inode):
        self.text = text
        self.sb = sb
        self.inode = inode


def getname(t, uptr):
    """The path at a user pointer (bytes, no NUL), or -EFAULT /
    -ENAMETOOLONG (PATH_MAX counts the NUL)."""
    s = t.k.hw.strncpy_from_user(uptr, PATH_MAX)
    if s is None:
        return -EFAULT
    if len(s) >= PATH_MAX:
        return -ENAMETOOLONG
    return bytes(s)


def s32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def join(path, name):
    return "/" + name if path == "/" else path + "/" + name


def decode(c):
    try:
        return c.decode()
    except (UnicodeError, ValueError):
        return None


def is_link(sb, ino):
    return not ino.is_dir and sb.mode(ino) & S_IFMT == S_IFLNK


class Links:
    """The symlinks followed in one lookup."""

    def __init__(self):
        self.n = 0

    def follow(self):
        self.n += 1
        if self.n > MAXSYMLINKS:
            raise KernelError("ELOOP", "too many levels of symbolic links")


def root_stack(k):
    vfs = k.vfs
    sb = vfs.ns["/"]
    return [("/", sb, sb.root)]


def path_stack(k, t, path, links=None):
    """The stack of an absolute canonical path (the cwd, a directory fd's path)."""
    comps = [c for c in path.encode().split(b"/") if c]
    return walk(k, t, root_stack(k), comps, True, False, links or Links())


def start_stack(k, t, path, dirfd):
    """Where a lookup of path starts: the root, the cwd, or dirfd's directory."""
    if path[:1] == b"/":
        return root_stack(k)
    dirfd = s32(dirfd)
    if dirfd == AT_FDCWD:
        cwd = t.fs.cwd if t.fs is not None else "/"
        return path_stack(k, t, cwd)
    f = fdget_raw(t, dirfd)
    if f is None:
        raise KernelError("EBADF", "dirfd %d" % dirfd)
    if f.inode is None or not f.inode.is_dir:
        raise KernelError("ENOTDIR", "dirfd %d is not a directory" % dirfd)
    return file_stack(k, t, f)


def file_stack(k, t, f):
    """A directory File's place: its path walked again, or (when the path
    no longer leads to it) the File alone."""
    if f.path.startswith("/"):
        try:
            st = path_stack(k, t, f.path)
            if st[-1][2] is f.inode:
                return st
        except KernelError:
            pass
    return [(f.path, f.sb, f.inode)]


def walk(k, t, stack, comps, follow_last, must_dir, links):
    """link_path_walk over comps (bytes, no empty ones) from stack; the
    final stack. follow_last: a symlink as the last component is
    followed; must_dir: the end must be a directory (a trailing slash,
    O_DIRECTORY)."""
    ns = k.vfs.ns
    todo = list(comps)
    todo.reverse()
    stack = list(stack)
    while todo:
        c = todo.pop()
        last = not todo
        if len(c) > NAME_MAX:
            raise KernelError("ENAMETOOLONG", "a name longer than %d bytes" % NAME_MAX)
        path, sb, ino = stack[-1]
        if not ino.is_dir:
            raise KernelError("ENOTDIR", path)
        if c == b".":
            continue
        if c == b"..":
            if len(stack) > 1:
                stack.pop()
            continue
        name = decode(c)
        if name is None:
            raise KernelError("ENOENT", "a name that is not UTF-8")
        child_path = join(path, name)
        msb = ns.get(child_path)
        if msb is not None:
            stack.append((child_path, msb, msb.root))
            continue
        child = sb.lookup(ino, name)
        if child is None:
            raise KernelError("ENOENT", child_path)
        if (not last or follow_last) and is_link(sb, child):
            links.follow()
            target = sb.get_link(child, t)
            if isinstance(target, Jump):
                if target.sb is None:
                    raise KernelError("ENOENT", target.text)
                stack = [(target.text, target.sb, target.inode)]
                continue
            tb = target.encode()
            if not tb:
                raise KernelError("ENOENT", "an empty symbolic link")
            if tb[:1] == b"/":
                stack = root_stack(k)
            more = [x for x in tb.split(b"/") if x]
            more.reverse()
            todo.extend(more)
            continue
        stack.append((child_path, sb, child))
    if must_dir and not stack[-1][2].is_dir:
        raise KernelError("ENOTDIR", stack[-1][0])
    return stack


def split(path):
    """(components, trailing slash)."""
    comps = [c for c in path.split(b"/") if c]
    return comps, bool(comps) and path[-1:] == b"/"


def lookup(k, t, dirfd, path, follow=True, must_dir=False, empty=False, links=None):
    """path_lookupat: the final stack. An empty path is ENOENT unless
    `empty` (AT_EMPTY_PATH: dirfd itself, any kind of file)."""
    if not path:
        if not empty:
            raise KernelError("ENOENT", "empty path")
        dirfd = s32(dirfd)
        if dirfd == AT_FDCWD:
            return path_stack(k, t, t.fs.cwd)
        f = fdget_raw(t, dirfd)
        if f is None:
            raise KernelError("EBADF", "fd %d" % dirfd)
        if f.inode is None:
            return [(f.path, None, None)]
        if f.inode.is_dir:
            return file_stack(k, t, f)
        return [(f.path, f.sb, f.inode)]
    comps, slash = split(path)
    stack = start_stack(k, t, path, dirfd)
    return walk(k, t, stack, comps, follow or slash, must_dir or slash, links or Links())


def parent(k, t, dirfd, path, links=None):
    """path_parentat: (stack of the parent directory, last name as str or
    None for "/" (no last component), trailing slash). The last name may
    be "." or ".." (the callers answer as Linux's LAST_DOT/LAST_DOTDOT)."""
    if not path:
        raise KernelError("ENOENT", "empty path")
    comps, slash = split(path)
    stack = start_stack(k, t, path, dirfd)
    if not comps:
        return stack, None, slash
    stack = walk(k, t, stack, comps[:-1], True, False, links or Links())
    if not stack[-1][2].is_dir:
        raise KernelError("ENOTDIR", stack[-1][0])
    last = comps[-1]
    if len(last) > NAME_MAX:
        raise KernelError("ENAMETOOLONG", "a name longer than %d bytes" % NAME_MAX)
    name = decode(last)
    if name is None:
        raise KernelError("EINVAL", "a name that is not UTF-8")
    return stack, name, slash


def child_of(k, stack, name):
    """(child path, sb, inode or None, is a mount point) of name in the
    parent directory at the top of stack."""
    path, sb, d = stack[-1]
    cp = join(path, name)
    msb = k.vfs.ns.get(cp)
    if msb is not None:
        return cp, msb, msb.root, True
    return cp, sb, sb.lookup(d, name), False


def umask(t):
    return t.fs.umask if t.fs is not None else 0o022


def filename_create(k, t, dfd, path):
    """Linux's filename_create for mkdir, mknod, symlink and link: (parent
    directory's stack, new name, its path, its super block); EEXIST when
    the name exists (or is / . ..), EROFS on a read-only file system."""
    stack, name, slash = parent(k, t, dfd, path)
    if name is None or name in (".", ".."):
        raise KernelError("EEXIST", "%s: / . or .." % path)
    cp, sb, ino, mnt = child_of(k, stack, name)
    if ino is not None:
        raise KernelError("EEXIST", cp)
    if sb.read_only:
        raise KernelError("EROFS", cp)
    return stack, name, cp, sb


# -- mkdir, rmdir, unlink ----------------------------------------------------------

def sys_mkdirat(t, dfd, upath, mode):
    k = t.k
    path = getname(t, upath)
    if type(path) is int:
        return path
    try:
        stack, name, cp, sb = filename_create(k, t, dfd, path)
        sb.mkdir(stack[-1][2], name, mode & ~umask(t) & 0o1777)
    except KernelError as e:
        return kerr(e)
    return 0


def sys_mkdir(t, upath, mode):
    return sys_mkdirat(t, AT_FDCWD, upath, mode)


def sys_mknodat(t, dfd, upath, mode, dev):
    """do_mknodat: a regular file (type 0 or S_IFREG), a device node (root
    has CAP_MKNOD), a FIFO or a socket's name; a directory is mkdir's."""
    k = t.k
    mode &= 0xFFFFFFFF
    kind = mode & S_IFMT
    if kind == S_IFDIR:
        return -EPERM
    if kind not in (0, S_IFREG, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK):
        return -EINVAL
    path = getname(t, upath)
    if type(path) is int:
        return path
    try:
        stack, name, cp, sb = filename_create(k, t, dfd, path)
        d = stack[-1][2]
        perm = mode & ~umask(t) & 0o7777
        if kind in (0, S_IFREG):
            sb.create(d, name, perm)
        else:
            sb.mknod(d, name, kind | perm,
                     new_decode_dev(dev) if kind in (S_IFCHR, S_IFBLK) else 0)
    except KernelError as e:
        return kerr(e)
    return 0


def sys_mknod(t, upath, mode, dev):
    return sys_mknodat(t, AT_FDCWD, upath, mode, dev)


def do_rmdir(t, dfd, path):
    k = t.k
    try:
        stack, name, slash = parent(k, t, dfd, path)
        if name is None:
            raise KernelError("EBUSY", "/")
        if name == ".":
            raise KernelError("EINVAL", "rmdir .")
        if name == "..":
            raise KernelError("ENOTEMPTY", "rmdir ..")
        cp, sb, ino, mnt = child_of(k, stack, name)
        if mnt:
            raise KernelError("EBUSY", "%s is a mount point" % cp)
        if ino is None:
            raise KernelError("ENOENT", cp)
        if not ino.is_dir:
            raise KernelError("ENOTDIR", cp)
        if sb.read_only:
            raise KernelError("EROFS", cp)
        sb.rmdir(stack[-1][2], name)
    except KernelError as e:
        return kerr(e)
    return 0


def sys_rmdir(t, upath):
    path = getname(t, upath)
    if type(path) is int:
        return path
    return do_rmdir(t, AT_FDCWD, path)


def do_unlink(t, dfd, path):
    k = t.k
    try:
        stack, name, slash = parent(k, t, dfd, path)
        if name is None or name in (".", ".."):
            raise KernelError("EISDIR", "unlink of a directory")
        cp, sb, ino, mnt = child_of(k, stack, name)
        if ino is None:
            raise KernelError("ENOENT", cp)
        if ino.is_dir:
            raise KernelError("EISDIR", cp)
        if slash:
            raise KernelError("ENOTDIR", cp)
        if sb.read_only:
            raise KernelError("EROFS", cp)
        sb.unlink(stack[-1][2], name)
    except KernelError as e:
        return kerr(e)
    return 0


def sys_unlink(t, upath):
    path = getname(t, upath)
    if type(path) is int:
        return path
    return do_unlink(t, AT_FDCWD, path)


def sys_unlinkat(t, dfd, upath, flag):
    if flag & ~AT_REMOVEDIR:
        return -EINVAL
    path = getname(t, upath)
    if type(path) is int:
        return path
    if flag & AT_REMOVEDIR:
        return do_rmdir(t, dfd, path)
    return do_unlink(t, dfd, path)


# -- rename -------------------------------------------------------------------------

def sys_renameat2(t, olddfd, uold, newdfd, unew, flags):
    k = t.k
    flags &= 0xFFFFFFFF
    if flags & ~RENAME_NOREPLACE:
        return -EINVAL                      # RENAME_EXCHANGE and RENAME_WHITEOUT: not here
    old = getname(t, uold)
    if type(old) is int:
        return old
    new = getname(t, unew)
    if type(new) is int:
        return new
    try:
        ost, oname, oslash = parent(k, t, olddfd, old)
        nst, nname, nslash = parent(k, t, newdfd, new)
        if oname is None or oname in (".", "..") or nname is None or nname in (".", ".."):
            raise KernelError("EBUSY", "rename of / . or ..")
        ocp, osb, oino, omnt = child_of(k, ost, oname)
        ncp, nsb, nino, nmnt = child_of(k, nst, nname)
        if oino is None:
            raise KernelError("ENOENT", ocp)
        if omnt or nmnt:
            raise KernelError("EBUSY", "a mount point")
        if osb is not nsb or ost[-1][1] is not nst[-1][1]:
            raise KernelError("EXDEV", "%s and %s are on different file systems" % (ocp, ncp))
        if (oslash or nslash) and not oino.is_dir:
            raise KernelError("ENOTDIR", ocp)
        if nino is not None and flags & RENAME_NOREPLACE:
            raise KernelError("EEXIST", ncp)
        od, nd = ost[-1][2], nst[-1][2]
        if nino is oino and od is nd and oname == nname:
            return 0                        # the same name: nothing to do
        if oino.is_dir:
            if nino is not None and nino is not oino and not nino.is_dir:
                raise KernelError("ENOTDIR", ncp)
            if (nst[-1][0] + "/").startswith(ocp + "/"):
                raise KernelError("EINVAL", "%s would move into itself" % ocp)
        elif nino is not None and nino is not oino and nino.is_dir:
            raise KernelError("EISDIR", ncp)
        if osb.read_only:
            raise KernelError("EROFS", ocp)
        osb.rename(od, oname, nd, nname)
    except KernelError as e:
        return kerr(e)
    return 0


def sys_renameat(t, olddfd, uold, newdfd, unew):
    return sys_renameat2(t, olddfd, uold, newdfd, unew, 0)


def sys_rename(t, uold, unew):
    return sys_renameat2(t, AT_FDCWD, uold, AT_FDCWD, unew, 0)


# -- link, symlink ------------------------------------------------------------------

def sys_linkat(t, olddfd, uold, newdfd, unew, flags):
    k = t.k
    if flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH):
        return -EINVAL
    old = getname(t, uold)
    if type(old) is int:
        return old
    new = getname(t, unew)
    if type(new) is int:
        return new
    try:
        ost = lookup(k, t, olddfd, old, bool(flags & AT_SYMLINK_FOLLOW), False,
                     bool(flags & AT_EMPTY_PATH))
        nst, nname, ncp, nsb = filename_create(k, t, newdfd, new)
        path, sb, ino = ost[-1]
        if sb is None:
            raise KernelError("ENOENT", path)
        if sb is not nst[-1][1]:
            raise KernelError("EXDEV", "%s and %s are on different file systems" % (path, ncp))
        if ino.is_dir:
            raise KernelError("EPERM", "hard link to a directory")
        sb.link(ino, nst[-1][2], nname)
    except KernelError as e:
        return kerr(e)
    return 0


def sys_link(t, uold, unew):
    return sys_linkat(t, AT_FDCWD, uold, AT_FDCWD, unew, 0)


def sys_symlinkat(t, utarget, newdfd, unew):
    k = t.k
    target = getname(t, utarget)
    if type(target) is int:
        return target
    new = getname(t, unew)
    if type(new) is int:
        return new
    if not target:
        return -ENOENT
    text = decode(target)
    if text is None:
        return -EINVAL
    try:
        nst, nname, ncp, nsb = filename_create(k, t, newdfd, new)
        nsb.symlink(nst[-1][2], nname, text)
    except KernelError as e:
        return kerr(e)
    return 0


def sys_symlink(t, utarget, unew):
    return sys_symlinkat(t, utarget, AT_FDCWD, unew)
