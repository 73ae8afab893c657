# Kernel tiers, fastest first: the C native module for this interpreter's architecture, viper,
# then pure Python (the spec). On CPython a numpy tier serves host-side simulation.
import sys

from .capsule import CIRCUITPYTHON, MICROPYTHON_FAMILY
from .errors import UnsupportedError
from .memory import collect

TIERS = ("natmod", "viper", "python", "numpy")
# Modules that only run on CPython; deploy leaves them off boards.
HOST_ONLY_MODULES = ("kernels_np", "math_np")
# MicroPython's native architecture numbers, as sys.implementation._mpy >> 10 gives them.
ARCHS = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
         "xtensa", "xtensawin", "rv32imc", "rv64imc")


def native_arch():
    # (arch name or None, "major.minor" .mpy ABI) of the running interpreter.
    mpy = getattr(sys.implementation, "_mpy", None)
    if mpy is None:
        return None, None
    arch = mpy >> 10
    return (ARCHS[arch] if arch < len(ARCHS) else None), "%d.%d" % (mpy & 0xFF, mpy >> 8 & 3)


def _import(tier):
    # Compiling a tier's source needs heap; garbage from parsing the capsule must not hold it.
    collect()
    if tier == "natmod":
        import minerva_nat

        return minerva_nat
    if tier == "viper":
        from . import kernels_viper

        return kernels_viper
    if tier == "numpy":
        from . import kernels_np

        return kernels_np
    from . import kernels_py

    return kernels_py


# Each tier's module of kernels for the math ops (opcodes 20-23; natmod has them built in).
# It is imported only when a model uses one of them, so a model without them loads in no more
# RAM than before they existed.
_MATH_MODULES = ("viper", "python", "numpy")


def _import_math(tier):
    if tier == "viper":
        from . import viper_math

        return viper_math
    if tier == "numpy":
        from . import math_np

        return math_np
    from . import math_py

    return math_py


def _kernel(kernels, tier, op_name):
    # The data-movement kernels (GATHER, CONCATENATION) and the math kernels of the python and
    # viper tiers live in their own modules, imported only when a model uses them: a board's
    # heap pays only for the kernels it runs (viper code takes RAM).
    fn = getattr(kernels, op_name, None)
    if fn is None and op_name in ("gather", "concatenation"):
        if tier == "viper":
            from . import viper_shape as module
        elif tier == "python":
            from . import shape_py as module
        else:
            return None
        fn = getattr(module, op_name, None)
    if fn is None and tier in _MATH_MODULES:
        fn = getattr(_import_math(tier), op_name, None)
    return fn


def bind(kernels, tier, op_name, name):
    # The kernel for ``op_name`` from the chosen tier, or from the next slower tier that has
    # one (an op without a fast form yet). Returns (function, tier it came from).
    try:
        fn = _kernel(kernels, tier, op_name)
    except (ImportError, SyntaxError, ValueError, MemoryError):
        fn = None  # its module does not load here: a slower tier's kernel serves
    if fn is not None:
        return fn, tier
    order = ("natmod", "viper", "python") if tier != "numpy" else ("numpy", "python")
    for slower in order[order.index(tier) + 1:] if tier in order else ("python",):
        try:
            fn = _kernel(_import(slower), slower, op_name)
        except (ImportError, SyntaxError, ValueError, MemoryError):
            fn = None
        if fn is not None:
            return fn, slower
    raise UnsupportedError("%s: no kernel tier has %s; update minerva on the board"
                           % (name, op_name))


def _default_order():
    if CIRCUITPYTHON:
        # Dynamic native modules cannot load on CircuitPython (one with a patched header
        # crashes the VM), and boards build without the viper emitter unless
        # CIRCUITPY_ENABLE_MPY_NATIVE is set: viper where the build has it, else pure Python.
        return ("viper", "python")
    if MICROPYTHON_FAMILY:
        return ("natmod", "viper", "python")
    return ("numpy", "python")


def select_kernels(tier, name):
    # Returns (kernel module, tier name). A forced tier that cannot load is an error; the
    # default falls through to the next tier.
    if tier is not None:
        if tier not in TIERS:
            raise UnsupportedError("%s: unknown kernel tier %r; choose one of %s"
                                   % (name, tier, ", ".join(TIERS)))
        try:
            return _import(tier), tier
        except MemoryError:
            from .errors import OutOfMemoryError

            raise OutOfMemoryError("%s: not enough RAM to import the %s kernels; load the "
                                   "model earlier, before the application allocates"
                                   % (name, tier))
        except (ImportError, SyntaxError, ValueError) as exc:
            raise UnsupportedError("%s: kernel tier %r is not available here (%s: %s)"
                                   % (name, tier, type(exc).__name__, exc))
    short = False
    for candidate in _default_order():
        try:
            return _import(candidate), candidate
        except MemoryError:
            short = True  # too little heap to import it now: the next tier may fit
        except (ImportError, SyntaxError, ValueError):
            pass  # not here (wrong arch, no viper): the next tier
    if short:
        from .errors import OutOfMemoryError

        raise OutOfMemoryError("%s: not enough RAM to import any kernel tier; load models "
                               "before the application allocates, or free memory" % name)
    raise UnsupportedError("%s: no kernel tier could be loaded" % name)
