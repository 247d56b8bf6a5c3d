# Generic /proc files: cmdline, version, meminfo (from mm/vmstat.py's
# counters). The subsystems' own files are in the cmd_* modules, the
# per-process ones in proc_pid.py.

from kernel_py.mm import vmstat
from kernel_py.shell.registry import pseudo_file


@pseudo_file("/proc/cmdline")
def proc_cmdline(k):
    return k.hw.cmdline()


@pseudo_file("/proc/version")
def proc_version(k):
    return "kernel_py version 0.1 (MicroPython on x86-64; accel=%s)" % k.hw.accel()


@pseudo_file("/proc/meminfo")
def proc_meminfo(k):
    return vmstat.meminfo_show(k)
