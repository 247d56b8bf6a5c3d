# Importing this module registers every console command and pseudo-file.

import kernel_py.shell.builtins  # noqa: F401
import kernel_py.shell.procfs  # noqa: F401
import kernel_py.shell.cmd_mm  # noqa: F401
import kernel_py.shell.cmd_slab  # noqa: F401
import kernel_py.shell.cmd_kmemleak  # noqa: F401
import kernel_py.shell.cmd_bench  # noqa: F401
import kernel_py.shell.cmd_fs  # noqa: F401
import kernel_py.shell.cmd_swap  # noqa: F401
import kernel_py.shell.cmd_pagedebug  # noqa: F401
import kernel_py.shell.cmd_proc  # noqa: F401
