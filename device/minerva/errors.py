# The device side's one error family. Messages name the file and carry the numbers.


class CapsuleError(Exception):
    """A capsule that cannot be loaded: corrupt, foreign, too new, or not runnable here."""


class CapsuleVersionError(CapsuleError):
    """The capsule's format is newer than this runtime reads."""


class CapsuleChecksumError(CapsuleError):
    """A CRC-32 or the SHA-256 does not match: the file is damaged or was cut short."""


class OutOfMemoryError(CapsuleError):
    """Valid capsule, but the heap cannot hold it (or the runtime) now: the message says what
    was needed, what was free, the largest free block, and what to do."""


class UnsupportedError(CapsuleError):
    """Valid capsule, but something in it (an op, a kernel tier) is not available here."""
