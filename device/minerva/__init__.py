# minerva: load capsules and run int8 models on MicroPython (and CPython).
#
#   import minerva
#   m = minerva.load("model.cap")   # verifies and prepares; raises minerva.CapsuleError
#   out = m.run(inp)                # output buffer, reused by the next run()
#   m.info()
# First, before any other module of the package is imported: finish an activation that a
# reset interrupted, so the modules imported next are all of one release.
from .journal import recover as _recover

_recover()
from .errors import (CapsuleChecksumError, CapsuleError,  # noqa: E402
                     CapsuleVersionError, OutOfMemoryError, UnsupportedError)
from .model import Model, load  # noqa: E402

__version__ = "0.1.0"
__all__ = ["load", "Model", "CapsuleError", "CapsuleChecksumError", "CapsuleVersionError",
           "OutOfMemoryError", "UnsupportedError", "__version__"]
