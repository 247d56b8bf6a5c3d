# Page debugging on the console: /sys/kernel/debug/page_owner and the
# page_owner_sort summary (tools/mm/page_owner_sort's report, by site),
# and the fault-injection knobs /sys/kernel/debug/{failslab,fail_page_alloc}/*
# (mm/debug/page_owner.py, mm/debug/fault_inject.py, mm/debug/debug_pagealloc.py).

from kernel_py.lib.errors import KernelError
from kernel_py.mm.debug import fault_inject as FI
from kernel_py.shell.registry import command, pseudo_file


def owner(k):
    pd = k.page_debug
    if pd is None:
        raise KernelError("EINVAL", "page_owner is off (boot with page_owner=on)")
    return pd.owner


@pseudo_file("/sys/kernel/debug/page_owner")
def debug_page_owner(k):
    return owner(k).read()


@command("page_owner_sort", "page_owner_sort",
         "allocated pages by site, most pages first (tools/mm/page_owner_sort)")
def cmd_page_owner_sort(k, args):
    if args:
        raise KernelError("EINVAL", "usage: page_owner_sort")
    return owner(k).sort_text()


def knob(attr_name, fname, field, kind):
    path = "/sys/kernel/debug/%s/%s" % (attr_name, fname)

    def attr(k):
        return getattr(fault_injection(k), attr_name)

    def write(k, text):
        FI.store(attr(k), field, kind, text)

    pseudo_file(path, write=write)(lambda k: FI.show(attr(k), field, kind))


def fault_injection(k):
    fi = k.fault_inject
    if fi is None:
        raise KernelError("ENODEV", "fault injection is not set up")
    return fi


def write_fail_nth(k, text):
    fault_injection(k).set_fail_nth(FI.parse("fail-nth", "uint", text))


@pseudo_file("/proc/self/fail-nth", write=write_fail_nth)
def proc_fail_nth(k):
    return "%d" % fault_injection(k).fail_nth


for _f, _field, _kind in FI.COMMON_FILES:
    knob("failslab", _f, _field, _kind)
for _f, _field, _kind in FI.PAGE_FILES:
    knob("fail_page_alloc", _f, _field, _kind)
