"""Each identifier of a forwarded record, judged again by the decision step: its type,
its fingerprint's bytes and the rule the policy stops it by (``None``: it may flow).

One decision core (docs/architecture.md): the judging is :class:`enforcer.core.step.Step`,
asked through :meth:`~enforcer.core.step.Step.judgements` for each identifier's
judgement, which judges exactly as the step does when it decides a record but builds
nothing of what a decision outputs (no violation, no redacted value): a plan needs
the judgements only. The step runs the policy's rules in enforce mode whatever mode the
policy names: the mode changes what is done with a record, never how an identifier is
judged.

Every identifier the record holds is judged, whatever the record's outcome would be
now: one a rule stops names that rule, whether the rule would redact it or drop the
record. A record the step would dead-letter cannot be read: its identifiers are unknown
(``None``).
"""

from __future__ import annotations

from enforcer.core.clock import Clock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import LedgerLookup, LedgerMode
from enforcer.core.models import Mode
from enforcer.core.policy.compiled import Policy
from enforcer.core.record_format import RecordReader
from enforcer.core.step import InputRecord, Step

JudgedIdentifier = tuple[str, bytes, str | None, tuple[str, ...], bool, bytes | None]
"""(type, fingerprint MAC, rule name or ``None``, the purposes it was judged by, whether
they were the ledger's, the fingerprint MAC under the previous key or ``None`` without
one)."""
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
        previous: Fingerprinter | None = None,
    ) -> None:
        self.step = Step(policy.with_mode(Mode.ENFORCE), fingerprinter, clock, ledger, reader)
        self._mac = fingerprinter.mac
        self._previous_mac = previous.mac if previous is not None else None
        self.previous_key_id = previous.key_id if previous is not None else None
        """The id of the key used before the one in force, during a key rotation: each
        identifier is fingerprinted under it too, so that what was retracted under it
        can be told (docs/remediate.md, "After a key rotation")."""

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
        found = self.step.judgements(record)
        if found is None:
            return None
        subject, judged, values = found
        mac, previous = self._mac, self._previous_mac
        # A plain loop: it runs for every identifier of the history.
        out: list[JudgedIdentifier] = []
        for j, value in zip(judged, values):  # noqa: B905 - equal lengths by construction
            kind = j.type
            out.append(
                (
                    kind,
                    mac(kind, value),
                    j.rule_name,
                    j.purposes,
                    j.from_ledger,
                    None if previous is None else previous(kind, value),
                )
            )
        return subject, out
