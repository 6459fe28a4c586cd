"""scripts/compiled_core.py: whether a checkout's extensions match its build mode (the
tests refuse to run, and scripts/setup.sh rebuilds, on its answer). Small checkouts
stand in, with extension files of chosen times, so these run without a compiler."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

from ..conftest import load_compiled_core

SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


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
    script = load_compiled_core()
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
    script = load_compiled_core()
    a, _ = _tree(tmp_path)
    assert script.stale(tmp_path) == [a]  # left by a compiled build: it would be imported
    assert script.remove_extensions(tmp_path) == [tmp_path / "pkg" / f"a{SUFFIX}"]
    assert script.stale(tmp_path) == []


def test_the_project_lists_only_existing_sources() -> None:
    sources = load_compiled_core().compiled_sources()
    assert sources and all(source.is_file() and source.suffix == ".py" for source in sources)


def _at(path: Path, seconds: int) -> Path:
    os.utime(path, (seconds, seconds))
    return path


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """``enforcer/core/step.py`` compiled (extension built at time 2000); it imports the
    plain ``enforcer.core.models``, which imports nothing of the package; the unrelated
    ``enforcer/cli.py``. Every source is older than the extension."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.enforcer]\ncompiled = ["enforcer/core/step.py"]\n'
    )
    core = tmp_path / "enforcer" / "core"
    core.mkdir(parents=True)
    sources = {
        tmp_path / "setup.py": "",
        tmp_path / "enforcer" / "__init__.py": "",
        core / "__init__.py": "",
        core / "step.py": "from enforcer.core.models import Event\nimport orjson\n",
        core / "models.py": "from typing import NamedTuple\n",
        tmp_path / "enforcer" / "cli.py": "from enforcer.core import step\n",
    }
    for path, text in sources.items():
        path.write_text(text)
        _at(path, 1000)
    (core / f"step{SUFFIX}").write_bytes(b"")
    _at(core / f"step{SUFFIX}", 2000)
    return tmp_path


def test_current_when_the_extension_is_newer_than_everything_it_is_built_from(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENFORCER_COMPILE", raising=False)
    assert load_compiled_core().stale(checkout) == []


def test_stale_when_a_plain_module_the_core_imports_changed(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mypyc compiles the imported module's types in (a named tuple's field is read by
    its position): the extension of a core whose models changed is stale."""
    monkeypatch.delenv("ENFORCER_COMPILE", raising=False)
    _at(checkout / "enforcer" / "core" / "models.py", 3000)
    assert load_compiled_core().stale(checkout) == [checkout / "enforcer" / "core" / "step.py"]


def test_stale_when_the_source_or_setup_changed_or_the_extension_is_missing(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENFORCER_COMPILE", raising=False)
    script = load_compiled_core()
    step = checkout / "enforcer" / "core" / "step.py"
    _at(step, 3000)
    assert script.stale(checkout) == [step]
    _at(step, 1000)
    _at(checkout / "setup.py", 3000)
    assert script.stale(checkout) == [step]
    _at(checkout / "setup.py", 1000)
    (checkout / "enforcer" / "core" / f"step{SUFFIX}").unlink()
    assert script.stale(checkout) == [step]


def test_a_module_that_does_not_reach_the_core_is_not_what_it_is_built_from(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENFORCER_COMPILE", raising=False)
    _at(checkout / "enforcer" / "cli.py", 3000)
    script = load_compiled_core()
    assert script.stale(checkout) == []
    assert checkout / "enforcer" / "cli.py" not in script.built_from(checkout)
