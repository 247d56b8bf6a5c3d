# procfs and sysfs (Linux's fs/proc/: root.c, base.c, generic.c, fd.c,
# self.c, proc_sysctl.c; fs/sysfs/ over kernfs): file systems whose files
# are the console's pseudo-files. There is one declaration of each file,
# in the registry (shell/registry.py: FILES, PID_FILES, PATTERN_FILES), with
# its read (and write) function; the console reads them with `cat` and
# writes them with `>`, programs through open/read/write/getdents64 here.
# No text is written twice.
#
# - A directory is any prefix of a declared path (/proc/sys/vm), a PATTERN
#   file's NAMEs (/sys/kernel/debug/slab/<cache>/), and in /proc the pid
#   directories of the tasks that exist (zombies too, as Linux lists them).
# - A file's text is the registry function's, with the final newline
#   Linux's files have (the console strips it; NUL-separated text such as
#   cmdline gets none), generated at the first read from position 0 (and
#   again after a seek to 0), then read at any offset in any chunk size:
#   seq_file's behaviour (fs/libfs.py SeqText). A write(2) hands its text
#   to the file's write function, the one the console's `echo N > FILE`
#   calls: what the console refuses (garbage into swappiness, into
#   oom_score_adj) fails with its errno (EINVAL) and the old value stays.
# - /proc/self is a symlink to the caller's pid; /proc/PID/exe to the
#   executable's path (readlink("/proc/self/exe"): glibc's start-up,
#   BusyBox's re-exec); /proc/PID/cwd and root; /proc/PID/fd/N to each open
#   file, followed to the open file itself (a magic link, proc_fd_link),
#   whatever its path, as Linux does. The console's /proc/self/FILE
#   declarations appear under every /proc/PID/.
# - A pid that is gone: ENOENT at lookup; a read of a file opened before
#   the task went answers the read function's error (ENOENT), never a crash.
#
# Modes: a file with a write function is 0644, without 0444, directories
# 0555, links 0777 (fd links 0500 | the open's access, as proc_fd_link).
# Root may open any /proc file for writing; one without a write function
# then fails the write with EIO (proc_reg_write without ->write). Under
# /proc/sys and /sys the mode is enforced for root too, as
# proc_sys_permission and kernfs do: opening a read-only sysctl for
# writing is EACCES, and /proc/sys/vm/drop_caches (mode 0200) cannot be
# read (EACCES).

from kernel_py.fs.file import O_PATH
from kernel_py.fs.inode import DT_DIR, DT_LNK, DT_REG, Inode, Kstat, SuperBlock, name_hash
from kernel_py.fs.magic import PROC_SUPER_MAGIC, SYSFS_MAGIC
from kernel_py.fs.mode import S_IFDIR, S_IFLNK, S_IFREG
from kernel_py.fs import libfs
from kernel_py.fs.namei import Jump
from kernel_py.lib.errno import EACCES, EINVAL, EIO, errno_of
from kernel_py.lib.errors import KernelError
from kernel_py.shell import registry

WRITE_ONLY = ("/proc/sys/vm/drop_caches",)      # mode 0200 on Linux
PID_LINKS = ("cwd", "exe", "root")


class PseudoInode(Inode):
    """A pseudo-file, directory or link, named by its path."""

    def __init__(self, sb, path, mode, fns=None, task=None, fd=-1):
        Inode.__init__(self, sb, mode)
        self.i_ino = name_hash(path)
        self.path = path
        self.name = path.rsplit("/", 1)[-1]
        self.fns = fns                  # (read(k), write(k, text) or None) of a file
        self.pid = task                 # the pid of /proc/PID/...
        self.fd = fd                    # /proc/PID/fd/N


class PseudoOpen:
    """An open pseudo-file: the generated text, and writes to its function."""

    def __init__(self, k, read, write):
        self.k = k
        self.read_fn = read
        self.write_fn = write
        self.text = None

    def generate(self):
        try:
            v = self.read_fn(self.k)
        except KernelError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken file must not take a program down
            self.k.note_exception(exc)
            raise KernelError("EIO", "%s: %s" % (type(exc).__name__, exc))
        if v is None:
            v = ""
        if type(v) is str:
            v = v.encode()
        if v and v[-1:] != b"\n" and v[-1:] != b"\0":
            v += b"\n"                 # the registry's text lacks Linux's final newline
        return v

    def store(self, data):
        if self.write_fn is None:
            return -EIO
        try:
            text = bytes(data).decode()
        except (UnicodeError, ValueError):
            return -EINVAL
        try:
            self.write_fn(self.k, text)
        except KernelError as e:
            return -errno_of(e.errname)
        except Exception as exc:  # noqa: BLE001
            self.k.note_exception(exc)
            return -EIO
        self.text = None
        return len(data)


