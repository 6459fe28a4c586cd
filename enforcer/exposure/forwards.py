"""From the decision's outcome to what exposure records: one :class:`Forward` per
identifier that reached the sink.

A step built with ``exposure=True`` lists, on every forwarded outcome, the identifiers
its forwarded value holds (:attr:`enforcer.core.step.Outcome.forwarded_identifiers`:
type, the fingerprint's bytes, the purposes it was judged by and whether they were the
ledger's). This adds what the outcome does not know: the sink topic it goes to, the
policy version in force and the fingerprint key's id (docs/exposure.md, "What the
decision hands exposure").
"""

from __future__ import annotations

from enforcer.core.fingerprint import FINGERPRINT_PREFIX
from enforcer.core.step import Outcome
from enforcer.exposure.model import Forward


class ExposureNotTrackedError(ValueError):
    """A forwarded outcome of a step built without ``exposure=True``."""


def forwards(outcome: Outcome, sink_topic: str, policy_version: str, key_id: str) -> list[Forward]:
    """The identifiers of ``outcome`` that reached ``sink_topic``, in record order.

    None for a record that was not forwarded (dropped, dead-lettered), nor for one audit
    mode forwards unread (enforce mode would have dead-lettered it: its identifiers
    were never judged). Raises :class:`ExposureNotTrackedError` for a forwarded outcome whose
    step did not list its identifiers: recording nothing there would silently lose
    exposure."""
    if not outcome.forwarded:
        return []
    found = outcome.forwarded_identifiers
    if found is None:
        raise ExposureNotTrackedError("the step was built without exposure=True")
    # Every field given, so tuple.__new__: a NamedTuple's own __new__ is Python code.
    return [
        _new_forward(
            Forward,
            (
                sink_topic,
                kind,
                FINGERPRINT_PREFIX + mac.hex(),
                key_id,
                purposes,
                by_ledger,
                policy_version,
            ),
        )
        for kind, mac, purposes, by_ledger in found
    ]


_new_forward = tuple.__new__
