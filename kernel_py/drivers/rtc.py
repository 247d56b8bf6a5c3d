# The PC's CMOS real-time clock (Motorola MC146818, Linux's
# drivers/rtc/rtc-mc146818-lib.c): read once at boot so that
# CLOCK_REALTIME starts at the wall-clock time QEMU gives the machine;
# the TSC keeps it going from there.

CMOS_ADDR = 0x70
CMOS_DATA = 0x71
REG_SEC, REG_MIN, REG_HOUR, REG_DAY, REG_MON, REG_YEAR, REG_CENTURY = 0, 2, 4, 7, 8, 9, 0x32
REG_A, REG_B = 0x0A, 0x0B
UIP = 0x80                      # register A: an update is in progress
B_BINARY = 0x04                 # register B: values are binary, not BCD
B_24H = 0x02


def cmos(hw, reg):
    hw.outb(CMOS_ADDR, reg)
    return hw.inb(CMOS_DATA)


def bcd(v):
    return (v & 0x0F) + (v >> 4) * 10


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def read_time(hw):
    """Seconds since the epoch (UTC, as QEMU's default -rtc base=utc), or 0
    where there is no RTC (the simulated machine)."""
    if hw.accel() == "sim":
        return 0
    for _ in range(100000):
        if not cmos(hw, REG_A) & UIP:
            break
    regs = [cmos(hw, r) for r in (REG_SEC, REG_MIN, REG_HOUR, REG_DAY, REG_MON, REG_YEAR,
                                  REG_CENTURY)]
    b = cmos(hw, REG_B)
    pm = regs[2] & 0x80
    regs[2] &= 0x7F
    if not b & B_BINARY:
        regs = [bcd(v) for v in regs]
    sec, mn, hour, day, mon, year, century = regs
    if not b & B_24H and pm:
        hour = (hour % 12) + 12
    year += (century or 20) * 100
    return days_from_civil(year, mon, day) * 86400 + hour * 3600 + mn * 60 + sec
