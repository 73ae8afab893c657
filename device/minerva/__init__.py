# minerva: load capsules and run int8 models on MicroPython (and CPython).
#
#   import minerva
#   m = minerva.load("model.cap")   # verifies and prepares; raises minerva.CapsuleError
#   out = m.run(inp)                # output buffer, reused by the next run()
#   m.info()
#   rt = minerva.Runtime()          # slots, shadow testing, promote/confirm/rollback (runtime.py)
# First, before any other module of the package is imported: finish an activation that a
# reset interrupted, so the modules imported next are all of one release.
from .journal import recover as _recover

_recover()
from .errors import (CapsuleChecksumError, CapsuleError,  # noqa: E402
                     CapsuleVersionError, OutOfMemoryError, UnsupportedError)
from .loader import load  # noqa: E402
from .model import Model  # noqa: E402

__version__ = "0.1.0"


def Runtime(root="/capsules", kernels=None, policy=None):  # noqa: N802 - it makes the object
    # Imported on first use: an application that only calls load() keeps that heap.
    from .runtime import Runtime as _Runtime

    return _Runtime(root, kernels, policy)


__all__ = ["load", "Model", "Runtime", "CapsuleError", "CapsuleChecksumError",
           "CapsuleVersionError", "OutOfMemoryError", "UnsupportedError", "__version__"]
