"""The simulated machine: the `hw` interface of docs/hw.md for CPython.

A real model of the parts the kernel relies on, not a stub:

- physical memory is one flat buffer (physmem.py) holding everything,
  including the page tables;
- the boot state is the guest's: CR3 points at boot page tables built in that
  memory (firmware.py), CR0.WP = 1, CR4.PAE|PGE, EFER.NXE;
- virtual accesses walk those tables with the x86-64 rules (walk.py), set the
  accessed and dirty flags, raise #PF with the architectural error code, and
  go through a TLB (tlb.py) that only CR3 loads and INVLPG flush, so a
  forgotten invlpg fails here as it does on hardware;
- I/O ports go to a device registry (ports.py), with isa-debug-exit at 0xf4
  and the 8259 pair and PIT channel 0 (pic.py);
- user mode (user.py): run_user calls a Python callable standing for ring 3,
  with CPL-3 access helpers; uaccess with the guest's quiet failures; the
  IRQ counters and idle() over the PIC and PIT models.

Section numbers refer to the Intel SDM, Volume 3A.
"""

import struct
import time
import tracemalloc

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.arch.x86.cpu import (
    CR0_PG, CR0_WP, CR4_PAE, CR4_PGE, EFER_NXE, PF_INSTR, PF_PROT, PF_USER,
    PF_WRITE, PMD_SIZE, VEC_BP, VEC_DE, VEC_DF, VEC_GP, VEC_PF, VEC_UD,
    _PAGE_ACCESSED, _PAGE_DIRTY, is_canonical,
)
from kernel_py.sim import firmware, physmem
from kernel_py.sim.fault import Fault, oops_text
from kernel_py.sim.ports import DEBUG_EXIT_PORT, DebugExit, PortBus
from kernel_py.sim.tlb import TLB
from kernel_py.sim.user import UserMode, UserTrap
from kernel_py.sim.walk import (
    R_DIRTY, R_GLOBAL, R_WRITE, access_error, required_rights, reserved_mask,
    walk,
)

__all__ = ["Machine", "Fault", "UserTrap"]

M64 = (1 << 64) - 1
CR0_PE, CR0_MP, CR0_ET, CR0_NE = 1 << 0, 1 << 1, 1 << 4, 1 << 5
CR0_BOOT = CR0_PG | CR0_WP | CR0_NE | CR0_ET | CR0_MP | CR0_PE
CR4_BOOT = CR4_PAE | CR4_PGE
EFER_LME, EFER_LMA = 1 << 8, 1 << 10
EFER_BOOT = EFER_LMA | EFER_LME | EFER_NXE

TRAPS = {                 # trap(kind) -> (vector, error code)
    "de": (VEC_DE, 0),
    "bp": (VEC_BP, 0),
    "ud": (VEC_UD, 0),
    "gp": (VEC_GP, 0),
    "pf": (VEC_PF, PF_WRITE),   # a write to NULL
    "df": (VEC_DF, 0),          # a kernel stack overflow
}

_U16, _U32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")
_StructError = struct.error


def _make_vread(fmt):
    """vreadN: the TLB-hit path inline; a load crossing a page boundary goes
    byte-wise through vreadbytes (each page checked)."""
    n, unpack = fmt.size, fmt.unpack_from
    last, ones = 0x1000 - n, (1 << 8 * n) - 1

    def vread(self, va):
        off = va & 0xFFF
        if off <= last:
            e = self._tlb_get(va >> 12)
            pa = e[0] | off if e is not None else self._miss(va, 0, 0)
            try:
                return unpack(self._buf, pa)[0]
            except _StructError:         # beyond the machine: all ones
                return ones
        return int.from_bytes(self.vreadbytes(va, n), "little")
    vread.__name__ = "vread%d" % (8 * n)
    return vread


