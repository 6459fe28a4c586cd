"""Whether the compiled decision core (setup.py) is current in this checkout.

Prints each module of ``[tool.enforcer] compiled`` (pyproject.toml) whose C extension
for this interpreter is missing or older than its source, one per line, and exits 1 when
there is one (0 when all are current, or when ``ENFORCER_COMPILE=0`` asks for none).
scripts/setup.sh rebuilds on 1; the tests' conftest asks the same question.

    python scripts/compiled_core.py
"""

from __future__ import annotations

import os
import sys
import sysconfig
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compiled_sources(root: Path = ROOT) -> list[Path]:
    """The sources pyproject.toml lists for compiling."""
    project = tomllib.loads((root / "pyproject.toml").read_text())
    return [root / source for source in project["tool"]["enforcer"]["compiled"]]


def stale(root: Path = ROOT) -> list[Path]:
    """Listed sources whose extension for this interpreter is missing or older than the
    source or than setup.py (how it is built)."""
    if os.environ.get("ENFORCER_COMPILE", "1") == "0":
        return []
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    built_by = (root / "setup.py").stat().st_mtime
    found = []
    for source in compiled_sources(root):
        extension = source.with_name(source.stem + suffix)
        newest = max(source.stat().st_mtime, built_by)
        if not extension.exists() or extension.stat().st_mtime < newest:
            found.append(source)
    return found


def main() -> int:
    """Print the stale sources; 1 when there is one."""
    paths = stale()
    for path in paths:
        print(path.relative_to(ROOT))
    return 1 if paths else 0


if __name__ == "__main__":
    sys.exit(main())
