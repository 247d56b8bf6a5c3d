"""The I/O port space: a registry of devices by port number.

A device implements `port_read(port, width) -> int` and
`port_write(port, width, value)`, width in bytes (1, 2, 4). Reads of an
unclaimed port return all ones and writes are dropped, like a floating ISA
bus (QEMU's unassigned I/O).
"""

ALL_ONES = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF}

DEBUG_EXIT_PORT = 0xF4


class PortBus:
    def __init__(self):
        self._devices = {}

    def attach(self, ports, device):
        """Claim `ports` (an int or an iterable such as range) for device."""
        if isinstance(ports, int):
            ports = (ports,)
        ports = list(ports)
        for p in ports:
            if not 0 <= p <= 0xFFFF:
                raise ValueError("port %#x out of range" % p)
            if p in self._devices:
                raise ValueError("port %#x already claimed" % p)
        for p in ports:
            self._devices[p] = device

    def device(self, port):
        return self._devices.get(port)

    def read(self, port, width):
        dev = self._devices.get(port)
        if dev is None:
            return ALL_ONES[width]
        return dev.port_read(port, width) & ALL_ONES[width]

    def write(self, port, width, value):
        dev = self._devices.get(port)
        if dev is not None:
            dev.port_write(port, width, value & ALL_ONES[width])


class DebugExit:
    """QEMU's isa-debug-exit (iobase 0xf4, iosize 4): a write makes QEMU exit
    with status value * 2 + 1; the simulation raises SystemExit(value)."""

    def port_read(self, port, width):
        return ALL_ONES[width]

    def port_write(self, port, width, value):
        raise SystemExit(value)
