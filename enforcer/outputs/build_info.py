"""What this installation runs: the package's version, the Python it runs on, and
whether its decision core is the compiled one (docs/decisions.md, "The compiled
decision core").

A build made with ``ENFORCER_COMPILE=0``, or a checkout whose extensions were removed,
runs the same decision as plain Python, a third slower or more. Nothing else would show
it: ``enforcer --version`` and the ``enforcer_build_info`` metric say which one runs.
"""

from __future__ import annotations

import platform
from importlib.machinery import EXTENSION_SUFFIXES
from typing import Literal

from enforcer import __version__

CoreBuild = Literal["compiled", "plain"]


def core_build() -> CoreBuild:
    """``compiled`` when the decision step was imported from its C extension (the
    build compiles the core's modules together, or none of them), else ``plain``."""
    from enforcer.core import step

    origin = getattr(step, "__file__", None) or ""
    return "compiled" if origin.endswith(tuple(EXTENSION_SUFFIXES)) else "plain"


def build_labels() -> tuple[str, str, str]:
    """The ``enforcer_build_info`` labels: version, Python version, core build."""
    return __version__, platform.python_version(), core_build()


def version_line() -> str:
    """What ``enforcer --version`` prints."""
    version, python, core = build_labels()
    return f"enforcer {version} (decision core: {core}; Python {python})"
