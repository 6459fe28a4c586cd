"""The built-in Fides vocabulary is fideslang's default data-use taxonomy, key for key.

``enforcer/core/policy/fides_data_uses.json`` is generated from fideslang (a test
dependency, pinned in pyproject.toml). When fideslang is upgraded and its data uses
change, the first test fails; regenerate the file with

    .venv/bin/python -m tests.unit.test_vocabulary

and mention the change in docs/changelog.md: the default policy names the fideslang
version, so its bytes and its version change with it.
"""

from __future__ import annotations

from importlib import resources
from importlib.metadata import version
from pathlib import Path

import orjson

from enforcer.core.policy.load import default_policy_bytes
from enforcer.core.policy.vocabulary import FIDES, builtin_vocabulary

DATA_FILE = "fides_data_uses.json"


def fides_data_file() -> bytes:
    """The data file as generated from the installed fideslang."""
    from fideslang.default_taxonomy import DEFAULT_TAXONOMY

    uses = [{"key": use.fides_key, "name": use.name} for use in DEFAULT_TAXONOMY.data_use]
    document = {"source": f"fideslang {version('fideslang')}", "data_uses": uses}
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


def test_the_shipped_data_file_is_generated_from_fideslang() -> None:
    """A hand edit, or a fideslang upgrade that changes data uses, fails here."""
    shipped = resources.files("enforcer.core.policy").joinpath(DATA_FILE).read_bytes()
    assert shipped == fides_data_file(), (
        "enforcer/core/policy/fides_data_uses.json differs from fideslang's taxonomy; "
        "regenerate it: .venv/bin/python -m tests.unit.test_vocabulary"
    )


def test_the_fides_vocabulary_has_every_data_use_with_its_parents() -> None:
    """56 data uses, hierarchical: every key's parent is a key too."""
    fides = builtin_vocabulary(FIDES)
    assert len(fides.keys) == 56
    assert "essential.service.notifications.sms" in fides.keys
    assert fides.titles["marketing.advertising"] == "Advertising, Marketing or Promotion"
    for key in fides.keys:
        if "." in key:
            assert key.rsplit(".", 1)[0] in fides.keys, key


def test_the_default_policy_names_the_fideslang_version_it_was_built_from() -> None:
    """The policy version is the hash of the default's bytes, so a new taxonomy must
    change those bytes: the default states the source of its vocabulary."""
    assert builtin_vocabulary(FIDES).source.encode() in default_policy_bytes()


if __name__ == "__main__":
    target = Path(__file__).resolve().parents[3] / "enforcer" / "core" / "policy" / DATA_FILE
    target.write_bytes(fides_data_file())
    print(f"wrote {target}")
