# Files, disks and the page cache on the console: ls/cat on the mounted FS
# (builtins.py delegates here for paths under a mount point), write,
# append, fill, dd, rm, mkdir, rmdir, truncate, sync, mount, umount, df,
# fincore, sha256sum, free, vmstat; /proc/diskstats, /proc/partitions,
# /proc/mounts and the /proc/sys/vm page-cache knobs (drop_caches,
# dirty_ratio, dirty_background_ratio, dirty_bytes, dirty_background_bytes,
# dirty_expire_centisecs, dirty_writeback_centisecs: the writeback thread's).

from kernel_py.lib.errors import KernelError
from kernel_py.fs.mount import namespace_listdir, namespace_read
from kernel_py.fs.vfs import pattern
from kernel_py.mm import vmstat
from kernel_py.shell.cmd_top import cpu_percents
from kernel_py.shell.procfs import nr_blocked, nr_running
from kernel_py.shell.registry import command, pseudo_file
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE

try:
    from hashlib import sha256
except ImportError:             # MicroPython built without hashlib: the pure-Python one
    from kernel_py.lib.sha256 import sha256

MAX_DD_BS = 1 << 20


def vfs(k):
    if k.vfs is None:
        raise KernelError("ENODEV", "no file systems (boot did not get that far)")
    return k.vfs


def parse_size(word, what="size"):
    """'4096', '64K', '1M', '2G', '0x1000' -> bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    w = word.upper().rstrip("B")
    if w.endswith("I"):
        w = w[:-1]
    mul = 1
    if w and w[-1] in units:
        mul = units[w[-1]]
        w = w[:-1]
    try:
        v = int(w, 0) * mul
    except ValueError:
        raise KernelError("EINVAL", "%s %r is not a number" % (what, word))
    if v < 0:
        raise KernelError("EINVAL", "%s %r is negative" % (what, word))
    return v


def to_text(data):
    try:
        return str(data, "utf-8")
    except Exception:  # noqa: BLE001 - binary: show printable bytes only
        return "".join([chr(c) if 32 <= c < 127 or c in (9, 10) else "." for c in data])


# -- hooks for builtins cat and ls
PSEUDO_ROOTS = ("/proc", "/sys")     # the console's own pseudo-files (registry.py)


def in_namespace(k, path):
    """A path the console reaches through the namespace programs see (the
    tmpfs root, devtmpfs) rather than a block mount or a pseudo-file."""
    if k.vfs is None or "/" not in k.vfs.ns or k.vfs.owns(path):
        return False
    return not any(path == r or path.startswith(r + "/") for r in PSEUDO_ROOTS)


def cat_file(k, path):
    if in_namespace(k, path):
        return to_text(namespace_read(k, path)).rstrip("\n")
    return to_text(vfs(k).read(path)).rstrip("\n")


def ls(k, args):
    long = False
    paths = []
    for a in args:
        if a == "-l":
            long = True
        elif a.startswith("-"):
            raise KernelError("EINVAL", "usage: ls [-l] [DIR]")
        else:
            paths.append(a)
    if len(paths) != 1:
        raise KernelError("EINVAL", "usage: ls [-l] [DIR]")
    if in_namespace(k, paths[0]):
        entries = namespace_listdir(k, paths[0])
    else:
        entries = vfs(k).listdir(paths[0])
    if not long:
        return "  ".join(n + ("/" if d else "") for n, d, s in entries)
    lines = ["total %d" % sum((s + 1023) // 1024 for n, d, s in entries)]
    for n, d, s in entries:
        lines.append("%s 1 root root %8d %s" % ("drwxr-xr-x" if d else "-rwxr-xr-x", s, n))
    return "\n".join(lines)


def mount_names(k, prefix):
    """First components of mount points under a pseudo-file prefix ('/')."""
    out = set()
    if k.vfs is not None:
        for m in k.vfs.mounts:
            if m.point.startswith(prefix):
                out.add(m.point[len(prefix):].split("/")[0])
    return out


# -- writing
def write_text(k, path, text, append=False):
    """TEXT and a newline into FILE (created), replacing or appending: the
    write/append commands and the shell's `> FILE` / `>> FILE`."""
    vfs(k).write(path, (text + "\n").encode(), append=append, trunc=not append)


