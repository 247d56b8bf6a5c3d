"""User mode (issue 14): the cost of going to ring 3 and back through
hw.run_user, measured with the guest TSC from the `python` REPL.

- null syscall round trip: run_user -> SYSCALL (event 256) -> Python sets
  RAX -> run_user, SYSRETQ (the frame is what SYSCALL left) and IRETQ (RCX
  changed, so SYSRETQ is not safe);
- user #PF round trip: a store to a fresh page of an anonymous mapping,
  event 14, the kernel's Python #PF handler maps a zeroed frame, run_user
  retries the store (and, for reference, the same fault taken by a kernel
  accessor in the same boot); and the bare trip (a load with no mapping:
  event 14, RIP moved past the load, no handler);
- FXSAVE64 + FXRSTOR64, the pair run_user adds to every entry, timed in
  ring 3 between the TSC_ENTER and TSC_EXIT slots (same instructions, same
  512-byte image, no Python in between).

    python bench/user.py [--quick]       (also a section of `make bench`)
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "qemu"), str(ROOT)]

from kpyqemu.guest import Guest, image_path, resolve_accel  # noqa: E402
from kpyqemu.usermode import DATA, assemble, run_user_python  # noqa: E402

SYSCALL_LOOP = "1: syscall\n jmp 1b\n"
PF_LOOP = "1: movq $1, (%rbx)\n add $4096, %rbx\n jmp 1b\n"
BARE_PF = "1: mov (%rbx), %rax\n jmp 1b\n"               # 3-byte load, then the jump
FX_LOOP = """
0:  mov $%d, %%ecx
    mov $%#x, %%ebx
1:  fxsave64 (%%rbx)
    fxrstor64 (%%rbx)
    dec %%ecx
    jnz 1b
    syscall
    mov $%d, %%ecx
2:  dec %%ecx
    jnz 2b
    syscall
    jmp 0b
"""


def figure(name, value, unit, how):
    print("%-44s %12s %-8s %s" % (name, value, unit, how))


def measure(g, n_sys, n_pf, n_fx):
    codes = [assemble(SYSCALL_LOOP), assemble(PF_LOOP), assemble(BARE_PF),
             assemble(FX_LOOP % (n_fx, DATA, n_fx))]
    out = run_user_python(g, codes, """
    def per_op(fn, n):
        t0 = hw.rdtsc()
        fn(n)
        return (hw.rdtsc() - t0) * 1000000000 // (n * k.clock.hz)
    run = hw.run_user
    fh = k.fault_handler
    def null_sys(n, sysret=True):
        r = ut.regs(CODE)
        fpu = ut.fpu
        run(r, fpu)
        for i in range(n):
            r[RAX] = 0
            if not sysret:
                r[RCX] = 0
            run(r, fpu)
    def loop(n):
        for i in range(n):
            pass
    r = ut.regs(CODE + 0x2000)
    r[RBX] = 0x10000000                          # nothing mapped there
    def bare_pf(n):
        for i in range(n):
            run(r, ut.fpu)
            r[RIP] = CODE + 0x2000 + 3
    rp = ut.regs(CODE + 0x1000)
    rp[RBX] = DATA + 0x1000
    rdtsc = hw.rdtsc
    split = [0, 0]
    def pf(n):
        fpu = ut.fpu
        for i in range(n):
            t0 = rdtsc()
            ev = run(rp, fpu)
            t1 = rdtsc()
            if ev == 14:
                fh(rp[CR2], rp[ERROR], rp[RIP])
            split[0] += t1 - t0
            split[1] += rdtsc() - t1
    print("loop_ns=%%d" %% per_op(loop, %(n)d))
    print("sysret_ns=%%d" %% per_op(null_sys, %(n)d))
    print("iret_ns=%%d" %% per_op(lambda n: null_sys(n, False), %(n)d))
    print("bare_pf_ns=%%d" %% per_op(bare_pf, %(n)d))
    print("pf_ns=%%d" %% per_op(pf, %(npf)d))
    print("pf_run_ns=%%d pf_handler_ns=%%d" %% (split[0] * 1000000000 // (%(npf)d * k.clock.hz),
          split[1] * 1000000000 // (%(npf)d * k.clock.hz)))
    w64 = hw.vwrite64
    def pf_kernel(n):                            # the same handler, from a kernel accessor
        for i in range(n):
            w64(DATA + (%(npf)d + 16 + i) * 4096, 1)
    print("pf_kernel_ns=%%d" %% per_op(pf_kernel, %(npf)d))
    rf = ut.regs(CODE + 0x3000)
    ut.run(rf, faults=True)                      # DATA's first page mapped, code translated
    ut.run(rf)
    t_loop = rf[TSC_EXIT] - rf[TSC_ENTER]
    fx = ut.run(rf)
    t_fx = rf[TSC_EXIT] - rf[TSC_ENTER]
    print("fx_ns=%%d" %% ((t_fx - t_loop) * 1000000000 // (%(nfx)d * k.clock.hz)))
    print("fx_events=%%d" %% fx)
    """ % {"n": n_sys, "npf": n_pf, "nfx": n_fx}, data_size=(2 * n_pf + 32) * 4096, timeout=1200)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", out)}


def bench_section(accel, quick):
    n_sys, n_pf, n_fx = (2000, 500, 20000) if quick else (20000, 5000, 200000)
    with Guest(mem="256M", accel=accel) as g:
        v = measure(g, n_sys, n_pf, n_fx)
    loop = v["loop_ns"]
    figure("null syscall round trip, SYSRETQ", "%.2f" % (v["sysret_ns"] / 1000), "us",
           "run_user -> SYSCALL -> Python sets RAX -> run_user, %d, loop incl., %s" % (n_sys, accel))
    figure("null syscall round trip, IRETQ", "%.2f" % (v["iret_ns"] / 1000), "us",
           "the same with RCX != RIP (and one more store), %s" % accel)
    figure("user #PF round trip, handler maps a page", "%.2f" % (v["pf_ns"] / 1000), "us",
           "fresh anonymous page each time, %d, %s" % (n_pf, accel))
    figure("  of which run_user (exit, re-entry, retry)", "%.2f" % (v["pf_run_ns"] / 1000), "us",
           "TSC around hw.run_user, %s" % accel)
    figure("  of which the Python #PF handler", "%.2f" % (v["pf_handler_ns"] / 1000), "us",
           "TSC around k.fault_handler, %s" % accel)
    figure("the same fault from a kernel accessor", "%.2f" % (v["pf_kernel_ns"] / 1000), "us",
           "hw.vwrite64 on a fresh page of the same mapping: reference, %s" % accel)
    figure("user #PF round trip, bare", "%.2f" % (v["bare_pf_ns"] / 1000), "us",
           "no mapping, RIP moved on, no handler, %d, %s" % (n_sys, accel))
    figure("FXSAVE64 + FXRSTOR64 per entry", "%.3f" % (v["fx_ns"] / 1000), "us",
           "timed in ring 3 (TSC_ENTER/TSC_EXIT), %d pairs, %s" % (n_fx, accel))
    figure("Python for-loop iteration (reference)", "%.3f" % (loop / 1000), "us",
           "the same REPL, %s" % accel)


if __name__ == "__main__":
    bench_section(resolve_accel(os.environ.get("KPY_ACCEL") or None, image_path()),
                  "--quick" in sys.argv)
