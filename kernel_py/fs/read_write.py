# read and write (Linux's fs/read_write.c, lib/iov_iter.c): read, write,
# readv, writev, pread64, pwrite64, preadv, pwritev, lseek and sendfile, through the
# File's operations, with the user buffers copied by copy_to_user /
# copy_from_user (EFAULT on a bad pointer, nothing else harmed). A call
# that would block sleeps on the file's wait queue and is tried again when
# woken (kernel/sched.py).
#
# The checks come in Linux's order: the descriptor (EBADF), its access
# mode (EBADF), then the buffer: access_ok over the whole count, so a
# count that runs past user space (a negative one, as a size_t) is EFAULT
# before anything is read, then the count is cut to MAX_RW_COUNT.
#
# Large counts move in CHUNK pieces: a regular file (or /dev/zero) is read
# until the count, the end of the file, or a fault part-way, which ends
# the call with the bytes that got through (EFAULT only when none did), as
# Linux's copy loops do. Streams (a pipe, the terminal, eventfd, kmsg)
# return what one read() gave. A write that could only place part of its
# data returns that part (ENOSPC on FAT after what fits), except on a pipe,
# which waits for room for the rest (a signal ends it with the count done).

import struct

from kernel_py.arch.x86.layout import USER_END
from kernel_py.fs.file import fdget
from kernel_py.lib.errno import EBADF, EFAULT, EINVAL, ERESTARTSYS, ESPIPE
from kernel_py.kernel.signal import signal_pending

MAX_RW_COUNT = 0x7FFFF000               # Linux caps one transfer at INT_MAX & PAGE_MASK
CHUNK = 64 << 10                        # bytes copied from or to user space at a time
UIO_MAXIOV = 1024
M64 = 0xFFFFFFFFFFFFFFFF
SEEK_MAX = 4


def access_ok(addr, size):
    """Linux's access_ok: [addr, addr + size) lies below TASK_SIZE_MAX."""
    addr &= M64
    return size <= USER_END and addr <= USER_END - size


class UserIov:
    """A user buffer as iovec segments [(addr, len)]: what an iov_iter walks."""

    def __init__(self, segs):
        self.segs = segs
        total = 0
        for a, n in segs:
            total += n
        self.total = total

    def copy_out(self, hw, off, data):
        """data to the logical offset off; False when a copy faulted."""
        pos = 0
        i = 0
        n = len(data)
        for addr, ln in self.segs:
            if off >= pos + ln:
                pos += ln
                continue
            start = max(off, pos)
            take = min(pos + ln - start, n - i)
            if take > 0:
                if not hw.copy_to_user(addr + (start - pos), data[i:i + take]):
                    return False
                i += take
                off += take
            pos += ln
            if i >= n:
                break
        return True

    def copy_in(self, hw, off, n):
        """n bytes from the logical offset off; None when a copy faulted."""
        out = []
        pos = 0
        for addr, ln in self.segs:
            if n <= 0:
                break
            if off >= pos + ln:
                pos += ln
                continue
            start = max(off, pos)
            take = min(pos + ln - start, n)
            b = hw.copy_from_user(addr + (start - pos), take)
            if b is None:
                return None
            out.append(b)
            off += take
            n -= take
            pos += ln
        return b"".join(out) if len(out) != 1 else out[0]


def one_buffer(buf, count):
    """read/write's (buf, count): a UserIov, or -EFAULT."""
    count &= M64
    if not access_ok(buf, count):
        return -EFAULT
    return UserIov([(buf, min(count, MAX_RW_COUNT))])


def import_iovec(t, uvec, vlen):
    """The iovec array at uvec: a UserIov, or -EINVAL / -EFAULT."""
    vlen &= M64
    if vlen > UIO_MAXIOV:
        return -EINVAL
    if vlen == 0:
        return UserIov([])
    raw = t.k.hw.copy_from_user(uvec, 16 * vlen)
    if raw is None:
        return -EFAULT
    segs = []
    total = 0
    for i in range(vlen):
        base, ln = struct.unpack_from("<Qq", raw, 16 * i)
        if ln < 0:
            return -EINVAL
        if not access_ok(base, ln):
            return -EFAULT
        if ln > MAX_RW_COUNT - total:
            ln = MAX_RW_COUNT - total
        total += ln
        segs.append((base, ln))
    return UserIov(segs)


def do_read(t, f, iov, pos=None):
    """Read into iov: at the file's position (read_done commits), or at pos
    (pread). Sleeps when nothing can be read yet."""
    k = t.k
    hw = k.hw
    fop = f.f_op
    total = iov.total
    state = [0]

    def attempt():
        done = state[0]
        while done < total:
            n = min(CHUNK, total - done)
            if pos is None:
                data = fop.read(f, t, n)
            else:
                data = fop.pread(f, t, n, pos + done)
            if data is None:
                if done:
                    break
                if signal_pending(t):
                    return -ERESTARTSYS
                return k.sched.sleep(t, fop.wait_queue(f), attempt)
            if type(data) is int:
                if done:
                    break
                return data
            if not data:
                break
            if not iov.copy_out(hw, done, data):
                if done:
                    break
                return -EFAULT
            if pos is None:
                fop.read_done(f, len(data))
            done += len(data)
            state[0] = done
            if len(data) < n or not fop.read_more:
                break
        return done
    return attempt()


