# The kernel object: owns the machine (hw), boots the subsystems in order and
# holds them, so the console and tests reach everything from one place.

from kernel_py import cmdline
from kernel_py.mm.memmap import MemoryMap

LOG_LINES = 1000


class Kernel:
    def __init__(self, hw, console=print):
        self.hw = hw
        self.console = console
        self.params = cmdline.parse(hw.cmdline())
        self.log = []
        self.last_exception = None
        self.memmap = None

    def printk(self, msg):
        self.log.append(msg)
        if len(self.log) > LOG_LINES:
            del self.log[0]
        self.console(msg)

    def note_exception(self, exc):
        self.last_exception = exc

    def pids(self):
        return []

    def boot(self):
        self.memmap = MemoryMap(self.hw.memory_map(), self.hw.reserved())
        self.printk(self.summary())

    def meminfo(self):
        """/proc/meminfo; each subsystem adds its lines as it lands."""
        total = self.memmap.total_usable() >> 10
        return meminfo_lines((("MemTotal", total), ("MemFree", total), ("MemAvailable", total)))

    def summary(self):
        m = self.memmap
        return "kernel_py: %d MiB RAM in %d ranges, %d KiB usable, accel=%s, cmdline=%r" % (
            m.total_ram() >> 20, len(m.ram), m.total_usable() >> 10,
            self.hw.accel(), self.hw.cmdline())


def meminfo_lines(pairs):
    """Linux's layout: the name and colon padded to 16 columns, kB right-aligned in 8."""
    return "\n".join("%-16s%8d kB" % (name + ":", kb) for name, kb in pairs)
