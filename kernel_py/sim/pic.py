"""The interrupt hardware the kernel programs through ports: the 8259 pair
(masks, and the register reads the guest's IRQ code makes) and channel 0 of
the 8254 PIT, just enough for the simulated machine to know which IRQs can
arrive and how often the timer ticks.

The state at boot is what guest/cpu.c's pic_init leaves: vectors 32..47,
only IRQ 4 (COM1) unmasked.
"""

from kernel_py.arch.x86.pit import PIC1_DATA, PIC2_DATA, PIT_CH0
from kernel_py.arch.x86.tsc import PIT_CMD, PIT_HZ

PIC1_CMD, PIC2_CMD = 0x20, 0xA0


class PicPair:
    """Two cascaded 8259As: IMR writes (OCW1), an init sequence (ICW1..4)
    accepted and ignored, OCW3 register reads answered 0 (nothing in
    service: the simulation acknowledges at once)."""

    def __init__(self):
        self.imr = [0xFF & ~(1 << 4), 0xFF]
        self._icw = [0, 0]           # ICW2..4 still expected after an ICW1

    def masked(self, irq):
        """Masked at its own chip, or (slave lines) at the cascade line 2."""
        if irq >= 8 and self.imr[0] & (1 << 2):
            return True
        return bool(self.imr[irq >> 3] & (1 << (irq & 7)))

    def port_read(self, port, width):
        chip = 0 if port in (PIC1_CMD, PIC1_DATA) else 1
        if port in (PIC1_DATA, PIC2_DATA):
            return self.imr[chip]
        return 0                     # IRR/ISR: nothing pending or in service

    def port_write(self, port, width, value):
        chip = 0 if port in (PIC1_CMD, PIC1_DATA) else 1
        if port in (PIC1_CMD, PIC2_CMD):
            if value & 0x10:         # ICW1: ICW2, ICW3, ICW4 follow
                self._icw[chip] = 3
            return                   # EOI, OCW3
        if self._icw[chip]:
            self._icw[chip] -= 1
            return
        self.imr[chip] = value & 0xFF


class Pit:
    """Channel 0 of the 8254: the reload value (lo/hi byte access), so
    hz() says how often IRQ 0 fires (to the nearest Hz); 0 when never
    programmed. Channel 2
    (the TSC calibration's) is accepted and ignored."""

    def __init__(self):
        self.reload = 0
        self._bytes = None           # lo/hi bytes of channel 0 still expected

    def hz(self):
        if not self.reload:
            return 0
        return (PIT_HZ + self.reload // 2) // self.reload

    def port_read(self, port, width):
        return 0

    def port_write(self, port, width, value):
        if port == PIT_CMD:
            if value >> 6 == 0 and (value >> 4) & 3 == 3:    # channel 0, lo/hi
                self._bytes = []
            return
        if port == PIT_CH0 and self._bytes is not None:
            self._bytes.append(value & 0xFF)
            if len(self._bytes) == 2:
                self.reload = (self._bytes[0] | self._bytes[1] << 8) or 0x10000
                self._bytes = None
