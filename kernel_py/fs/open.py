# open and its relatives (Linux's fs/open.c, path_openat in fs/namei.c):
# open, openat, creat, close, access, faccessat, faccessat2, chdir,
# fchdir, chmod, fchmod, fchmodat, chown, fchown, lchown, fchownat,
# truncate, ftruncate.
#
# Everything runs as root here (uid 0, every capability): permission bits
# do not stop an open, except where Linux binds root too — a read-only
# file system (EROFS), a directory opened for writing (EISDIR), execute
# needing some x bit, and the pseudo-files that enforce their mode
# (fs/procfs.py).

from kernel_py.fs import namei
from kernel_py.fs.file import (
    O_ACCMODE, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_LARGEFILE, O_NOCTTY,
    O_NOFOLLOW, O_PATH, O_RDONLY, O_TRUNC, O_WRONLY, __O_TMPFILE, File, fdget, fdget_raw, nofile,
)
from kernel_py.fs.inode import AT_EACCESS, AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW
from kernel_py.fs.mode import S_IALLUGO, S_IFMT, S_IFREG, S_ISREG
from kernel_py.fs.libfs import PATH_ONLY, kerr
from kernel_py.fs.pipe import fifo_wait
from kernel_py.kernel.signal import signal_pending
from kernel_py.lib.errno import EBADF, EINVAL, EOPNOTSUPP, ENOTDIR, ERESTARTSYS
from kernel_py.lib.errors import KernelError

# what O_PATH keeps (build_open_flags)
O_PATH_FLAGS = O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC
F_OK, X_OK, W_OK, R_OK = 0, 1, 2, 4


def do_filp_open(k, t, dfd, path, flags, mode):
    """path_openat: the File (with its filp object, inode pinned), or raise."""
    links = namei.Links()
    if not flags & O_CREAT:
        follow = not flags & O_NOFOLLOW
        stack = namei.lookup(k, t, dfd, path, follow, bool(flags & O_DIRECTORY), False, links)
        p, sb, ino = stack[-1]
        if namei.is_link(sb, ino) and not flags & O_PATH:
            raise KernelError("ELOOP", "%s is a symbolic link (O_NOFOLLOW)" % p)
        return finish_open(k, t, p, sb, ino, flags, False)
    # O_CREAT: the parent, then the last name (followed if a symlink,
    # unless O_EXCL or O_NOFOLLOW)
    stack, name, slash = namei.parent(k, t, dfd, path, links)
    while True:
        if name is None or name in (".", ".."):
            raise KernelError("EISDIR", "O_CREAT of a directory")
        cp, sb, ino, mnt = namei.child_of(k, stack, name)
        d = stack[-1][2]
        if ino is None:
            if slash:
                raise KernelError("EISDIR", "%s/ cannot be created as a file" % cp)
            if sb.read_only:
                raise KernelError("EROFS", cp)
            ino = sb.create(d, name, mode & ~namei.umask(t) & 0o7777)
            return finish_open(k, t, cp, sb, ino, flags, True)
        if flags & O_EXCL:
            raise KernelError("EEXIST", cp)
        if namei.is_link(sb, ino):
            if flags & O_NOFOLLOW:
                raise KernelError("ELOOP", "%s is a symbolic link (O_NOFOLLOW)" % cp)
            links.follow()
            target = sb.get_link(ino, t)
            if isinstance(target, namei.Jump):
                if target.sb is None:
                    raise KernelError("ENOENT", target.text)
                return finish_open(k, t, target.text, target.sb, target.inode, flags, False)
            tb = target.encode()
            if not tb:
                raise KernelError("ENOENT", "an empty symbolic link")
            comps, slash = namei.split(tb)
            if tb[:1] == b"/":
                stack = namei.root_stack(k)
            if not comps:
                name = None
                continue
            stack = namei.walk(k, t, stack, comps[:-1], True, False, links)
            if not stack[-1][2].is_dir:
                raise KernelError("ENOTDIR", stack[-1][0])
            name = namei.decode(comps[-1])
            if name is None:
                raise KernelError("EINVAL", "a name that is not UTF-8")
            continue
        if ino.is_dir:
            raise KernelError("EISDIR", cp)
        return finish_open(k, t, cp, sb, ino, flags, False)


