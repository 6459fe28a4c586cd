"""Built-in purpose vocabularies a policy's taxonomy can include by name.

``fides``: every data-use key of the Fides taxonomy, as fideslang's default taxonomy
defines it, kept in ``fides_data_uses.json`` next to this module. That file is
generated from fideslang; a unit test fails when the two differ (see
docs/decisions.md for why the data is generated rather than imported at run time).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

import orjson

VocabularyName = Literal["fides"]
FIDES: VocabularyName = "fides"
_FILES: dict[str, str] = {FIDES: "fides_data_uses.json"}


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """A closed list of purpose keys: a tag is in it only when it is one of them."""

    name: str
    source: str
    """Where the keys come from, with its version (``fideslang 3.1.4``)."""
    titles: dict[str, str]
    """Every key, in the source's order, with its human-readable name."""

    @property
    def keys(self) -> frozenset[str]:
        """The keys, for membership tests."""
        return frozenset(self.titles)


@cache
def builtin_vocabulary(name: VocabularyName) -> Vocabulary:
    """The built-in vocabulary ``name``, read once from the package's data."""
    data = orjson.loads(resources.files("enforcer.core.policy").joinpath(_FILES[name]).read_bytes())
    titles = {use["key"]: use["name"] for use in data["data_uses"]}
    return Vocabulary(name, data["source"], titles)
