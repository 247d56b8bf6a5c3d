# Freeze kernel_py into the image as bytecode. kernel_py/sim is the host's
# simulated machine (CPython only) and stays out.
import os

files = []
for dirpath, dirnames, filenames in os.walk("../kernel_py"):
    dirnames[:] = sorted(d for d in dirnames if d not in ("sim", "__pycache__"))
    for name in sorted(filenames):
        if name.endswith(".py"):
            files.append(os.path.relpath(os.path.join(dirpath, name), "..").replace(os.sep, "/"))

package("kernel_py", files=[f[len("kernel_py/"):] for f in files], base_path="..")
