"""Build of the package: pyproject.toml says everything but one thing, the compiled
decision core.

The modules listed under ``[tool.enforcer] compiled`` in pyproject.toml are compiled to
C extensions with mypyc (part of mypy, which type-checks them strictly already): the
same source, the same behaviour, less CPU a record (docs/decisions.md, "The compiled
decision core"). The ``.py`` files stay in the package, and Python imports an extension
before its source, so the extension is what runs. ``ENFORCER_COMPILE=0`` builds the
package as plain Python (no C compiler needed).

In an editable install (``pip install -e .``, as scripts/setup.sh does) the extensions
are written next to their sources: scripts/setup.sh builds them again when a source is
newer (scripts/compiled_core.py), and the tests refuse to run on stale ones.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from setuptools import setup


def _extensions() -> list[object]:
    if os.environ.get("ENFORCER_COMPILE", "1") == "0":
        return []
    from mypyc.build import mypycify

    project = tomllib.loads((Path(__file__).parent / "pyproject.toml").read_text())
    sources = project["tool"]["enforcer"]["compiled"]
    # The same extensions whatever the target environment holds: mypy reads no library
    # installed there (it would look in the virtualenv being installed into, whose
    # contents vary), so every library the core imports is untyped here, and no cache a
    # checkout's own mypy runs left is read. The strict check of the same code, with every
    # library present, is scripts/test.sh's.
    flags = [
        "--no-site-packages",
        "--ignore-missing-imports",
        "--disable-error-code=import-untyped",
        "--no-warn-return-any",
        "--allow-subclassing-any",
        "--allow-untyped-calls",
        "--allow-untyped-decorators",
        "--no-warn-unused-ignores",
        "--cache-dir=/dev/null",
    ]
    return list(mypycify([*flags, *sources], opt_level="3", group_name="enforcer_core"))


setup(ext_modules=_extensions())
