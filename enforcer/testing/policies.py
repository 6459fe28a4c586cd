"""Policies the tests and benchmarks change to: the built-in default with one rule
more, so that a policy change has something known to retract."""

from __future__ import annotations

from enforcer.core.policy.load import default_policy_bytes

NO_PHONES_RULE = (
    b"  - name: no-phones-for-ads\n"
    b"    when: any-within\n"
    b"    within: advertising\n"
    b"    types: [phone]\n"
    b"    action: redact\n\n"
)


def phones_never_for_advertising() -> bytes:
    """The default policy, and phone numbers never for advertising (the rule
    ``no-phones-for-ads``, first): a stricter policy that retracts every exposed phone
    number and nothing else."""
    text = default_policy_bytes()
    return text.replace(
        b"namespace_sets:\n", b"namespace_sets:\n  advertising: [marketing]\n", 1
    ).replace(b"rules:\n", b"rules:\n" + NO_PHONES_RULE, 1)
