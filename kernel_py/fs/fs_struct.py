# A task's file-system context (Linux's struct fs_struct): the working
# directory and the umask; shared between tasks by CLONE_FS.


class FsStruct:
    def __init__(self, cwd="/", umask=0o022):
        self.cwd = cwd                  # an absolute path, normalised
        self.umask = umask
        self.count = 1

    def get(self):
        self.count += 1
        return self

    def copy(self):
        return FsStruct(self.cwd, self.umask)