def finish_open(k, t, path, sb, ino, flags, created):
    """do_open and vfs_open: the checks on what was found, then the File."""
    acc = flags & O_ACCMODE
    if flags & O_PATH:
        if flags & O_DIRECTORY and not ino.is_dir:
            raise KernelError("ENOTDIR", path)
        stored = flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW)
    else:
        if ino.is_dir:
            if acc != O_RDONLY or flags & O_TRUNC:
                raise KernelError("EISDIR", path)
        elif flags & O_DIRECTORY:
            raise KernelError("ENOTDIR", path)
        kind = sb.mode(ino) & S_IFMT
        if sb.read_only and (acc != O_RDONLY or flags & O_TRUNC) and kind == S_IFREG:
            raise KernelError("EROFS", path)
        stored = (flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC)) | O_LARGEFILE
    f = File(PATH_ONLY, stored, None, path)
    f.sb = sb
    f.inode = ino
    k.vfs.files.alloc_file(f)
    sb.pin(ino)
    f.pinned = True
    try:
        if not flags & O_PATH:
            f.f_op = sb.open(ino, f, t)
            if flags & O_TRUNC and S_ISREG(sb.mode(ino)) and not created and sb.size(ino):
                sb.truncate(ino, 0)
    except KernelError:
        f.f_op = PATH_ONLY
        f.fput(k)
        raise
    except Exception:
        f.f_op = PATH_ONLY
        f.fput(k)
        raise
    return f


def filp_open(k, t, path, flags, mode=0):
    """The kernel's own open (fork.spawn_user's console): a File, or raise."""
    return do_filp_open(k, t, AT_FDCWD, path.encode(), flags, mode)


def do_sys_open(t, dfd, upath, flags, mode):
    k = t.k
    flags &= 0xFFFFFFFF
    mode &= 0o7777
    path = namei.getname(t, upath)
    if type(path) is int:
        return path
    if flags & __O_TMPFILE:
        return -EOPNOTSUPP              # O_TMPFILE: no unnamed files here
    if flags & O_PATH:
        flags &= O_PATH_FLAGS
    elif flags & O_CREAT and flags & O_DIRECTORY:
        return -EINVAL                  # as Linux since 6.4 (and this host's)
    try:
        f = do_filp_open(k, t, dfd, path, flags, mode)
    except KernelError as e:
        return kerr(e)
    wait = fifo_wait(f)
    if wait is not None:
        return wait_for_partner(t, f, flags, wait)
    return install_fd(t, f, flags)


def install_fd(t, f, flags):
    fd = t.files.alloc_fd(f, 0, bool(flags & O_CLOEXEC), nofile(t))
    if fd < 0:
        f.fput(t.k)
    return fd


def wait_for_partner(t, f, flags, wait):
    """fs/pipe.c's wait_for_partner as the open's continuation: the FIFO
    end is open and counted; the descriptor comes once the other end's
    open counter moves. A signal undoes the open (-ERESTARTSYS)."""
    p, counter, cur = wait

    def attempt():
        if getattr(p, counter) != cur:
            t.open_file = None
            return install_fd(t, f, flags)
        if signal_pending(t):
            t.open_file = None
            f.fput(t.k)
            return -ERESTARTSYS
        t.open_file = f                 # kmemleak's walk finds it here while the task sleeps
        return t.k.sched.sleep(t, p.wait, attempt)
    return attempt()


def sys_openat(t, dfd, upath, flags, mode):
    return do_sys_open(t, dfd, upath, flags, mode)


def sys_open(t, upath, flags, mode):
    return do_sys_open(t, AT_FDCWD, upath, flags, mode)


def sys_creat(t, upath, mode):
    return do_sys_open(t, AT_FDCWD, upath, O_CREAT | O_WRONLY | O_TRUNC, mode)


def sys_close(t, fd):
    fd &= 0xFFFFFFFF
    if fd & 0x80000000:
        return -EBADF
    return t.files.close(t.k, fd)


# -- access -------------------------------------------------------------------------

def do_faccessat(t, dfd, upath, mode, flags):
    k = t.k
    if mode & ~7:
        return -EINVAL
    if flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        return -EINVAL
    path = namei.getname(t, upath)
    if type(path) is int:
        return path
    try:
        stack = namei.lookup(k, t, dfd, path, not flags & AT_SYMLINK_NOFOLLOW, False,
                             bool(flags & AT_EMPTY_PATH))
    except KernelError as e:
        return kerr(e)
    p, sb, ino = stack[-1]
    if sb is None:
        return 0
    m = sb.mode(ino)
    kind = m & S_IFMT
    if mode & W_OK and sb.read_only and (kind == S_IFREG or ino.is_dir):
        return -30                      # EROFS
    if mode & X_OK and not ino.is_dir and not m & 0o111:
        return -13                      # EACCES: root still needs an x bit
    check = getattr(sb, "access", None)
    if check is not None:
        return check(ino, mode)
    return 0


def sys_faccessat2(t, dfd, upath, mode, flags):
    return do_faccessat(t, dfd, upath, mode, flags)


def sys_faccessat(t, dfd, upath, mode):
    return do_faccessat(t, dfd, upath, mode, 0)


def sys_access(t, upath, mode):
    return do_faccessat(t, AT_FDCWD, upath, mode, 0)


# -- the working directory ----------------------------------------------------------

