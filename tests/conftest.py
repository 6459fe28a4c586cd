"""Test-suite wide hooks: every test is marked by the folder it lives in.

``tests/unit`` holds pure tests (marker ``unit``); ``tests/integration`` holds tests that
need a real Kafka broker (marker ``integration``), so ``pytest -m unit`` runs without Java.
Hypothesis runs without per-example deadlines.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# No per-example deadline: it is a timed assertion, and on a loaded machine (CI, or
# several suites at once) a slow example is not a wrong one. Speed lives in the
# benchmarks.
settings.register_profile("enforcer", deadline=None)
settings.load_profile("enforcer")

TESTS_DIR = Path(__file__).resolve().parent
MARKER_BY_FOLDER = {"unit": pytest.mark.unit, "integration": pytest.mark.integration}


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
