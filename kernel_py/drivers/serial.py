# The 16550 UART on COM1 (Linux's drivers/tty/serial/8250): the kernel's
# idle loop polls it for input (the platform enables the receive interrupt,
# IRQ 4, so a byte also ends an idle hlt); output goes through the
# platform's console writer, which turns "\n" into "\r\n".

import sys

COM1 = 0x3F8
LSR = COM1 + 5
LSR_DATA_READY = 0x01


class Serial:
    """k.serial: getc() -> the next received byte, or -1 when none waits."""

    def __init__(self, hw, out=None):
        self.inb = hw.inb
        self.out = out if out is not None else stdout_writer()
        self.rx = 0                     # bytes received
        self.tx = 0                     # bytes sent

    def getc(self):
        inb = self.inb
        if inb(LSR) & LSR_DATA_READY:
            self.rx += 1
            return inb(COM1)
        return -1

    def ready(self):
        return bool(self.inb(LSR) & LSR_DATA_READY)

    def write(self, data):
        self.tx += len(data)
        self.out(data)


def stdout_writer():
    """Raw bytes to the console: sys.stdout.buffer (MicroPython's goes to the UART)."""
    buf = sys.stdout.buffer
    return buf.write
