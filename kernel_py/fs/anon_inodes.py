# Anonymous inodes (Linux's fs/anon_inodes.c): the one inode every eventfd
# (and later signalfd, timerfd...) file shares, on a file system of its own
# that is mounted nowhere. Its mode has no file type bits, 0600, as Linux's
# anon_inode_inode: fstat of an eventfd says so.

from kernel_py.fs.inode import Inode, SuperBlock
from kernel_py.fs.magic import ANON_INODE_FS_MAGIC


class AnonFs(SuperBlock):
    fstype = "anon_inodefs"
    magic = ANON_INODE_FS_MAGIC

    def __init__(self, k):
        SuperBlock.__init__(self, k)
        self.inode = Inode(self, 0o600)
        self.inode.refs = 1
        self.root = self.inode
