# Importing this module registers every console command and pseudo-file
# (in any order: shell/registry.py gives each name one meaning).

import kernel_py.shell.builtins  # noqa: F401 - help, echo, cat, ls, sysctl, dmesg, python, trap
import kernel_py.shell.procfs  # noqa: F401 - /proc/cmdline, version, meminfo
import kernel_py.shell.cmd_mm  # noqa: F401 - the buddy, /proc/vmstat, page tables, check
import kernel_py.shell.cmd_slab  # noqa: F401 - slab caches, kmalloc, vmalloc
import kernel_py.shell.cmd_kmemleak  # noqa: F401 - kmemleak, alloc_traces
import kernel_py.shell.cmd_bench  # noqa: F401 - bench
import kernel_py.shell.cmd_fs  # noqa: F401 - files, disks, the page cache, free, vmstat
import kernel_py.shell.cmd_swap  # noqa: F401 - swap and reclaim
import kernel_py.shell.cmd_pagedebug  # noqa: F401 - page_owner, fault injection
import kernel_py.shell.cmd_programs  # noqa: F401 - run: programs in ring 3
import kernel_py.shell.cmd_proc  # noqa: F401 - processes and their memory
import kernel_py.shell.proc_pid  # noqa: F401 - /proc/<pid>/
import kernel_py.shell.cmd_top  # noqa: F401 - top
import kernel_py.shell.cmd_memleak  # noqa: F401 - memleak: a program's leaks by call stack
