"""What the enforcer did, read back from its output topics as a ``read_committed``
consumer reads them, and the summary lines every variant of the demo prints: records by
outcome, violations by rule and identifier type."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from enforcer.core.policy.load import load_policy
from enforcer.demo.loop import run as run_loop
from enforcer.testing.consume import ReadRecord, read_committed


@dataclass(frozen=True)
class ReadBack:
    """The committed records of the sink, violations and dead-letter topics."""

    sink: list[ReadRecord]
    violations: list[dict[str, Any]]
    """The violation events, parsed."""
    dead: list[ReadRecord]

    @property
    def actions(self) -> Counter[str]:
        """Sink records by their ``enforcer.action`` header (passed, redacted, ...)."""
        return Counter(dict(r.headers).get("enforcer.action", b"?").decode() for r in self.sink)

    @property
    def dropped(self) -> int:
        return sum(1 for v in self.violations if v["action"] == "dropped")

    @property
    def by_rule(self) -> Counter[str]:
        """Findings by the rule that made them."""
        return Counter(f["rule"] for v in self.violations for f in v["findings"])

    @property
    def by_type(self) -> Counter[str]:
        """Findings by identifier type."""
        return Counter(f["identifier_type"] for v in self.violations for f in v["findings"])

    @property
    def dead_reasons(self) -> Counter[str]:
        return Counter(dict(r.headers)["enforcer.error.reason"].decode() for r in self.dead)


def read_back(bootstrap: str, topics: Mapping[str, str], produced: int) -> ReadBack:
    """Read every committed record of ``topics``' sink, violations and dead-letter
    topics; ``produced`` records went in."""
    sink = run_loop(read_committed(bootstrap, topics["sink"], expected=produced, settle_s=0.5))
    violations = run_loop(read_committed(bootstrap, topics["violations"], expected=1, settle_s=0.5))
    dead = run_loop(read_committed(bootstrap, topics["deadletter"], expected=1, settle_s=0.5))
    return ReadBack(sink, [orjson.loads(r.value or b"{}") for r in violations], dead)


def outcome_lines(read: ReadBack, produced: int, meaning: Mapping[str, str]) -> list[str]:
    """Records by outcome (every one accounted for, or a mismatch), then the violations
    by rule (with what the rule means, from ``meaning``) and by identifier type."""
    actions, dead = read.actions, read.dead
    accounted = actions["passed"] + actions["redacted"] + read.dropped + len(dead)
    accounts = {v["subject_id"] for v in read.violations}
    lines = [
        f"records in:       {produced:>7,}",
        f"  passed:         {actions['passed']:>7,}",
        f"  redacted:       {actions['redacted']:>7,}",
        f"  dropped:        {read.dropped:>7,}",
        f"  dead-lettered:  {len(dead):>7,}   {dict(sorted(read.dead_reasons.items()))}",
        f"  accounted for:  {accounted:>7,}   "
        + ("(every record has exactly one outcome)" if accounted == produced else "(MISMATCH)"),
        f"violations:       {len(read.violations):>7,}   affecting {len(accounts):,} accounts",
    ]
    lines += [
        f"  rule {rule}: {n:,} identifiers" + (f"  ({meaning[rule]})" if rule in meaning else "")
        for rule, n in sorted(read.by_rule.items())
    ]
    lines += [f"  type {kind}: {n:,} identifiers" for kind, n in sorted(read.by_type.items())]
    return lines


def rule_meanings(policy: Path | None) -> dict[str, str]:
    """Each rule's description in ``policy`` (``None``: the built-in default)."""
    return {rule.name: rule.description for rule in load_policy(policy).rules}