def sys_chdir(t, upath):
    k = t.k
    path = namei.getname(t, upath)
    if type(path) is int:
        return path
    try:
        stack = namei.lookup(k, t, AT_FDCWD, path, True, True)
    except KernelError as e:
        return kerr(e)
    t.fs.cwd = stack[-1][0]
    return 0


def sys_fchdir(t, fd):
    f = fdget_raw(t, fd)
    if f is None:
        return -EBADF
    if f.inode is None or not f.inode.is_dir:
        return -ENOTDIR
    t.fs.cwd = f.path
    return 0


# -- chmod ---------------------------------------------------------------------------

def setattr_prepare(sb, ino):
    """What refuses any attribute change before the file system sees it:
    an O_PATH-less descriptor without an inode, a read-only mount."""
    if sb is None or ino is None:
        raise KernelError("EBADF", "no inode")
    if sb.read_only:
        raise KernelError("EROFS", "read-only file system")


def chmod_common(sb, ino, mode):
    setattr_prepare(sb, ino)
    sb.setattr(ino, mode=mode & S_IALLUGO)


def do_fchmodat(t, dfd, upath, mode):
    path = namei.getname(t, upath)
    if type(path) is int:
        return path
    try:
        p, sb, ino = namei.lookup(t.k, t, dfd, path)[-1]
        chmod_common(sb, ino, mode)
    except KernelError as e:
        return kerr(e)
    return 0


def sys_fchmodat(t, dfd, upath, mode):
    return do_fchmodat(t, dfd, upath, mode)


def sys_chmod(t, upath, mode):
    return do_fchmodat(t, AT_FDCWD, upath, mode)


def sys_fchmod(t, fd, mode):
    f = fdget(t, fd)
    if f is None:
        return -EBADF
    try:
        chmod_common(f.sb, f.inode, mode)
    except KernelError as e:
        return kerr(e)
    return 0


# -- chown ---------------------------------------------------------------------------

def chown_common(sb, ino, user, group):
    """-1 (as a 32-bit value) leaves the id as it is."""
    uid = None if user & 0xFFFFFFFF == 0xFFFFFFFF else user & 0xFFFFFFFF
    gid = None if group & 0xFFFFFFFF == 0xFFFFFFFF else group & 0xFFFFFFFF
    setattr_prepare(sb, ino)
    if uid is not None or gid is not None:
        sb.setattr(ino, uid=uid, gid=gid)


def do_fchownat(t, dfd, upath, user, group, flag):
    if flag & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        return -EINVAL
    path = namei.getname(t, upath)
    if type(path) is int:
        return path
    try:
        p, sb, ino = namei.lookup(t.k, t, dfd, path, not flag & AT_SYMLINK_NOFOLLOW, False,
                                  bool(flag & AT_EMPTY_PATH))[-1]
        chown_common(sb, ino, user, group)
    except KernelError as e:
        return kerr(e)
    return 0


def sys_fchownat(t, dfd, upath, user, group, flag):
    return do_fchownat(t, dfd, upath, user, group, flag)


def sys_chown(t, upath, user, group):
    return do_fchownat(t, AT_FDCWD, upath, user, group, 0)


def sys_lchown(t, upath, user, group):
    return do_fchownat(t, AT_FDCWD, upath, user, group, AT_SYMLINK_NOFOLLOW)


def sys_fchown(t, fd, user, group):
    f = fdget(t, fd)
    if f is None:
        return -EBADF
    try:
        chown_common(f.sb, f.inode, user, group)
    except KernelError as e:
        return kerr(e)
    return 0


# -- truncate -----------------------------------------------------------------------

def do_truncate(sb, ino, length, path):
    if ino.is_dir:
        raise KernelError("EISDIR", path)
    if not S_ISREG(sb.mode(ino)):
        raise KernelError("EINVAL", "%s is not a regular file" % path)
    if sb.read_only:
        raise KernelError("EROFS", path)
    if length > sb.max_bytes:
        raise KernelError("EFBIG", "%d is past the largest file here" % length)
    sb.truncate(ino, length)


def sys_truncate(t, upath, length):
    k = t.k
    path = namei.getname(t, upath)
    if type(path) is int:
        return path
    if length < 0:
        return -EINVAL
    try:
        stack = namei.lookup(k, t, AT_FDCWD, path)
        p, sb, ino = stack[-1]
        do_truncate(sb, ino, length, p)
    except KernelError as e:
        return kerr(e)
    return 0


def sys_ftruncate(t, fd, length):
    f = fdget(t, fd)
    if f is None:
        return -EBADF
    if length < 0:
        return -EINVAL
    if f.inode is None or not f.writable() or f.inode.is_dir or not S_ISREG(f.sb.mode(f.inode)):
        return -EINVAL
    try:
        do_truncate(f.sb, f.inode, length, f.path)
    except KernelError as e:
        return kerr(e)
    return 0
