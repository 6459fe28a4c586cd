"""Test-suite wide hooks: every test is marked by the folder it lives in.

``tests/unit`` holds pure tests (marker ``unit``); ``tests/integration`` holds tests that
need a real Kafka broker (marker ``integration``), so ``pytest -m unit`` runs without Java.
Hypothesis runs without per-example deadlines.
"""

from __future__ import annotations

import importlib.util
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import settings

# No per-example deadline: it is a timed assertion, and on a loaded machine (CI, or
# several suites at once) a slow example is not a wrong one. Speed lives in the
# benchmarks.
settings.register_profile("enforcer", deadline=None)
settings.load_profile("enforcer")
# ``pytest --hypothesis-profile=thorough``: many more examples, for a change that may
# only show on rare inputs (a new build of the compiled core, say).
settings.register_profile("thorough", deadline=None, max_examples=1000)

TESTS_DIR = Path(__file__).resolve().parent
MARKER_BY_FOLDER = {"unit": pytest.mark.unit, "integration": pytest.mark.integration}


def load_compiled_core() -> ModuleType:
    """scripts/compiled_core.py (a script, not a module of the package), loaded afresh."""
    spec = importlib.util.spec_from_file_location(
        "compiled_core", TESTS_DIR.parent / "scripts" / "compiled_core.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test a compiled decision core older than its sources (setup.py), plain
    Python where the build compiles, or leftover extensions where it does not
    (``ENFORCER_COMPILE=0``): the tests must run what the build makes."""
    compiled_core = load_compiled_core()
    plain = compiled_core.plain_requested()
    stale = compiled_core.stale()
    if stale:
        problem = "is left from a compiled build" if plain else "is missing or out of date"
        pytest.exit(
            f"the extension of {stale[0]} {problem}: run bash scripts/setup.sh with the "
            "same ENFORCER_COMPILE",
            returncode=2,
        )
    import enforcer.core.step

    loaded = str(enforcer.core.step.__file__)
    if loaded.endswith(sysconfig.get_config_var("EXT_SUFFIX")) == plain:
        pytest.exit(
            f"enforcer.core.step was imported from {loaded}, which is not what this build "
            f"makes (ENFORCER_COMPILE={'0' if plain else '1'})",
            returncode=2,
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add the ``unit`` or ``integration`` marker from the test's top folder under tests/."""
    for item in items:
        try:
            folder = item.path.resolve().relative_to(TESTS_DIR).parts[0]
        except ValueError:
            continue
        marker = MARKER_BY_FOLDER.get(folder)
        if marker is not None:
            item.add_marker(marker)