def _make_vwrite(fmt):
    """vwriteN: the TLB-hit path inline (the entry must allow the write and
    be dirty already, 4.8); a store crossing a page boundary translates both
    pages before writing."""
    n, pack = fmt.size, fmt.pack_into
    last, mask = 0x1000 - n, (1 << 8 * n) - 1

    def vwrite(self, va, v):
        v &= mask
        off = va & 0xFFF
        if off <= last:
            need = self._wneed
            e = self._tlb_get(va >> 12)
            if e is not None and e[1] & need == need:
                pa = e[0] | off
            else:
                pa = self._miss(va, need, PF_WRITE)
            try:
                pack(self._buf, pa, v)
            except _StructError:         # beyond the machine: dropped
                pass
            return
        self._vwrite_split(va, v.to_bytes(n, "little"))
    vwrite.__name__ = "vwrite%d" % (8 * n)
    return vwrite


class Machine(UserMode):
    """One simulated x86-64 machine. See docs/hw.md for the interface.

    Physical accessors (read8..read64, write8..write64, fill, copy,
    readbytes, writebytes, mem) are installed per instance as closures.

    Sim-only extras, for tests: access(), probe(), write_cr0/cr4/efer,
    read_efer(), attach_port(), tlb, ports, oops_count, faults; for user
    mode (user.py): user_mode, user_read/user_write/user_fetch (and the 64-bit
    ones), UserTrap, fpu_state, fs_base, gs_base, raise_irq(), pic, pit.
    """

    Fault = Fault

    def __init__(self, mem_size=128 << 20, cmdline="", *, tlb_capacity=8192,
                 maxphyaddr=52, spurious_faults=False, retry_limit=1000,
                 console=None, initrd=None):
        if mem_size < 16 << 20:
            raise ValueError("a machine needs at least 16 MiB")
        self.mem_size = mem_size
        self._cmdline = cmdline
        self._console = console
        self._memory_map = firmware.e820_map(mem_size)
        top = firmware.ram_top(self._memory_map)
        self.phys_size = (top + PMD_SIZE - 1) & ~(PMD_SIZE - 1)
        self._buf = physmem.allocate(self.phys_size)
        self.__dict__.update(physmem.make_accessors(self._buf, self._phys_fault))

        self.spurious_faults = spurious_faults  # 4.10.4.3; see _miss()
        self.retry_limit = retry_limit
        self.oops_count = 0
        self.faults = 0                  # #PFs delivered to the handler
        self._handler = None
        self._tsc = 0
        self._maxphyaddr = maxphyaddr
        self.cr0 = CR0_BOOT
        self.cr2 = 0
        self.cr4 = CR4_BOOT
        self.efer = EFER_BOOT
        self._cpu_changed()
        self.tlb = TLB(tlb_capacity)
        self._tlb_get = self.tlb.entries.get

        self.cr3, tables_end = firmware.build_boot_tables(
            self, self._memory_map)
        self._reserved = firmware.reserved_ranges(tables_end)
        if initrd is not None:          # a multiboot module, where QEMU puts it: after the image
            start = (tables_end + 0xFFF) & ~0xFFF
            self.writebytes(start, initrd)
            self._reserved.append((start, start + len(initrd), "modules"))
        self.ports = PortBus()
        self.ports.attach(range(DEBUG_EXIT_PORT, DEBUG_EXIT_PORT + 4),
                          DebugExit())
        self._user_init()

    # -- oops and faults outside the #PF handler path -----------------------

    def _oops(self, fault, why=""):
        """Print the oops for `fault` and return it, for the caller to raise."""
        self.oops_count += 1
        text = oops_text(fault, self.oops_count, why)
        if self._console is not None:
            self._console(text)
        else:
            print(text, end="")
        return fault

    def _phys_fault(self, pa, write):
        """A physical accessor left memory. On the guest the accessor's load
        through the direct map takes a #PF inside the uaccess code, so the
        handler is consulted as for virtual accesses; a True answer retries,
        which faults again here (the memory will not appear) until the retry
        limit. A view (mem(), write None) is not protected: an oops at once.
        """
        va = (DIRECT_MAP_BASE + pa) & M64
        err = PF_WRITE if write else 0
        rip = firmware.RIP_PHYS
        if write is None:
            self.cr2 = va
            raise self._oops(Fault(VEC_PF, err, va, rip),
                             "mem() beyond memory at %#x" % pa)
        for _ in range(self.retry_limit):
            self._deliver(va, err, rip)
        raise self._oops(Fault(VEC_PF, err, va, rip),
                         "fault loop: %d retries" % self.retry_limit)

    def _gp(self, va):
        """A non-canonical address (3.3.7.1) raises #GP, not #PF."""
        raise self._oops(Fault(VEC_GP, 0, va, firmware.RIP_UACCESS),
                         "non-canonical address %#x" % va)

    # -- CPU ----------------------------------------------------------------

    def _cpu_changed(self):
        """Recompute what the MMU derives from CR0/CR4/EFER."""
        self._nxe = bool(self.efer & EFER_NXE)
        self._rsvd = reserved_mask(self._maxphyaddr, self._nxe)
        self._wneed = R_DIRTY | (R_WRITE if self.cr0 & CR0_WP else 0)

    def read_cr0(self):
        return self.cr0

    def read_cr2(self):
        return self.cr2

    def read_cr3(self):
        return self.cr3

    def read_cr4(self):
        return self.cr4

    def write_cr3(self, pa):
        """MOV to CR3 flushes the TLB except global entries when CR4.PGE
        (4.10.4.1)."""
        self.cr3 = pa & M64
        self.tlb.flush(keep_global=bool(self.cr4 & CR4_PGE))

    def invlpg(self, va):
        self.tlb.invlpg(va & M64)

    def rdtsc(self):
        """Strictly increasing, in nanoseconds of host time."""
        t = time.perf_counter_ns()
        if t <= self._tsc:
            t = self._tsc + 1
        self._tsc = t
        return t

    # sim-only control registers (tests switch WP, PGE, NXE)

    def write_cr0(self, v):
        self.cr0 = v & M64
        self._cpu_changed()

    def write_cr4(self, v):
        """Changing CR4.PGE flushes the whole TLB, global entries too."""
        old, self.cr4 = self.cr4, v & M64
        if (old ^ self.cr4) & CR4_PGE:
            self.tlb.flush(keep_global=False)
        self._cpu_changed()

    def read_efer(self):
        return self.efer

    def write_efer(self, v):
        self.efer = v & M64
        self.tlb.flush(keep_global=False)
        self._cpu_changed()

    # -- faults ---------------------------------------------------------------

    def set_fault_handler(self, fn):
        self._handler = fn

    def trap(self, kind):
        """Raise exception `kind` outside any accessor: an oops, then Fault."""
        try:
            vector, err = TRAPS[kind]
        except KeyError:
            raise ValueError("unknown trap %r" % (kind,)) from None
        if vector == VEC_PF:
            self.cr2 = 0
        raise self._oops(Fault(vector, err, 0, firmware.RIP_TRAP), "trap")

    def _deliver(self, va, err, rip=firmware.RIP_UACCESS):
        """A #PF at an accessor: CR2 := va, then the handler decides (hw.md).
        Returns when the access should be retried, raises Fault otherwise."""
        self.cr2 = va
        h = self._handler
        if h is None:
            raise self._oops(Fault(VEC_PF, err, va, rip), "no fault handler")
        self.faults += 1
        try:
            handled = h(va, err, rip)
        except Exception as ex:
            raise self._oops(Fault(VEC_PF, err, va, rip),
                             "fault handler raised %r" % (ex,)) from ex
        if not handled:
            raise self._oops(Fault(VEC_PF, err, va, rip), "not handled")

    # -- the MMU --------------------------------------------------------------

    def probe(self, va, cr3=None):
        """Walk the tables for va without side effects (sim-only): a Walk."""
        return walk(self.read64, self.cr3 if cr3 is None else cr3, va,
                    self._nxe, self._rsvd)

    def _walk_fill(self, va, need, acc):
        """One page walk for an access needing `need` rights: set A/D (4.8),
        fill the TLB and return pa, or return ~error_code."""
        if not 0 <= va <= M64 or not is_canonical(va):
            self._gp(va)
        w = walk(self.read64, self.cr3, va, self._nxe, self._rsvd)
        err = access_error(w, need & ~R_DIRTY)
        if err is not None:
            return ~(err | acc)
        write64 = self.write64
        last = len(w.entries) - 1
        rights = w.rights
        for i, (epa, e) in enumerate(w.entries):
            new = e | _PAGE_ACCESSED
            if i == last and need & R_DIRTY:
                new |= _PAGE_DIRTY
                rights |= R_DIRTY
            if new != e:
                write64(epa, new)
        if not self.cr4 & CR4_PGE:
            rights &= ~R_GLOBAL
        self.tlb.fill(va, w.pa, w.size, rights)
        return w.pa

    def _miss(self, va, need, acc):
        """Translate va when the TLB cannot: walk, and on a fault call the
        handler and retry while it returns True."""
        tries = 0
        while True:
            e = self._tlb_get(va >> 12)
            if e is not None:
                # A TLB entry that lacks rights is dropped and the walk
                # decides (4.10.4.1: a fault invalidates the entry). Hardware
                # may instead fault once on it (4.10.4.3), which
                # spurious_faults=True models.
                self.tlb.drop(va)
                perm = need & ~R_DIRTY
                if self.spurious_faults and e[1] & perm != perm:
                    r = ~(PF_PROT | acc)
                else:
                    r = self._walk_fill(va, need, acc)
            else:
                r = self._walk_fill(va, need, acc)
            if r >= 0:
                return r
            tries += 1
            if tries > self.retry_limit:
                raise self._oops(Fault(VEC_PF, ~r, va, firmware.RIP_UACCESS),
                                 "fault loop: %d retries" % self.retry_limit)
            self._deliver(va, ~r)

    def _translate(self, va, need, acc):
        e = self._tlb_get(va >> 12)
        if e is not None and e[1] & need == need:
            return e[0] | (va & 0xFFF)
        return self._miss(va, need, acc)

    def _access_bits(self, write, user, fetch):
        """Error-code bits describing an access (4.7). I is defined only
        with EFER.NXE (or SMEP); a fetch is never a write."""
        acc = PF_USER if user else 0
        if fetch:
            return acc | (PF_INSTR if self._nxe else 0)
        return acc | (PF_WRITE if write else 0)

    def access(self, va, write=False, user=False, fetch=False, size=1):
        """Sim-only: translate [va, va+size) for a general access (CPL 3 with
        user=True, instruction fetch with fetch=True) through the TLB, with
        the full fault path. Returns the physical address of va."""
        need = required_rights(write and not fetch, user, fetch,
                               self.cr0 & CR0_WP)
        if write and not fetch:
            need |= R_DIRTY
        acc = self._access_bits(write, user, fetch)
        first = None
        end = va + max(size, 1)
        while va < end:
            pa = self._translate(va, need, acc)
            if first is None:
                first = pa
            va = (va | 0xFFF) + 1
        return first

    translate = access

    # -- virtual accessors (CPL 0) ----------------------------------------------

    def _load(self, pa, n):
        """n bytes at pa; memory beyond the machine reads as all ones."""
        if pa + n <= self.phys_size:
            return self._buf[pa:pa + n]
        return b"\xff" * n

    def _store(self, pa, data):
        """Store data at pa; stores beyond the machine are dropped."""
        if pa + len(data) <= self.phys_size:
            self._buf[pa:pa + len(data)] = data

    def vreadbytes(self, va, n):
        out = []
        end = va + n
        while va < end:
            chunk = min(end, (va | 0xFFF) + 1) - va
            out.append(self._load(self._translate(va, 0, 0), chunk))
            va += chunk
        return b"".join(out)

    def vwritebytes(self, va, buf):
        """Page by page, like rep movsb: a fault leaves earlier bytes written."""
        data = memoryview(buf).cast("B")
        need = self._wneed
        i, n = 0, len(data)
        while i < n:
            chunk = min(n - i, 0x1000 - ((va + i) & 0xFFF))
            self._store(self._translate(va + i, need, PF_WRITE),
                        data[i:i + chunk])
            i += chunk

    def vfill(self, va, byte, n):
        need = self._wneed
        end = va + n
        while va < end:
            chunk = min(end, (va | 0xFFF) + 1) - va
            self._store(self._translate(va, need, PF_WRITE),
                        bytes((byte & 0xFF,)) * chunk)
            va += chunk

    def _vwrite_split(self, va, data):
        """One store crossing a page boundary: both pages are translated
        before any byte is written (an instruction faults as a whole)."""
        need = self._wneed
        split = 0x1000 - (va & 0xFFF)
        pa0 = self._translate(va, need, PF_WRITE)
        pa1 = self._translate(va + split, need, PF_WRITE)
        self._store(pa0, data[:split])
        self._store(pa1, data[split:])

    def vread8(self, va):
        e = self._tlb_get(va >> 12)
        pa = e[0] | (va & 0xFFF) if e is not None else self._miss(va, 0, 0)
        if pa < self.phys_size:
            return self._buf[pa]
        return 0xFF

    def vwrite8(self, va, v):
        need = self._wneed
        e = self._tlb_get(va >> 12)
        if e is not None and e[1] & need == need:
            pa = e[0] | (va & 0xFFF)
        else:
            pa = self._miss(va, need, PF_WRITE)
        if pa < self.phys_size:
            self._buf[pa] = v & 0xFF

    vread16 = _make_vread(_U16)
    vread32 = _make_vread(_U32)
    vread64 = _make_vread(_U64)
    vwrite16 = _make_vwrite(_U16)
    vwrite32 = _make_vwrite(_U32)
    vwrite64 = _make_vwrite(_U64)

    # -- ports ------------------------------------------------------------------

    def attach_port(self, ports, device):
        """Sim-only: claim `ports` (int or range) for `device` (ports.py)."""
        self.ports.attach(ports, device)

    def inb(self, port):
        return self.ports.read(port, 1)

    def inw(self, port):
        return self.ports.read(port, 2)

    def inl(self, port):
        return self.ports.read(port, 4)

    def outb(self, port, v):
        self.ports.write(port, 1, v)

    def outw(self, port, v):
        self.ports.write(port, 2, v)

    def outl(self, port, v):
        self.ports.write(port, 4, v)

    def insw(self, port, pa, count):
        """rep insw: count words from the port into physical memory."""
        read = self.ports.read
        words = [read(port, 2) for _ in range(count)]
        self.writebytes(pa, struct.pack("<%dH" % count, *words))

    def outsw(self, port, pa, count):
        """rep outsw: count words from physical memory to the port."""
        write = self.ports.write
        for w in struct.unpack("<%dH" % count, self.readbytes(pa, 2 * count)):
            write(port, 2, w)

    # -- boot information and exit -------------------------------------------

    def memory_map(self):
        return list(self._memory_map)

    def reserved(self):
        return list(self._reserved)

    def kernel_sections(self):
        return firmware.kernel_sections()

    def heap_info(self):
        """(size, in use, live, peak live, collections) of the kernel's
        Python heap: the firmware's heap range, and what CPython's
        tracemalloc counts (0 unless a test traces allocations: the host has
        no VM heap of the guest's kind, and no collections of it)."""
        start, end = firmware.HEAP
        used, peak = tracemalloc.get_traced_memory()
        return end - start, used, used, peak, 0

    def cmdline(self):
        return self._cmdline

    def accel(self):
        return "sim"

    def exit(self, code):
        """isa-debug-exit: the simulation raises SystemExit(code)."""
        self.outl(DEBUG_EXIT_PORT, code)
        raise SystemExit(code)   # only if the device was replaced