def do_write(t, f, iov, pos=None):
    """Write from iov, at the file's position (or its end: O_APPEND), or at pos."""
    k = t.k
    hw = k.hw
    fop = f.f_op
    total = iov.total
    state = [0]

    def attempt():
        done = state[0]
        while done < total:
            n = min(CHUNK, total - done)
            data = iov.copy_in(hw, done, n)
            if data is None:
                return done if done else -EFAULT
            if pos is None:
                r = fop.write(f, t, data)
            else:
                r = fop.pwrite(f, t, data, pos + done)
            if r is None:
                if signal_pending(t):
                    return done if done else -ERESTARTSYS
                return k.sched.sleep(t, fop.wait_queue(f), attempt)
            if r < 0:
                return done if done else r
            done += r
            state[0] = done
            if r < len(data) and not fop.write_more:
                break
        return done
    return attempt()


def sys_read(t, fd, buf, count):
    f = fdget(t, fd)
    if f is None or not f.readable():
        return -EBADF
    iov = one_buffer(buf, count)
    if type(iov) is int:
        return iov
    return do_read(t, f, iov)


def sys_write(t, fd, buf, count):
    f = fdget(t, fd)
    if f is None or not f.writable():
        return -EBADF
    iov = one_buffer(buf, count)
    if type(iov) is int:
        return iov
    return do_write(t, f, iov)


def sys_readv(t, fd, uvec, vlen):
    f = fdget(t, fd)
    if f is None or not f.readable():
        return -EBADF
    iov = import_iovec(t, uvec, vlen)
    if type(iov) is int:
        return iov
    return do_read(t, f, iov)


def sys_writev(t, fd, uvec, vlen):
    f = fdget(t, fd)
    if f is None or not f.writable():
        return -EBADF
    iov = import_iovec(t, uvec, vlen)
    if type(iov) is int:
        return iov
    return do_write(t, f, iov)


def positional(t, fd, pos, want_read):
    """pread/pwrite's checks: (File, None) or (None, -errno)."""
    if pos < 0:
        return None, -EINVAL
    f = fdget(t, fd)
    if f is None:
        return None, -EBADF
    if not f.f_op.seekable:
        return None, -ESPIPE
    if not (f.readable() if want_read else f.writable()):
        return None, -EBADF
    return f, 0


def sys_pread64(t, fd, buf, count, pos):
    f, err = positional(t, fd, pos, True)
    if f is None:
        return err
    iov = one_buffer(buf, count)
    if type(iov) is int:
        return iov
    return do_read(t, f, iov, pos)


def sys_pwrite64(t, fd, buf, count, pos):
    f, err = positional(t, fd, pos, False)
    if f is None:
        return err
    iov = one_buffer(buf, count)
    if type(iov) is int:
        return iov
    return do_write(t, f, iov, pos)


def sys_preadv(t, fd, uvec, vlen, pos_l, pos_h):
    f, err = positional(t, fd, pos_l, True)
    if f is None:
        return err
    iov = import_iovec(t, uvec, vlen)
    if type(iov) is int:
        return iov
    return do_read(t, f, iov, pos_l)


def sys_pwritev(t, fd, uvec, vlen, pos_l, pos_h):
    f, err = positional(t, fd, pos_l, False)
    if f is None:
        return err
    iov = import_iovec(t, uvec, vlen)
    if type(iov) is int:
        return iov
    return do_write(t, f, iov, pos_l)


def sys_lseek(t, fd, offset, whence):
    f = fdget(t, fd)
    if f is None:
        return -EBADF
    whence &= 0xFFFFFFFF
    if whence > SEEK_MAX:
        return -EINVAL
    return f.f_op.llseek(f, offset, whence)


def sys_sendfile(t, out_fd, in_fd, uoffset, count):
    """do_sendfile: count bytes from in_fd (at its position, or at *offset,
    which is then advanced and the position left alone) to out_fd, through
    the kernel. Only what out_fd took is consumed from in_fd; a full pipe
    or terminal makes it wait as write does."""
    inf = fdget(t, in_fd)
    if inf is None or not inf.readable():
        return -EBADF
    outf = fdget(t, out_fd)
    if outf is None or not outf.writable():
        return -EBADF
    hw = t.k.hw
    pos = None
    if uoffset:
        pos = hw.get_user64(uoffset)
        if pos is None:
            return -EFAULT
        if not inf.f_op.seekable:
            return -ESPIPE
        if pos >= 1 << 63:
            return -EINVAL
    count = min(count & M64, MAX_RW_COUNT)
    state = [0]

    def attempt():
        done = state[0]
        while done < count:
            n = min(CHUNK, count - done)
            data = inf.f_op.read(inf, t, n) if pos is None else inf.f_op.pread(inf, t, n, pos + done)
            if data is None:                    # an empty pipe: wait for it, as read does
                if done:
                    break
                if signal_pending(t):
                    return -ERESTARTSYS
                return t.k.sched.sleep(t, inf.f_op.wait_queue(inf), attempt)
            if type(data) is int:
                return done if done else data
            if not data:
                break
            r = outf.f_op.write(outf, t, data)
            if r is None:
                if done:
                    break
                if signal_pending(t):
                    return -ERESTARTSYS
                return t.k.sched.sleep(t, outf.f_op.wait_queue(outf), attempt)
            if r < 0:
                return done if done else r
            if pos is None:
                inf.f_op.read_done(inf, r)
            done += r
            state[0] = done
            if r < len(data):
                break
        if pos is not None and not hw.put_user64(uoffset, pos + done):
            return -EFAULT
        return done
    return attempt()
