"""Whether this checkout's compiled decision core (setup.py) matches its build mode.

Compiled (the default): prints each module of ``[tool.enforcer] compiled``
(pyproject.toml) whose C extension for this interpreter is missing or older than what it
is built from, one per line, and exits 1 when there is one; scripts/setup.sh then builds
them again. What an extension is built from: the listed sources, every module of the
package they import, transitively (mypyc compiles their types in: a named tuple's field
is read by its position, a value is checked against its declared type), and setup.py.

Plain Python (``ENFORCER_COMPILE=0``): an extension left in the tree by an earlier build
would still be imported before its source, so ``--plain`` removes this interpreter's
(scripts/setup.sh runs it in that mode), and the check prints and exits 1 on any that
remain. The tests' conftest asks the same question.

    python scripts/compiled_core.py [--plain]
"""

from __future__ import annotations

import ast
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


def plain_requested() -> bool:
    """Whether the build is asked for plain Python (``ENFORCER_COMPILE=0``)."""
    return os.environ.get("ENFORCER_COMPILE", "1") == "0"


def extension_of(source: Path) -> Path:
    """Where this interpreter's extension of ``source`` lives in an editable tree."""
    return source.with_name(source.stem + sysconfig.get_config_var("EXT_SUFFIX"))


def built_from(root: Path = ROOT) -> list[Path]:
    """Every source the extensions are built from: the listed sources and, transitively,
    each module (and package ``__init__``) of the ``enforcer`` package they import."""
    found: set[Path] = set()
    todo = compiled_sources(root)
    while todo:
        source = todo.pop()
        if source in found:
            continue
        found.add(source)
        for name in _imported(source):
            parts = name.split(".")
            for end in range(1, len(parts) + 1):
                module = _module_file(root, parts[:end])
                if module is not None and module not in found:
                    todo.append(module)
    return sorted(found)


def _imported(source: Path) -> list[str]:
    """The ``enforcer`` modules ``source`` imports (a name imported from a module may be
    a submodule: both are listed)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return [name for name in names if name.split(".")[0] == "enforcer"]


def _module_file(root: Path, parts: list[str]) -> Path | None:
    """The file of module ``parts`` in the checkout (a module or a package), if any."""
    path = root.joinpath(*parts)
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def stale(root: Path = ROOT) -> list[Path]:
    """The listed sources that do not match the build mode: compiled, those whose
    extension is missing or older than a source it is built from (:func:`built_from`)
    or than setup.py (how it is built); plain, those whose extension is present."""
    sources = compiled_sources(root)
    if plain_requested():
        return [source for source in sources if extension_of(source).exists()]
    newest = max(path.stat().st_mtime for path in [root / "setup.py", *built_from(root)])
    found = []
    for source in sources:
        extension = extension_of(source)
        if not extension.exists() or extension.stat().st_mtime < newest:
            found.append(source)
    return found


def remove_extensions(root: Path = ROOT) -> list[Path]:
    """Remove this interpreter's extensions of the listed sources; the ones removed."""
    removed = []
    for source in compiled_sources(root):
        extension = extension_of(source)
        if extension.exists():
            extension.unlink()
            removed.append(extension)
    return removed


def main() -> int:
    """Print what does not match the build mode; 1 when something does not."""
    if sys.argv[1:] == ["--plain"]:
        for path in remove_extensions():
            print(f"removed {path.relative_to(ROOT)}")
        return 0
    if sys.argv[1:]:
        print("usage: python scripts/compiled_core.py [--plain]", file=sys.stderr)
        return 2
    paths = stale()
    for path in paths:
        print(path.relative_to(ROOT))
    return 1 if paths else 0


if __name__ == "__main__":
    sys.exit(main())
