# The time-stamp counter, calibrated against the PIT the way Linux's
# pit_calibrate_tsc() does: let PIT channel 2 count down a known interval
# (mode 0, gate via port 0x61) and count TSC ticks meanwhile.

PIT_HZ = 1193182
PIT_CH2 = 0x42
PIT_CMD = 0x43
PORT_B = 0x61               # bit 0: channel 2 gate; bit 5: channel 2 output
CALIBRATE_MS = 10
SIM_HZ = 1000000000         # the simulated machine's rdtsc counts nanoseconds
HZ = 250                    # jiffies per second (x86 CONFIG_HZ_250)
# jiffies start 5 minutes before wrapping 32 bits, as Linux's INITIAL_JIFFIES
INITIAL_JIFFIES = (1 << 32) - 300 * HZ


def calibrate(hw, ms=CALIBRATE_MS):
    """TSC ticks per second."""
    if hw.accel() == "sim":
        return SIM_HZ
    count = PIT_HZ * ms // 1000
    inb, outb, rdtsc = hw.inb, hw.outb, hw.rdtsc
    outb(PORT_B, (inb(PORT_B) & ~0x02) | 0x01)     # gate on, speaker off
    outb(PIT_CMD, 0xB0)                            # channel 2, lo/hi byte, mode 0
    outb(PIT_CH2, count & 0xFF)
    outb(PIT_CH2, count >> 8)
    t0 = rdtsc()
    while not inb(PORT_B) & 0x20:
        pass
    return (rdtsc() - t0) * 1000 // ms


class Clock:
    def __init__(self, hw):
        self.rdtsc = hw.rdtsc
        self.hz = calibrate(hw)
        self.t0 = self.rdtsc()

    def jiffies(self):
        """Ticks of HZ since boot, from INITIAL_JIFFIES."""
        return INITIAL_JIFFIES + (self.rdtsc() - self.t0) * HZ // self.hz

    def us(self, ticks):
        return ticks * 1000000 // self.hz

    def ns(self, ticks):
        return ticks * 1000000000 // self.hz

    def uptime_ns(self):
        """CLOCK_MONOTONIC: nanoseconds since boot."""
        return (self.rdtsc() - self.t0) * 1000000000 // self.hz

    def uptime_s(self):
        return (self.rdtsc() - self.t0) // self.hz

    def deadline(self, ns):
        """The TSC value ns nanoseconds from now (a timed sleep's wake_at)."""
        return self.rdtsc() + ns * self.hz // 1000000000 + 1