def bind(fn, arg):
    if fn is None:
        return None
    return lambda k, *rest: fn(k, arg, *rest)


def registry_children(k, dirpath):
    """{name: True for a directory, False for a file} declared directly below dirpath."""
    out = {}
    pre = dirpath + "/"
    n = len(pre)
    for p in registry.FILES:
        if p.startswith(pre):
            rest = p[n:]
            i = rest.find("/")
            if i < 0:
                if rest not in out:
                    out[rest] = False
            else:
                out[rest[:i]] = True
    for prefix, suffix, read, write, names in registry.PATTERN_FILES:
        if prefix.startswith(pre) and "/" in prefix[n:]:
            out[prefix[n:].split("/")[0]] = True
            continue
        if not (prefix.startswith(pre) or pre.startswith(prefix)) or names is None:
            continue
        try:
            listed = names(k)
        except Exception:  # noqa: BLE001 - a names() that fails lists nothing
            listed = ()
        for name in listed:
            p = prefix + name + suffix
            if p.startswith(pre):
                rest = p[n:]
                i = rest.find("/")
                if i < 0:
                    out.setdefault(rest, False)
                else:
                    out[rest[:i]] = True
    return out


def registry_file(path):
    """(read(k), write(k, text) or None) declared for path, or None
    (shell.resolve's rules, without its exception)."""
    entry = registry.FILES.get(path)
    if entry is not None:
        return entry
    for prefix, suffix, read, write, _names in registry.PATTERN_FILES:
        name = path[len(prefix):len(path) - len(suffix)]
        if path.startswith(prefix) and path.endswith(suffix) and name and "/" not in name \
                and len(path) >= len(prefix) + len(suffix):
            return bind(read, name), bind(write, name)
    return None


class RegistryFs(SuperBlock):
    """A file system of registry pseudo-files below `prefix` (/sys; /proc's base)."""

    fstype = "sysfs"
    strict = True                   # the mode binds root too (kernfs, proc_sys)

    def __init__(self, k, prefix):
        SuperBlock.__init__(self, k)
        self.prefix = prefix
        self.root = self.dir_inode(prefix)
        self.root.refs = 1

    def boot_time(self):
        tk = self.k.time
        return tk.realtime_base if tk is not None else 0

    def now(self):
        return self.boot_time()

    def dir_inode(self, path, pid=None):
        return PseudoInode(self, path, S_IFDIR | 0o555, task=pid)

    def file_inode(self, path, fns, pid=None):
        mode = 0o644 if fns[1] is not None else 0o444
        if path in WRITE_ONLY:
            mode = 0o200
        return PseudoInode(self, path, S_IFREG | mode, fns, pid)

    def link_inode(self, path, pid=None, fd=-1, mode=0o777):
        return PseudoInode(self, path, S_IFLNK | mode, task=pid, fd=fd)

    # -- the registry part
    def lookup(self, d, name):
        return self.registry_lookup(d.path, name)

    def registry_lookup(self, dirpath, name):
        path = dirpath + "/" + name
        kids = registry_children(self.k, dirpath)
        if name in kids:
            if kids[name]:
                return self.dir_inode(path)
            fns = registry_file(path)
            if fns is not None:
                return self.file_inode(path, fns)
        fns = registry_file(path)           # a PATTERN file not listed by names()
        if fns is not None:
            return self.file_inode(path, fns)
        return None

    def readdir(self, d):
        return self.registry_readdir(d.path)

    def registry_readdir(self, dirpath):
        out = []
        kids = registry_children(self.k, dirpath)
        for name in sorted(kids):
            out.append((name, name_hash(dirpath + "/" + name), DT_DIR if kids[name] else DT_REG))
        return out

    def getattr(self, ino):
        t = self.boot_time()
        return Kstat(self.st_dev, ino.i_ino, ino.mode, ino.nlink, 0, 1024, 0, 0, t, t, t)

    def open(self, ino, f, t):
        if ino.is_dir or f.flags & O_PATH:
            return libfs.open_by_mode(self, ino, f, t)
        if ino.fns is None:
            raise KernelError("ENXIO", ino.path)
        read, write = ino.fns
        if f.writable() and write is None and (self.strict or ino.path.startswith("/proc/sys/")):
            raise KernelError("EACCES", "%s is read-only" % ino.path)
        if f.readable() and not ino.mode & 0o444 and (self.strict or ino.path.startswith("/proc/sys/")):
            raise KernelError("EACCES", "%s cannot be read" % ino.path)
        f.private = PseudoOpen(self.k, read, write)
        return libfs.SEQ_TEXT

    def access(self, ino, mask):
        """faccessat's answer for root (0 or -errno): W_OK on a read-only
        file where the mode binds root."""
        if mask & 2 and not ino.is_dir and ino.fns is not None and ino.fns[1] is None and \
                (self.strict or ino.path.startswith("/proc/sys/")):
            return -EACCES
        return 0


