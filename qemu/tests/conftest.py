# Tests of the harness itself (no kernel image needed): `pytest qemu/tests`.
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "qemu", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
