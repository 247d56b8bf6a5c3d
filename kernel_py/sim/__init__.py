"""The simulated machine: kernel_py's `hw` for CPython (host tests).

Host-only code (never frozen into the guest). See docs/hw.md for the
interface and machine.py for the model.
"""

from kernel_py.sim.fault import Fault
from kernel_py.sim.machine import Machine

__all__ = ["Fault", "Machine"]