class SysFs(RegistryFs):
    fstype = "sysfs"
    magic = SYSFS_MAGIC

    def __init__(self, k):
        RegistryFs.__init__(self, k, "/sys")


class ProcFs(RegistryFs):
    fstype = "proc"
    magic = PROC_SUPER_MAGIC
    strict = False

    def __init__(self, k):
        RegistryFs.__init__(self, k, "/proc")

    def task(self, pid):
        procs = self.k.procs
        return procs.tasks.get(pid) if procs is not None else None

    # -- lookup: /proc, /proc/PID, /proc/PID/fd
    def lookup(self, d, name):
        path = d.path + "/" + name
        if d.pid is None:
            if d is self.root or d.path == "/proc":
                if name == "self":
                    return self.link_inode(path)
                if is_pid(name):
                    pid = int(name)
                    if self.task(pid) is None:
                        return None
                    return self.dir_inode(path, pid)
            return self.registry_lookup(d.path, name)
        t = self.task(d.pid)
        if t is None:
            return None                         # the task is gone: ENOENT
        if d.fd == -2:                          # /proc/PID/fd
            if not is_fd(name) or t.files is None or t.files.file(int(name)) is None:
                return None
            f = t.files.file(int(name))
            acc = (0o400 if f.readable() else 0) | (0o200 if f.writable() else 0)
            return self.link_inode(path, d.pid, int(name), 0o100 | acc)
        if name in PID_LINKS:
            return self.link_inode(path, d.pid)
        if name == "fd":
            ino = self.dir_inode(path, d.pid)
            ino.fd = -2
            ino.mode = S_IFDIR | 0o500
            return ino
        entry = registry.PID_FILES.get(name)
        if entry is not None:
            return self.file_inode(path, (bind(entry[0], d.pid), bind(entry[1], d.pid)), d.pid)
        entry = registry.FILES.get("/proc/self/" + name)
        if entry is not None:
            return self.file_inode(path, entry, d.pid)
        return None

    def readdir(self, d):
        if d.pid is None:
            if d.path != "/proc":
                return self.registry_readdir(d.path)
            out = [(n, i, ty) for n, i, ty in self.registry_readdir("/proc") if n != "self"]
            out.append(("self", name_hash("/proc/self"), DT_LNK))
            procs = self.k.procs
            for pid in (procs.pids() if procs is not None else ()):
                out.append(("%d" % pid, name_hash("/proc/%d" % pid), DT_DIR))
            return out
        t = self.task(d.pid)
        if t is None:
            return []
        base = "/proc/%d/" % d.pid
        if d.fd == -2:
            out = []
            files = t.files.fds if t.files is not None else []
            for fd in range(len(files)):
                if files[fd] is not None:
                    out.append(("%d" % fd, name_hash(base + "fd/%d" % fd), DT_LNK))
            return out
        out = [("fd", name_hash(base + "fd"), DT_DIR)]
        for name in PID_LINKS:
            out.append((name, name_hash(base + name), DT_LNK))
        names = set(registry.PID_FILES)
        for p in registry.FILES:
            if p.startswith("/proc/self/") and "/" not in p[11:]:
                names.add(p[11:])
        for name in sorted(names):
            out.append((name, name_hash(base + name), DT_REG))
        return out

    # -- links
    def get_link(self, ino, t):
        if ino.pid is None:                     # /proc/self
            if t is None:
                raise KernelError("ENOENT", "/proc/self outside a task")
            return "%d" % t.tgid
        task = self.task(ino.pid)
        if task is None:
            raise KernelError("ENOENT", ino.path)
        name = ino.name
        if ino.fd >= 0:
            f = task.files.file(ino.fd) if task.files is not None else None
            if f is None:
                raise KernelError("ENOENT", ino.path)
            text = fd_text(f)
            if f.sb is None:
                return Jump(text, None, None)
            return Jump(text, f.sb, f.inode)
        if name == "exe":
            if not task.exe or task.mm is None:
                raise KernelError("ENOENT", "%s: no executable" % ino.path)
            return task.exe
        if name == "cwd":
            if task.fs is None:
                raise KernelError("ENOENT", ino.path)
            return task.fs.cwd
        return "/"


def fd_text(f):
    """What readlink of /proc/PID/fd/N says (d_path, or the dentry name of
    an anonymous file: "pipe:[INO]", "anon_inode:[eventfd]")."""
    text = f.path
    ino = f.inode
    if ino is not None and getattr(ino, "deleted", False) and text.startswith("/"):
        text += " (deleted)"
    return text


def is_pid(name):
    return name.isdigit() and len(name) < 10 and name[0] != "0"


def is_fd(name):
    return name == "0" or is_pid(name)