def text_command(name, append, summary):
    use = "%s FILE TEXT..." % name

    @command(name, use, summary)
    def run(k, args):
        if len(args) < 1:
            raise KernelError("EINVAL", "usage: " + use)
        write_text(k, args[0], " ".join(args[1:]), append)
        return ""
    return run


cmd_write = text_command("write", False, "replace FILE's contents with TEXT and a newline (creates it)")
cmd_append = text_command("append", True, "add TEXT and a newline at the end of FILE (creates it)")


@command("fill", "fill FILE SIZE [pattern|zero|BYTE]",
         "write SIZE bytes (4096, 64K, 1M) to FILE: the page-numbered pattern (default), zeros or one byte value")
def cmd_fill(k, args):
    if not 2 <= len(args) <= 3:
        raise KernelError("EINVAL", "usage: fill FILE SIZE [pattern|zero|BYTE]")
    size = parse_size(args[1])
    kind = args[2] if len(args) > 2 else "pattern"
    v = vfs(k)
    if kind == "pattern":
        v.truncate(args[0], 0)
        off = 0
        while off < size:
            n = min(size - off, 64 << 10)
            v.write(args[0], pattern(off, n), off=off)
            off += n
        return ""
    byte = 0 if kind == "zero" else parse_size(kind, "byte")
    if byte > 255:
        raise KernelError("EINVAL", "byte %d > 255" % byte)
    v.write(args[0], None, off=0, trunc=True, n=size, fill=byte)
    return ""


@command("truncate", "truncate -s SIZE FILE", "set FILE's size (creates it)")
def cmd_truncate(k, args):
    if len(args) != 3 or args[0] != "-s":
        raise KernelError("EINVAL", "usage: truncate -s SIZE FILE")
    vfs(k).truncate(args[2], parse_size(args[1]))
    return ""


@command("rm", "rm FILE...", "remove files")
def cmd_rm(k, args):
    if not args:
        raise KernelError("EINVAL", "usage: rm FILE...")
    for p in args:
        vfs(k).unlink(p)
    return ""


@command("mkdir", "mkdir DIR...", "make directories")
def cmd_mkdir(k, args):
    if not args:
        raise KernelError("EINVAL", "usage: mkdir DIR...")
    for p in args:
        vfs(k).mkdir(p)
    return ""


@command("rmdir", "rmdir DIR...", "remove empty directories")
def cmd_rmdir(k, args):
    if not args:
        raise KernelError("EINVAL", "usage: rmdir DIR...")
    for p in args:
        vfs(k).rmdir(p)
    return ""


def elapsed(k, t0):
    """(seconds, milliseconds) since rdtsc value t0, or None without a clock."""
    clock = k.clock
    if clock is None or not clock.hz:
        return None
    us = clock.us(k.hw.rdtsc() - t0)
    return us


@command("dd", "dd if=SRC of=DST [bs=N] [count=N] [seek=N] [skip=N] [conv=notrunc]",
         "copy blocks; SRC a file or /dev/zero, DST a file or /dev/null")
