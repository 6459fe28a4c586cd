"""``enforcer explain``: one record, each identifier's decision and the rule behind it.

Shows types, normalized purposes and decisions, never identifier values. With a
purpose ledger (SPEC §11) it shows, per identifier, what the ledger grants (or that it
does not know the identifier) beside what the event claims.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from enforcer.ledger.decide import LedgerMode
from enforcer.policy.compiled import Policy
from enforcer.policy.evaluate import Decision, Judgement
from enforcer.purposes import within
from enforcer.step import Outcome, OutcomeKind, Step

if TYPE_CHECKING:
    from enforcer.ledger_input import LoadedLedger


def explanation(
    step: Step, outcome: Outcome, decision: Decision | None, ledger: LoadedLedger | None = None
) -> dict[str, Any]:
    """The explanation as a JSON-ready object; ``ledger`` is the one ``step`` judges by."""
    policy = step.policy
    result: dict[str, Any] = {
        "outcome": outcome.kind.value,
        "policy_version": policy.version,
        "policy": policy.origin,
        "mode": policy.mode.value,
        "destination": policy.destination,
        "allowed_purposes": list(policy.allowed),
    }
    by_ledger = ledger is not None and step.ledger_mode is not LedgerMode.OFF
    if ledger is not None:
        summary = ledger.summary(step.ledger_mode)
        result["ledger"] = summary.model_dump(
            mode="json", exclude={"identifiers_judged", "purpose_not_granted"}
        )
    if outcome.kind is OutcomeKind.DEADLETTERED:
        result["dead_letter"] = {
            "reason": str(outcome.error_reason),
            "message": outcome.error_message,
        }
        return result
    if outcome.violation is not None:
        result["violation_action"] = outcome.violation["action"]
    result["identifiers"] = [
        {
            "index": index,
            "type": j.type,
            "purposes": list(j.purposes),
            "decision": j.rule.action.value if j.rule else "pass",
            "rule": j.rule_name,
            "why": _ledger_why(step.ledger_mode, j) + _why(policy, j)
            if by_ledger
            else _why(policy, j),
            **(_ledger_fields(j) if by_ledger else {}),
        }
        for index, j in enumerate(decision.identifiers if decision else ())
    ]
    return result


def _ledger_fields(judgement: Judgement) -> dict[str, Any]:
    """What the ledger grants the identifier (``None``: unknown to it) and what the
    event claimed."""
    known = judgement.from_ledger
    return {
        "ledger": "known" if known else "unknown",
        "ledger_purposes": list(judgement.purposes) if known else None,
        "claimed_purposes": list(judgement.claimed or ()),
    }


def _ledger_why(mode: LedgerMode, judgement: Judgement) -> str:
    """How the ledger decided what the identifier is judged by."""
    if not judgement.from_ledger:
        if mode is LedgerMode.FALLBACK:
            return "unknown to the ledger, so judged by the event's purposes (fallback): "
        return "unknown to the ledger, so judged as having no purpose (authoritative): "
    granted = ", ".join(judgement.purposes) or "nothing"
    if judgement.not_granted:
        claimed = ", ".join(judgement.claimed or ())
        return (
            f"the event claims {claimed}, which the ledger does not grant (it grants "
            f"{granted}); by the ledger's purposes: "
        )
    return f"judged by the ledger's purposes ({granted}): "


def _why(policy: Policy, judgement: Judgement) -> str:
    """The rule's meaning; for a pass, the purpose that let it through when there is one."""
    rule = judgement.rule
    if rule is not None:
        if policy.is_allow_list(rule):
            allowed = ", ".join(policy.allowed)
            return f"{rule.description} ({policy.destination} allows only: {allowed})"
        return rule.description
    for purpose in judgement.purposes:
        for namespace in policy.allowed:
            if within(purpose, namespace):
                return f"{purpose} lies within {namespace}, which {policy.destination} allows"
    return "no rule matched" if judgement.purposes else "no rule matched (no purpose)"


def render_text(data: dict[str, Any]) -> str:
    """The explanation for a terminal."""
    lines = [
        f"outcome: {data['outcome']}"
        + (
            f" (enforce mode would have {data['violation_action']} it)"
            if data["mode"] == "audit" and "violation_action" in data
            else ""
        ),
        f"policy:  {data['policy_version']} ({data['policy']}), mode {data['mode']}, "
        f"destination {data['destination']}"
        + (
            f" (allows only: {', '.join(data['allowed_purposes'])})"
            if data["allowed_purposes"]
            else ""
        ),
    ]
    if "ledger" in data:
        lines.append(_ledger_line(data["ledger"]))
    if "dead_letter" in data:
        letter = data["dead_letter"]
        lines.append(f"dead letter: {letter['reason']}: {letter['message']}")
        return "\n".join(lines)
    if not data["identifiers"]:
        lines.append("no identifiers")
    for item in data["identifiers"]:
        purposes = ", ".join(item["purposes"]) or "(none)"
        verdict = (
            item["decision"]
            if item["rule"] is None
            else (f"{item['decision']}  by rule {item['rule']}")
        )
        label = "judged by" if "ledger" in item else "purposes"
        lines.append(f"  [{item['index']}] {item['type']:<10} {label}: {purposes}")
        if "ledger" in item:
            granted = item["ledger_purposes"]
            ledger = (
                "unknown to the ledger"
                if granted is None
                else ", ".join(granted) or "(known, nothing granted)"
            )
            claimed = ", ".join(item["claimed_purposes"]) or "(none)"
            lines.append(f"      ledger: {ledger}; the event claims: {claimed}")
        lines.append(f"      -> {verdict}: {item['why']}" if item["why"] else f"      -> {verdict}")
    return "\n".join(lines)


def _ledger_line(ledger: dict[str, Any]) -> str:
    source = ledger["source"]
    when = f" as of {ledger['as_of']}" if ledger["as_of"] else ""
    state, records = ledger["state"], ledger["records"]
    invalid = f", {records['invalid']:,} invalid records skipped" if records["invalid"] else ""
    return (
        f"ledger:  {source['kind']} {source['name']}{when}, setting {ledger['mode']}: "
        f"{state['subjects']:,} subjects, {state['identifiers']:,} identifiers{invalid}"
    )
