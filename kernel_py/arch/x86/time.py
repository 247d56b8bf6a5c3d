# The periodic tick (Linux's arch/x86/kernel/i8253.c and the tick
# broadcast's NO_HZ idle, in miniature): PIT channel 0 as a rate generator
# at HZ, its interrupt (IRQ 0) unmasked at the 8259 only while something
# needs ticks — a runnable task to preempt, or a timed sleep to end — so an
# idle machine sleeps in hlt until a key arrives, as before there were
# programs.

from kernel_py.arch.x86.tsc import HZ, PIT_HZ

PIT_CH0 = 0x40
PIT_CMD = 0x43
PIC1_DATA = 0x21
IRQ_TIMER_BIT = 0x01
PIT_RATE_GEN = 0x34             # channel 0, lo/hi byte, mode 2 (rate generator), binary


class Tick:
    """k.tick."""

    def __init__(self, hw):
        self.hw = hw
        self.running = False
        self.starts = 0

    def start(self):
        if self.running:
            return
        hw = self.hw
        divisor = PIT_HZ // HZ
        hw.outb(PIT_CMD, PIT_RATE_GEN)
        hw.outb(PIT_CH0, divisor & 0xFF)
        hw.outb(PIT_CH0, divisor >> 8)
        hw.outb(PIC1_DATA, hw.inb(PIC1_DATA) & ~IRQ_TIMER_BIT)
        self.running = True
        self.starts += 1

    def stop(self):
        if not self.running:
            return
        hw = self.hw
        hw.outb(PIC1_DATA, hw.inb(PIC1_DATA) | IRQ_TIMER_BIT)
        self.running = False
