"""Why a registered schema cannot be read (docs/formats.md, "The schema registry")."""

from __future__ import annotations


class UnusableSchemaError(Exception):
    """A registered schema the enforcer cannot build a codec from: text that does not
    parse, a form it does not read (Protobuf ``.proto`` source), a reference the
    registry does not have. ``str()`` is one line naming the schema and the cause."""