def cmd_dd(k, args):
    opts = {"bs": "512", "conv": ""}
    for a in args:
        if "=" not in a:
            raise KernelError("EINVAL", "dd: bad operand %r" % a)
        key, val = a.split("=", 1)
        if key not in ("if", "of", "bs", "count", "seek", "skip", "conv"):
            raise KernelError("EINVAL", "dd: unknown operand %r" % key)
        opts[key] = val
    if "if" not in opts or "of" not in opts:
        raise KernelError("EINVAL", "usage: dd if=SRC of=DST [bs=N] [count=N] [seek=N] [skip=N]")
    bs = parse_size(opts["bs"], "bs")
    if not 0 < bs <= MAX_DD_BS:
        raise KernelError("EINVAL", "dd: bs must be 1..%d" % MAX_DD_BS)
    count = parse_size(opts["count"], "count") if "count" in opts else None
    seek = parse_size(opts.get("seek", "0"), "seek") * bs
    skip = parse_size(opts.get("skip", "0"), "skip") * bs
    src, dst = opts["if"], opts["of"]
    v = vfs(k)
    if src not in ("/dev/zero",) and not v.owns(src):
        raise KernelError("ENOENT", "dd: %s: only /dev/zero or files under a mount" % src)
    if dst != "/dev/null" and not v.owns(dst):
        raise KernelError("ENOENT", "dd: %s: only /dev/null or files under a mount" % dst)
    if src == "/dev/zero" and count is None:
        raise KernelError("EINVAL", "dd: reading /dev/zero needs count=")
    t0 = k.hw.rdtsc()
    if dst != "/dev/null" and "notrunc" not in opts["conv"]:
        v.truncate(dst, seek)
    full = part = 0
    total = 0
    pos_in, pos_out = skip, seek
    buf = view = None
    if src != "/dev/zero":
        buf = bytearray(bs)
        view = memoryview(buf)
    while count is None or full + part < count:
        if src == "/dev/zero":
            n, data = bs, None
        else:
            n = v.read(src, pos_in, bs, into=buf)
            data = view[:n]
            if not n:
                break
        pos_in += n
        if dst != "/dev/null":
            v.write(dst, data, off=pos_out, n=n, fill=0)
        pos_out += n
        total += n
        if n == bs:
            full += 1
        else:
            part += 1
            break
    out = ["%d+%d records in" % (full, part), "%d+%d records out" % (full, part)]
    us = elapsed(k, t0)
    if us is None:
        out.append("%d bytes copied" % total)
    else:
        rate = total * 1000000 // max(us, 1) // 1000
        out.append("%d bytes copied, %d.%06d s, %d kB/s" % (total, us // 1000000, us % 1000000, rate))
    return "\n".join(out)


# -- inspection
@command("fincore", "fincore FILE...", "page-cache residency: resident bytes, pages, size")
def cmd_fincore(k, args):
    if not args:
        raise KernelError("EINVAL", "usage: fincore FILE...")
    lines = ["%10s %6s %10s %s" % ("RES", "PAGES", "SIZE", "FILE")]
    for p in args:
        fs, ino = vfs(k).lookup(p)
        n = len(ino.mapping.pages) if ino.mapping is not None else 0
        lines.append("%10d %6d %10d %s" % (n << PAGE_SHIFT, n, ino.size, p))
    return "\n".join(lines)


@command("sha256sum", "sha256sum FILE...", "SHA-256 of files read through the page cache")
def cmd_sha256sum(k, args):
    if not args:
        raise KernelError("EINVAL", "usage: sha256sum FILE...")
    out = []
    for p in args:
        h = sha256()
        buf = bytearray(65536)
        view = memoryview(buf)
        off = 0
        while True:
            n = vfs(k).read(p, off, 65536, into=buf)
            if not n:
                break
            h.update(view[:n])
            off += n
        out.append("%s  %s" % ("".join(["%02x" % b for b in h.digest()]), p))
    return "\n".join(out)


@command("sync", "sync", "write every dirty page and all metadata back to the disks")
def cmd_sync(k, args):
    vfs(k).sync()
    return ""


def mount_lines(k):
    """/proc/mounts (show_vfsmnt): the namespace's file systems, the root
    first, each with its source (the block device, else the file system's
    name, as Linux's pseudo file systems show theirs)."""
    v = vfs(k)
    block = dict((m.point, m) for m in v.mounts)
    out = []
    for point in sorted(v.ns):
        if point in block:
            continue
        sb = v.ns[point]
        out.append("%s %s %s rw,relatime 0 0" % (sb.fstype, point, sb.fstype))
    return out + ["/dev/%s %s %s rw,relatime 0 0" % (m.dev.name, m.point, m.fs.fstype)
                  for m in v.mounts]


@pseudo_file("/proc/mounts")
def proc_mounts(k):
    return "\n".join(mount_lines(k))


@command("mount", "mount [DEV DIR]", "list mounts, or mount a FAT block device (/dev/sda) on DIR")
def cmd_mount(k, args):
    if not args:
        return "\n".join("/dev/%s on %s type %s (rw,relatime)" % (m.dev.name, m.point, m.fs.fstype)
                         for m in vfs(k).mounts)
    if len(args) != 2 or not args[1].startswith("/") or args[1] == "/":
        raise KernelError("EINVAL", "usage: mount DEV DIR")
    point = args[1].rstrip("/")
    if point.startswith("/proc") or point.startswith("/sys"):
        raise KernelError("EBUSY", "%s is a pseudo-file tree" % point)
    vfs(k).mount(k.blk.get(args[0]), point)
    return ""


@command("umount", "umount DIR|DEV", "sync and unmount")
def cmd_umount(k, args):
    if len(args) != 1:
        raise KernelError("EINVAL", "usage: umount DIR|DEV")
    vfs(k).umount(args[0].rstrip("/") or "/")
    return ""


@command("df", "df [-k|-m]", "file-system space: blocks, used, available")
def cmd_df(k, args):
    shift = 10
    for a in args:
        if a == "-m":
            shift = 20
        elif a != "-k":
            raise KernelError("EINVAL", "usage: df [-k|-m]")
    lines = ["%-14s %10s %10s %10s %4s %s" % ("Filesystem", "1K-blocks" if shift == 10 else "1M-blocks",
                                            "Used", "Available", "Use%", "Mounted on")]
    for m in vfs(k).mounts:
        bsize, total, free = m.fs.statfs()
        used = total - free
        pct = (used * 100 + total - 1) // total if total else 0
        lines.append("%-14s %10d %10d %10d %3d%% %s" % (
            "/dev/" + m.dev.name, total * bsize >> shift, used * bsize >> shift,
            free * bsize >> shift, pct, m.point))
    return "\n".join(lines)


# -- memory summaries
def mem_numbers(k):
    """KiB: total, free, buffers, cached (incl. SReclaimable), available,
    swap total, swap free: /proc/meminfo's figures (mm/vmstat.py)."""
    info = dict(vmstat.meminfo_pairs(k))
    sreclaimable = vmstat.counter(k, "nr_slab_reclaimable") * (PAGE_SIZE >> 10)
    return (info["MemTotal"], info["MemFree"], info.get("Buffers", 0),
            info.get("Cached", 0) + sreclaimable, info["MemAvailable"],
            info.get("SwapTotal", 0), info.get("SwapFree", 0))


@command("free", "free [-b|-k|-m|-g]", "memory in use, free, buff/cache, available (procps free)")
def cmd_free(k, args):
    shift = 0       # from KiB
    for a in args:
        if a == "-b":
            shift = -10
        elif a == "-k":
            shift = 0
        elif a == "-m":
            shift = 10
        elif a == "-g":
            shift = 20
        else:
            raise KernelError("EINVAL", "usage: free [-b|-k|-m|-g]")
    total, free, buffers, cached, avail, stotal, sfree = mem_numbers(k)
    bc = buffers + cached
    used = total - free - bc
    if used < 0:
        used = total - free

    def s(v):
        return v << -shift if shift < 0 else v >> shift
    head = "%-8s" % "" + "".join(" %11s" % h for h in
                                 ("total", "used", "free", "shared", "buff/cache", "available"))
    shared = vmstat.counter(k, "nr_shmem") * (PAGE_SIZE >> 10)     # Shmem, as procps reads it
    mem = "%-8s" % "Mem:" + "".join(" %11d" % s(v) for v in (total, used, free, shared, bc, avail))
    swap = "%-8s" % "Swap:" + "".join(" %11d" % s(v) for v in (stotal, stotal - sfree, sfree))
    return "\n".join((head, mem, swap))


VMSTAT_HEAD = ("procs -----------memory---------- ---swap-- -----io---- -system-- ------cpu-----",
               " r  b   swpd   free   buff  cache   si   so    bi    bo   in   cs us sy id wa st")


@command("vmstat", "vmstat", "one line: procs now; memory (KiB); swap, io, system and cpu since boot")
def cmd_vmstat(k, args):
    """procps vmstat's first line (the root's /usr/bin/vmstat, user/vmstat.c,
    prints the same and then one line per interval): every rate over the
    time since boot, rounded to the nearest as procps rounds it."""
    if args:
        raise KernelError("EINVAL", "usage: vmstat")
    total, free, buffers, cached, avail, stotal, sfree = mem_numbers(k)
    swpd = stotal - sfree
    up = max(1, k.cpustat.elapsed())
    hz = k.clock.hz if k.clock is not None else 1

    def rate(n):
        return (n * hz + up // 2) // up
    kb = PAGE_SIZE >> 10
    si, so = rate(vmstat.counter(k, "pswpin") * kb), rate(vmstat.counter(k, "pswpout") * kb)
    bi, bo = rate(vmstat.counter(k, "pgpgin")), rate(vmstat.counter(k, "pgpgout"))
    intr = rate(sum(k.hw.irq_counts()))
    cs = rate(k.sched.nr_switches if k.sched is not None else 0)
    us, sy, ni, idle, wa, hi, sirq, st = [(v + 5) // 10 for v in cpu_percents(k)]
    line = "%2d %2d %6d %6d %6d %6d %4d %4d %5d %5d %4d %4d %2d %2d %2d %2d %2d" % (
        nr_running(k), nr_blocked(k), swpd, free, buffers, cached, si, so, bi, bo, intr, cs,
        us + ni, sy + hi + sirq, idle, wa, st)
    return "\n".join(VMSTAT_HEAD + (line,))


# -- block devices
@pseudo_file("/proc/diskstats")
def proc_diskstats(k):
    return "\n".join(d.diskstats_line() for d in (k.blk.order if k.blk else []))


@pseudo_file("/proc/partitions")
def proc_partitions(k):
    lines = ["major minor  #blocks  name", ""]
    for d in (k.blk.order if k.blk else []):
        lines.append("%4d %7d %10d %s" % (d.major, d.minor, d.nr_sectors >> 1, d.name))
    return "\n".join(lines)


# -- /proc/sys/vm
def parse_int(text, lo, hi, what):
    try:
        v = int(text.strip())
    except ValueError:
        raise KernelError("EINVAL", "%s: %r is not a number" % (what, text.strip()))
    if not lo <= v <= hi:
        raise KernelError("EINVAL", "%s: %d not in %d..%d" % (what, v, lo, hi))
    return v


def write_drop_caches(k, text):
    mode = parse_int(text, 1, 4, "drop_caches")
    if k.pagecache is not None:
        k.pagecache.drop_caches(mode)


@pseudo_file("/proc/sys/vm/drop_caches", write=write_drop_caches)
def sys_drop_caches(k):
    return "0"


def _cache(k):
    if k.pagecache is None:
        raise KernelError("ENODEV", "no page cache")
    return k.pagecache


def write_dirty_ratio(k, text):
    c = _cache(k)
    c.dirty_ratio = parse_int(text, 0, 100, "dirty_ratio")
    c.dirty_bytes = 0


def write_dirty_background_ratio(k, text):
    c = _cache(k)
    c.dirty_background_ratio = parse_int(text, 0, 100, "dirty_background_ratio")
    c.dirty_background_bytes = 0


def write_dirty_bytes(k, text):
    c = _cache(k)
    v = parse_int(text, 0, 1 << 62, "dirty_bytes")
    if v and v < 2 * PAGE_SIZE:
        raise KernelError("EINVAL", "dirty_bytes: at least %d" % (2 * PAGE_SIZE))
    c.dirty_bytes = v
    if v:
        c.dirty_ratio = 0


def write_dirty_background_bytes(k, text):
    c = _cache(k)
    v = parse_int(text, 0, 1 << 62, "dirty_background_bytes")
    c.dirty_background_bytes = v
    if v:
        c.dirty_background_ratio = 0


@pseudo_file("/proc/sys/vm/dirty_ratio", write=write_dirty_ratio)
def sys_dirty_ratio(k):
    return "%d" % _cache(k).dirty_ratio


@pseudo_file("/proc/sys/vm/dirty_background_ratio", write=write_dirty_background_ratio)
def sys_dirty_background_ratio(k):
    return "%d" % _cache(k).dirty_background_ratio


@pseudo_file("/proc/sys/vm/dirty_bytes", write=write_dirty_bytes)
def sys_dirty_bytes(k):
    return "%d" % _cache(k).dirty_bytes


@pseudo_file("/proc/sys/vm/dirty_background_bytes", write=write_dirty_background_bytes)
def sys_dirty_background_bytes(k):
    return "%d" % _cache(k).dirty_background_bytes


def write_dirty_expire(k, text):
    _cache(k).dirty_expire_centisecs = parse_int(text, 0, 1 << 31, "dirty_expire_centisecs")


def write_dirty_writeback(k, text):
    c = _cache(k)
    c.dirty_writeback_centisecs = parse_int(text, 1, 1 << 31, "dirty_writeback_centisecs")


@pseudo_file("/proc/sys/vm/dirty_expire_centisecs", write=write_dirty_expire)
def sys_dirty_expire(k):
    return "%d" % _cache(k).dirty_expire_centisecs


@pseudo_file("/proc/sys/vm/dirty_writeback_centisecs", write=write_dirty_writeback)
def sys_dirty_writeback(k):
    return "%d" % _cache(k).dirty_writeback_centisecs
