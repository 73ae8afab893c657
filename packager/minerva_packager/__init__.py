"""Minerva packager: turn .tflite models into capsules, inspect, plan, deploy.

Library first: every CLI command in :mod:`minerva_packager.cli` is a thin wrapper over a
documented function in this package.
"""

__version__ = "0.1.0"

from .errors import PackagerError  # noqa: E402,F401
