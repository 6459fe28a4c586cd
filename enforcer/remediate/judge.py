"""Each identifier of a forwarded record, judged again by the decision step: its type,
its fingerprint's bytes and the rule the policy stops it by (``None``: it may flow).

One decision core (docs/architecture.md): the judging is :class:`enforcer.core.step.Step`,
built with ``exposure=True`` so that a forwarded outcome lists the identifiers its value
holds (:attr:`~enforcer.core.step.Outcome.forwarded_identifiers`), and asked through
:meth:`~enforcer.core.step.Step.explain` for the judgement behind each. The step runs
the policy's rules in enforce mode whatever mode the policy names: the mode changes
what is done with a record, never how an identifier is judged, and enforce mode is the
cheaper of the two on records with findings.

- passed: every identifier is listed, none stopped;
- redacted: the identifiers kept are listed, and the violation's findings give the
  fingerprints of the ones stopped (``identifier_index``);
- dropped (a rule whose action drops the record): the identifiers the rule did not stop
  are nowhere in the outcome, so the record is asked again of the same step in audit
  mode, which lists every identifier of the value;
- dead-lettered: the record cannot be read, its identifiers are unknown (``None``).
"""

from __future__ import annotations

from typing import Any

from enforcer.core.clock import Clock
from enforcer.core.fingerprint import Fingerprinter, mac_of_fingerprint
from enforcer.core.ledger_view import LedgerLookup, LedgerMode
from enforcer.core.models import Mode
from enforcer.core.policy.compiled import Policy
from enforcer.core.record_format import RecordReader
from enforcer.core.step import InputRecord, OutcomeKind, Step

JudgedIdentifier = tuple[str, bytes, str | None, tuple[str, ...], bool]
"""(type, fingerprint MAC, rule name or ``None``, the purposes it was judged by, whether
they were the ledger's)."""
Judged = tuple[str, list[JudgedIdentifier]]
"""A record's subject id, and each of its identifiers as judged, in record order."""


class Judge:
    """The decision step, asked what it makes of each identifier of a forwarded record."""

    def __init__(
        self,
        policy: Policy,
        fingerprinter: Fingerprinter,
        clock: Clock,
        ledger: LedgerLookup | None = None,
        reader: RecordReader | None = None,
    ) -> None:
        self.step = Step(
            policy.with_mode(Mode.ENFORCE), fingerprinter, clock, ledger, reader, exposure=True
        )
        self._every_identifier = Step(
            policy.with_mode(Mode.AUDIT), fingerprinter, clock, ledger, reader, exposure=True
        )

    @property
    def policy_version(self) -> str:
        """The version of the policy judged by."""
        return self.step.policy.version

    @property
    def key_id(self) -> str:
        """The fingerprint key's id."""
        return self.step.key_id

    @property
    def ledger_mode(self) -> LedgerMode:
        """The ledger setting in effect."""
        return self.step.ledger_mode

    def __call__(self, record: InputRecord) -> Judged | None:
        """The record's subject and its identifiers as judged; ``None`` when the decision
        cannot read it."""
        outcome, decision = self.step.explain(record)
        subject = outcome.subject_id
        if decision is None or subject is None:
            return None
        listed = outcome.forwarded_identifiers
        judged = decision.identifiers
        kind = outcome.kind
        if kind is OutcomeKind.PASSED and listed is not None and len(listed) == len(judged):
            return subject, [(f.type, f.mac, None, f.purposes, f.by_ledger) for f in listed]
        if kind is OutcomeKind.REDACTED and listed is not None and outcome.violation:
            return subject, _redacted(outcome.violation, listed, judged)
        if kind is OutcomeKind.DROPPED:
            return self._all_listed(record)
        return None

    def _all_listed(self, record: InputRecord) -> Judged | None:
        outcome, decision = self._every_identifier.explain(record)
        listed = outcome.forwarded_identifiers
        subject = outcome.subject_id
        if (
            outcome.error_reason is not None
            or listed is None
            or decision is None
            or subject is None
            or len(decision.identifiers) != len(listed)
        ):
            return None
        return subject, [
            (f.type, f.mac, j.rule_name, f.purposes, f.by_ledger)
            for f, j in zip(listed, decision.identifiers, strict=True)
        ]


def _redacted(
    violation: dict[str, Any], listed: tuple[Any, ...], judged: tuple[Any, ...]
) -> list[JudgedIdentifier]:
    """A redacted record's identifiers: the kept ones as listed, in order; the stopped
    ones by their finding's fingerprint."""
    stopped = {f["identifier_index"]: f["fingerprint"] for f in violation["findings"]}
    kept = iter(listed)
    out: list[JudgedIdentifier] = []
    for index, j in enumerate(judged):
        if j.rule is None:
            f = next(kept)
            out.append((f.type, f.mac, None, f.purposes, f.by_ledger))
        else:
            mac = mac_of_fingerprint(stopped[index])
            out.append((j.type, mac, j.rule_name, j.purposes, j.from_ledger))
    return out
