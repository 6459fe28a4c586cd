"""The one-pass decision for plain JSON events in the ``identifiers[]`` shape.

Most records are plain, valid identity events whose identifiers repeat a small set
of (type, purposes) pairs. For those, :class:`OnePass` parses, checks, judges and
writes in one pass over the parsed object, and builds only what is output: a passed
record needs no event model, no per-identifier judgement list kept beyond the
record, no redacted copy. Everything it cannot vouch for in that pass (anything
malformed or unusual, a purpose tag seen for the first time that the policy
rejects, audit mode's findings, an integer too long for the fast parser) it hands
back as ``None``, and :class:`enforcer.core.step.Step` decides the record on the
reference path (:func:`enforcer.core.parse.parse_event` and
:func:`enforcer.core.policy.evaluate.decide`). The two paths give equal outcomes; a
property test holds them to that (tests/unit/core/test_one_pass.py).

This is the JSON side of the line every format draws: a format hands the decision
its identifiers and re-encodes what is kept. For plain JSON the hand-over and the
re-encoding are the parsed object itself, so they happen in this one pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from enforcer.core.ledger_view import LedgerLookup, LedgerMode
from enforcer.core.memo import small_enough
from enforcer.core.models import Action, Mode
from enforcer.core.parse import (
    may_repeat_a_judged_field,
    plain_event_fields,
    plain_type_and_tags,
)
from enforcer.core.policy.evaluate import Judgement, judge, judge_by_ledger

if TYPE_CHECKING:
    from enforcer.core.step import InputRecord, Outcome, Step

_MEMO_LIMIT = 65_536
_MemoKey = tuple[Any, tuple[Any, ...] | None]
"""(raw type, raw purposes) as read: only pairs the checks passed are ever stored."""


class OnePass:
    """The fast path of one :class:`~enforcer.core.step.Step` (see the module text)."""

    __slots__ = (
        "_by_ledger",
        "_drop_action",
        "_enforce",
        "_exposure",
        "_ledger",
        "_memo",
        "_step",
    )

    def __init__(self, step: Step, ledger: LedgerLookup | None) -> None:
        self._step = step
        self._ledger = ledger
        self._by_ledger = ledger is not None and step.ledger_mode is not LedgerMode.OFF
        self._enforce = step.policy.mode is Mode.ENFORCE
        self._exposure = step.exposure
        self._drop_action = Action.DROP
        # (raw type, raw purposes) → its judgement, for pairs that passed every check
        # of the reference parser once; a hit therefore vouches for the pair.
        self._memo: dict[_MemoKey, Judgement] = {}

    def __call__(  # noqa: PLR0911
        self, record: InputRecord, judged: list[Judgement] | None = None
    ) -> Outcome | None:
        """The record's outcome, or ``None`` for the reference path to decide; each
        identifier's judgement is added to ``judged`` when one is given."""
        if judged is None:
            judged = []
        read = self._judge(record, judged)
        if read is None:
            return None
        value, document, event_id, subject_id, occurred_at, items, stopped, drop = read
        step = self._step
        if not stopped:
            if self._exposure:
                texts = [item["value"] for item in items]
                every = step.forwarded_of(judged, texts, everything=True)
                return step.passed(record, value, subject_id, occurred_at, every)
            return step.passed(record, value, subject_id, occurred_at)
        if not self._enforce:
            return None  # audit mode's findings: the reference path reports them
        values = [item["value"] for item in items]
        if drop or stopped == len(items):
            return step.dropped(record, event_id, subject_id, occurred_at, judged, values)
        kept = [item for item, j in zip(items, judged, strict=True) if j.rule is None]
        redacted = step.redacted_json(value, document, kept)
        if redacted is None:
            return None
        forwarded = step.forwarded_of(judged, values, everything=False) if self._exposure else None
        return step.redacted(
            record, redacted, event_id, subject_id, occurred_at, judged, values, forwarded
        )

    def judgements(self, record: InputRecord) -> tuple[str, list[Judgement], list[str]] | None:
        """The record's subject id, each identifier's judgement and each identifier's
        value, in record order, without deciding what is output; ``None`` for the
        reference path to judge."""
        judged: list[Judgement] = []
        read = self._judge(record, judged)
        if read is None:
            return None
        return read[3], judged, [item["value"] for item in read[5]]

    def _judge(  # noqa: PLR0911, PLR0912
        self, record: InputRecord, judged: list[Judgement]
    ) -> tuple[bytes, Any, Any, str, str, list[Any], int, bool] | None:
        """Parse and check the record and judge each identifier into ``judged``:
        ``(value, document, event_id, subject_id, occurred_at, items, stopped,
        drop)``, where ``stopped`` counts the identifiers a rule stops and ``drop``
        says whether one of those rules drops the record; ``None`` for the reference
        path."""
        value = record.value
        if value is None:
            return None
        try:
            document = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        fields = plain_event_fields(document)
        if fields is None:
            return None
        event_id, subject_id, occurred_at, items = fields
        memo = self._memo
        stopped = 0
        with_purposes = 0
        drop = False
        granted = self._granted(record, subject_id) if self._by_ledger else None
        for item in items:
            if type(item) is not dict:
                return None
            kind, text, purposes = item.get("type"), item.get("value"), item.get("purposes")
            if type(text) is not str or not text:
                return None
            if purposes is None:
                key: _MemoKey = (kind, None)
            elif type(purposes) is list:
                key = (kind, tuple(purposes))  # a non-hashable tag raises: reference path
                with_purposes += 1
            else:
                return None
            found = memo.get(key)
            if found is None:
                found = self._learn(key, kind, purposes)
                if found is None:
                    return None
            if granted is not None:
                found = granted(found, text)
            rule = found.rule
            if rule is not None:
                stopped += 1
                if rule.action is self._drop_action:
                    drop = True
            judged.append(found)
        # A judged field that may be written twice, or with escapes: the exact check
        # (on the reference path) decides.
        if may_repeat_a_judged_field(value, len(items), with_purposes, self._step.types_judged):
            return None
        return value, document, event_id, subject_id, occurred_at, items, stopped, drop

    def _learn(self, key: _MemoKey, kind: Any, purposes: Any) -> Judgement | None:
        """Judge a pair met for the first time, if the reference parser would take it
        as it is (a type that needs no trimming, purposes all strings)."""
        if not plain_type_and_tags(kind, purposes):
            return None
        found = judge(self._step.policy, kind, purposes)
        if not isinstance(found, Judgement):
            return None  # a rejected tag: the reference path writes the dead letter
        if purposes is None or small_enough(purposes):
            memo = self._memo
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            memo[key] = found
        return found

    def _granted(
        self, record: InputRecord, subject_id: str
    ) -> Callable[[Judgement, str], Judgement]:
        """Re-judges an identifier under the ledger setting (docs/ledger.md)."""
        ledger = self._ledger
        assert ledger is not None
        step = self._step
        policy, mode = step.policy, step.ledger_mode
        grants = ledger.subject(record.source.partition, subject_id)
        if grants is None:
            # The ledger knows nothing of the subject, so none of its identifiers: no
            # fingerprint is needed to say so.
            def unknown(claimed: Judgement, _value: str) -> Judgement:
                return judge_by_ledger(policy, mode, claimed, None)

            return unknown
        mac_of = step.fingerprinter.mac

        def by_ledger(claimed: Judgement, value: str) -> Judgement:
            kind = claimed.type
            return judge_by_ledger(policy, mode, claimed, grants(kind, mac_of(kind, value)))

        return by_ledger
