"""``enforcer explain``: one record, each identifier's decision and the rule behind it.

Shows types, normalized purposes and decisions, never identifier values.
"""

from __future__ import annotations

from typing import Any

from enforcer.policy.compiled import Policy
from enforcer.policy.evaluate import Decision, Judgement
from enforcer.purposes import within
from enforcer.step import Outcome, OutcomeKind, Step


def explanation(step: Step, outcome: Outcome, decision: Decision | None) -> dict[str, Any]:
    """The explanation as a JSON-ready object."""
    policy = step.policy
    result: dict[str, Any] = {
        "outcome": outcome.kind.value,
        "policy_version": policy.version,
        "policy": policy.origin,
        "mode": policy.mode.value,
        "destination": policy.destination,
        "allowed_purposes": list(policy.allowed),
    }
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
            "rule": j.rule.name if j.rule else None,
            "why": _why(policy, j),
        }
        for index, j in enumerate(decision.identifiers if decision else ())
    ]
    return result


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
        lines.append(f"  [{item['index']}] {item['type']:<10} purposes: {purposes}")
        lines.append(f"      -> {verdict}: {item['why']}" if item["why"] else f"      -> {verdict}")
    return "\n".join(lines)
