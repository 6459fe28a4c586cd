"""scripts/compiled_core.py: whether a checkout's extensions match its build mode."""

from __future__ import annotations

import importlib.util
import os
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "compiled_core", ROOT / "scripts" / "compiled_core.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(root: Path) -> tuple[Path, Path]:
    """A checkout of two compiled sources: the first built, the second never."""
    (root / "pyproject.toml").write_text('[tool.enforcer]\ncompiled = ["pkg/a.py", "pkg/b.py"]\n')
    (root / "setup.py").write_text("")
    (root / "pkg").mkdir()
    for name in ("a.py", "b.py"):
        (root / "pkg" / name).write_text("")
    built = root / "pkg" / f"a{SUFFIX}"
    built.write_bytes(b"")
    past = built.stat().st_mtime - 10
    for path in (root / "setup.py", root / "pkg" / "a.py", root / "pkg" / "b.py"):
        os.utime(path, (past, past))
    return root / "pkg" / "a.py", root / "pkg" / "b.py"


def test_a_missing_or_older_extension_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENFORCER_COMPILE", raising=False)
    script = _script()
    a, b = _tree(tmp_path)
    assert script.stale(tmp_path) == [b]
    os.utime(a)  # edited after the build
    assert script.stale(tmp_path) == [a, b]
    os.utime(a, (0, 0))
    os.utime(tmp_path / "setup.py")  # the build changed
    assert script.stale(tmp_path) == [a, b]


def test_a_plain_build_wants_no_extension_and_removes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENFORCER_COMPILE", "0")
    script = _script()
    a, _ = _tree(tmp_path)
    assert script.stale(tmp_path) == [a]  # left by a compiled build: it would be imported
    assert script.remove_extensions(tmp_path) == [tmp_path / "pkg" / f"a{SUFFIX}"]
    assert script.stale(tmp_path) == []


def test_the_project_lists_only_existing_sources() -> None:
    sources = _script().compiled_sources()
    assert sources and all(source.is_file() and source.suffix == ".py" for source in sources)
