"""A worker during a key rotation against a model of what it exposed (docs/exposure.md,
"Key rotation"): random forwards under the new key, ledger updates, erasures, commits
and aborted transactions. Each identifier stays exposed under exactly one key (the old
one until it is forwarded again, then the new one), and every ledger retraction names
exactly the identifiers exposed and no longer granted, each once, under the key and
fingerprint it is exposed under; an abort puts back what the last commit left."""

from __future__ import annotations

from typing import cast

from confluent_kafka import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.policy.load import load_policy
from enforcer.core.step import Step
from enforcer.live.exposure import LiveExposure
from enforcer.testing.ledger import ledger_value

from .test_exposure_rekey import (
    ADS,
    AT_AFTER,
    BEFORE,
    EMAIL,
    MFA,
    NEW,
    OLD,
    PHONE,
    decided,
    retractions,
    rotated_worker,
)
from .test_ledger import FakeMessage

Identifier = tuple[str, str]
IDENTIFIERS: list[Identifier] = [("email", EMAIL), ("phone", PHONE), ("email", "bob@example.org")]
KEYS = {"old": OLD, "new": NEW}

FORWARD = st.tuples(
    st.just("forward"), st.lists(st.sampled_from(IDENTIFIERS), min_size=1, max_size=3, unique=True)
)
UPDATE = st.tuples(
    st.just("update"),
    st.lists(
        st.tuples(st.sampled_from(IDENTIFIERS), st.sampled_from([ADS, MFA])),
        max_size=3,
        unique_by=lambda granted: granted[0],
    ),
)
OTHER = st.tuples(st.sampled_from(["erase", "commit", "abort"]), st.none())
ACTIONS = st.lists(st.one_of(FORWARD, UPDATE, OTHER), max_size=12)


def held(exposure: LiveExposure) -> list[tuple[str, str, str]]:
    """s1's entries as (type, fingerprint, key id), sorted."""
    entries = exposure._state.exposure(0, "s1").entries
    return sorted((e.identifier_type, e.fingerprint, e.key_id) for e in entries)


def expected(model: dict[Identifier, str], which: list[Identifier]) -> list[tuple[str, str, str]]:
    """``which`` as the model exposes them: (type, fingerprint, key id), sorted."""
    found = []
    for kind, value in which:
        key: Fingerprinter = KEYS[model[(kind, value)]]
        found.append((kind, key(kind, value), key.key_id))
    return sorted(found)


@settings(max_examples=200, deadline=None)
@given(actions=ACTIONS)
def test_retractions_and_entries_follow_the_rotation(
    actions: list[tuple[str, object]],
) -> None:
    ledger, exposure = rotated_worker(previous=OLD)
    step = Step(
        load_policy(None), NEW, FixedClock(BEFORE), exposure=True, previous_fingerprinter=OLD
    )
    model: dict[Identifier, str] = {("email", EMAIL): "old"}  # what rotated_worker holds
    committed = dict(model)
    offset = 1
    for action, argument in actions:
        if action == "forward":
            forwarded = cast(list[Identifier], argument)
            exposure.forwarded(decided(step, forwarded), AT_AFTER)
            model.update(dict.fromkeys(forwarded, "new"))
        elif action in ("update", "erase"):
            grants = cast(list[tuple[Identifier, tuple[str, ...]]], argument or [])
            value = (
                None
                if action == "erase"
                else ledger_value("s1", AT_AFTER, [(k, v, p) for (k, v), p in grants])
            )
            read = ledger.read(cast(Message, FakeMessage(0, offset, "s1", value)))
            offset += 1
            assert read is not None
            granted = dict(grants)
            gone = [i for i in model if granted.get(i) != ADS]
            got = sorted(
                (r["identifier_type"], r["fingerprint"], r["key_id"])
                for r in retractions(read.outputs)
            )
            assert got == expected(model, gone)
            for identifier in gone:
                del model[identifier]
        elif action == "commit":
            exposure.pending_writes()
            exposure.committed()
            ledger.committed({})
            committed = dict(model)
        else:
            exposure.rolled_back()
            ledger.rolled_back()
            model = dict(committed)
        assert held(exposure) == expected(model, list(model))
