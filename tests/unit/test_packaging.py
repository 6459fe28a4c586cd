"""Supported Pythons: pyproject's range, its classifiers and the version script agree."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUPPORTED = ["3.11", "3.12", "3.13"]


def test_requires_python_and_classifiers_name_the_same_versions() -> None:
    """>=3.11,<3.14, and one classifier per minor version in that range."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11,<3.14"
    minors = [
        c.rsplit(" :: ", 1)[1]
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert minors == SUPPORTED
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in SUPPORTED


def test_the_version_script_tries_every_supported_version() -> None:
    """scripts/test-python-versions.sh defaults to the same list and installs via pyproject."""
    script = (ROOT / "scripts" / "test-python-versions.sh").read_text()
    assert f'PYTHON_VERSIONS:-"{" ".join(SUPPORTED)}"' in script
    assert "-e '.[dev]'" in script and "tests/unit" in script
