# minerva: load capsules and run int8 models on MicroPython (and CPython).
#
#   import minerva
#   m = minerva.load("model.cap")   # verifies and prepares; raises minerva.CapsuleError
#   out = m.run(inp)                # output buffer, reused by the next run()
#   m.info()
from .errors import (CapsuleChecksumError, CapsuleError, CapsuleVersionError, OutOfMemoryError,
                     UnsupportedError)
from .model import Model, load

__version__ = "0.1.0"
__all__ = ["load", "Model", "CapsuleError", "CapsuleChecksumError", "CapsuleVersionError",
           "OutOfMemoryError", "UnsupportedError", "__version__"]
