# The periodic timer and the 8259 masks, programmed through hw's ports (the
# platform only remaps the PICs to vectors 32..47 and unmasks IRQ 4, COM1;
# docs/hw.md, "Interrupts"). HZ is the caller's choice.
#
# PIT channel 0 in mode 2 (rate generator: one IRQ 0 every `divisor` input
# clocks; 8254 data sheet; Linux's i8253 clockevent in periodic mode).

from kernel_py.arch.x86.tsc import PIT_CMD, PIT_HZ

PIT_CH0 = 0x40
PIC1_DATA = 0x21        # IMR of the master: IRQ 0..7
PIC2_DATA = 0xA1        # IMR of the slave: IRQ 8..15 (cascaded on IRQ 2)
CASCADE_IRQ = 2


def mask_irq(hw, irq):
    port = PIC1_DATA if irq < 8 else PIC2_DATA
    hw.outb(port, hw.inb(port) | 1 << (irq & 7))


def unmask_irq(hw, irq):
    """Let IRQ `irq` through (a slave line needs the cascade line too)."""
    if irq >= 8:
        unmask_irq(hw, CASCADE_IRQ)
    port = PIC1_DATA if irq < 8 else PIC2_DATA
    hw.outb(port, hw.inb(port) & ~(1 << (irq & 7)) & 0xFF)


def start_tick(hw, hz):
    """IRQ 0 `hz` times a second (19..1193182); returns the rate actually set
    (to the nearest Hz)."""
    divisor = (PIT_HZ + hz // 2) // hz if hz > 0 else 0
    if not 1 <= divisor <= 0x10000:
        raise ValueError("the PIT cannot tick %r times a second" % (hz,))
    hw.outb(PIT_CMD, 0x34)                  # channel 0, lo/hi byte, mode 2, binary
    hw.outb(PIT_CH0, divisor & 0xFF)
    hw.outb(PIT_CH0, (divisor >> 8) & 0xFF)  # 0x10000 is written as 0
    unmask_irq(hw, 0)
    return (PIT_HZ + divisor // 2) // divisor


def stop_tick(hw):
    mask_irq(hw, 0)
