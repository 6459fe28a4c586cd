"""Policy: load (YAML → validated → compiled), evaluate (pure), the built-in default."""

from enforcer.core.policy.compiled import DEFAULT_DESTINATION, Policy, Rule
from enforcer.core.policy.evaluate import Decision, Judgement, Rejection, Verdict, decide
from enforcer.core.policy.load import PolicyLoadError, load_policy, parse_policy

__all__ = [
    "DEFAULT_DESTINATION",
    "Decision",
    "Judgement",
    "Policy",
    "PolicyLoadError",
    "Rejection",
    "Rule",
    "Verdict",
    "decide",
    "load_policy",
    "parse_policy",
]
