"""The security guardrail (docs/policy.md): a policy under which an identifier whose
purposes all lie within security namespaces could reach audience building is refused,
unless it states ``security_override`` with a reason; then it is flagged."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enforcer.core.models import ViolationEvent
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.guardrail import BUILTIN_SECURITY_NAMESPACES, find_leak
from enforcer.core.policy.load import PolicyLoadError, load_policy, parse_policy
from enforcer.core.policy.spec import PolicyFile
from enforcer.core.purposes import within_any
from enforcer.core.step import OutcomeKind

from ..conftest import event, ident, make_step, record

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted(p for p in (ROOT / "policies").glob("*.yaml") if not p.name.endswith(".test.yaml"))

# The policy the guardrail was made for: the default's allow-list widened to `security`,
# and without the rule that keeps security-only identifiers out.
ALLOWS_SECURITY = """\
format: 1
rules:
  - name: missing-purpose
    when: no-purpose
destinations:
  audience-building:
    allow: [marketing.advertising, security]
"""
OVERRIDE = "security_override:\n  reason: Fraud-team lookalikes, approved in PRIV-123.\n"


def parse(text: str, destination: str = "audience-building") -> Policy:
    return parse_policy(text.encode(), origin="p.yaml", destination=destination)


def test_a_policy_allowing_security_for_audience_building_is_refused() -> None:
    """One line: the file, the line of the allow-list, the place, an example, the fix."""
    with pytest.raises(PolicyLoadError) as caught:
        parse(ALLOWS_SECURITY)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("p.yaml:7: at destinations.audience-building.allow: ")
    assert "with purposes [security] would reach audience-building" in message
    assert "security_override: {reason: ...}" in message


def test_the_same_policy_with_a_stated_reason_loads_and_is_flagged() -> None:
    """The override carries its reason; identifiers given only for security now pass."""
    policy = parse(ALLOWS_SECURITY + OVERRIDE)
    assert policy.security_override == "Fraud-team lookalikes, approved in PRIV-123."
    outcome = make_step(policy)(record(event(ident("phone", "+1 555 0100", ["security.mfa"]))))
    assert outcome.kind is OutcomeKind.PASSED


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("security_override: {reason: '   '}\n", "a security override needs a reason"),
        ("security_override: {reason: ''}\n", "at least 1 character"),
        ("security_override: {}\n", "at security_override.reason: Field required"),
        ("security_override: yes\n", "at security_override"),
        ("security_override: {reason: r, by: me}\n", "at security_override.by"),
    ],
)
def test_an_override_needs_a_reason(override: str, problem: str) -> None:
    """No reason, a blank one, or a bare flag is a policy error like any other."""
    with pytest.raises(PolicyLoadError, match=problem):
        parse(ALLOWS_SECURITY + override)


@pytest.mark.parametrize("path", [None, *SHIPPED], ids=lambda p: p.name if p else "built-in")
def test_the_default_and_the_shipped_policies_need_no_override(path: Path | None) -> None:
    """They keep every security-only identifier out, without warnings."""
    policy = load_policy(path)
    assert find_leak(policy) is None
    assert policy.security_override is None
    assert policy.warnings() == []


@pytest.mark.parametrize("namespace", BUILTIN_SECURITY_NAMESPACES)
def test_every_security_namespace_is_probed(namespace: str) -> None:
    """Letting any one of them through is refused, whatever the policy's own set says.
    With `security` allowed, the policy's rule stops `security.mfa` alone but not with
    `essential.service.security.…` beside it: that list is the example."""
    text = f"""
namespace_sets: {{security: [security]}}
rules:
  - {{name: security-only, when: all-within, within: security}}
destinations:
  audience-building: {{allow: [marketing.advertising, {namespace}]}}
"""
    with pytest.raises(PolicyLoadError) as caught:
        parse(text)
    example = re.search(r"with purposes \[([^\]]*)\] would reach", str(caught.value))
    assert example is not None
    assert any(tag.startswith(namespace) for tag in example.group(1).split(", "))


def test_the_policys_own_security_namespaces_are_probed_too() -> None:
    """A namespace the policy adds to its `security` set is a security namespace."""
    text = """
namespace_sets: {security: [security, account_recovery]}
rules:
  - {name: two-factor, when: all-within, within: [security, essential]}
destinations:
  audience-building: {allow: [marketing.advertising, account_recovery]}
"""
    with pytest.raises(PolicyLoadError, match=r"with purposes \[account_recovery\]"):
        parse(text)


def test_a_rule_limited_to_some_types_leaves_the_others_open() -> None:
    """Every type the rules tell apart is probed, and the types they do not name."""
    text = """
rules:
  - {name: phone-2fa, when: all-within, within: [security, essential], types: [phone]}
  - {name: email-2fa, when: all-within, within: [security, essential], types: [email]}
"""
    with pytest.raises(PolicyLoadError, match="an identifier of a type no rule names"):
        parse(text)
    email_named = """
rules:
  - {name: phone-2fa, when: all-within, within: [security, essential], types: [phone]}
  - {name: email-ads, when: any-within, within: [marketing], types: [email]}
"""
    with pytest.raises(PolicyLoadError, match=r"at rules: an identifier of type 'email' with"):
        parse(email_named)


def test_a_list_of_security_tags_that_passes_where_each_alone_is_stopped() -> None:
    """Two rules, each covering one namespace, stop single tags but not the pair."""
    text = """
rules:
  - {name: plain-security, when: all-within, within: [security]}
  - {name: fides-security, when: all-within, within: [essential]}
"""
    policy = parse(text + OVERRIDE)
    for tag in ("security.mfa", "essential.fraud_detection"):
        assert policy.rule_for("email", (tag,)) is not None
    leak = find_leak(policy)
    assert leak is not None and len(leak.purposes) == 2
    # The example is real: the enforcer forwards it.
    identifiers = [ident("email", "a@x.io", list(leak.purposes))]
    assert make_step(policy)(record(event(*identifiers))).kind is OutcomeKind.PASSED
    with pytest.raises(PolicyLoadError, match=r"at rules: .* with purposes \[.+, .+\] would reach"):
        parse(text)


def test_a_reject_taxonomy_is_not_protection() -> None:
    """Purposes from a purpose ledger are judged by the rules alone, so a taxonomy that
    would dead-letter an event's tag does not keep the identifier out."""
    text = """
rules:
  - {name: security-only, when: all-within, within: [security, essential.service]}
  - {name: missing-purpose, when: no-purpose}
taxonomy: {include: [fides], purposes: [security], unknown: reject}
"""
    with pytest.raises(PolicyLoadError, match=r"\[essential.fraud_detection"):
        parse(text)


def test_an_override_the_policy_does_not_need_is_a_warning_not_a_flag() -> None:
    """A stale statement would otherwise flag a worker for nothing."""
    policy = load_policy(None)
    text = (ROOT / "policies" / "default.yaml").read_text() + OVERRIDE
    stated = parse(text)
    assert stated.security_override is None
    assert stated.warnings() == [
        "'security_override' has no effect: no identifier whose purposes all lie within "
        "security namespaces can reach audience-building under this policy"
    ]
    assert policy.warnings() == []


def test_the_check_follows_the_destination_served() -> None:
    """Compiled for another destination, that destination's allow-list is checked."""
    text = """
rules:
  - {name: security-only, when: all-within, within: [security, essential]}
destinations:
  audience-building: {allow: [marketing.advertising]}
  fraud-graph: {allow: [essential.fraud_detection], rule: not-for-fraud-graph}
"""
    parse(text)
    fraud = parse(text, destination="fraud-graph")
    assert find_leak(fraud) is None  # the rule before the allow-list still stops it
    loose = text.replace("within: [security, essential]", "within: [security]")
    with pytest.raises(PolicyLoadError, match=r"p.yaml:6: at destinations.fraud-graph.allow"):
        parse(loose, destination="fraud-graph")


def test_violations_under_an_override_are_flagged_and_others_are_not() -> None:
    """Every violation (and audit-mode would-be dead letter) carries the flag."""
    rec = record(event(ident("email", "a@x.io"), ident("phone", "+1 555 0100", ["security"])))
    flagged = make_step(parse(ALLOWS_SECURITY + OVERRIDE))(rec).violation
    assert flagged is not None and flagged["security_override"] is True
    assert ViolationEvent.model_validate(flagged).security_override is True
    plain = make_step(load_policy(None))(rec).violation
    assert plain is not None and "security_override" not in plain
    audit = parse("mode: audit\n" + ALLOWS_SECURITY + OVERRIDE)
    dead = make_step(audit)(record(b"not json")).violation
    assert dead is not None and dead["security_override"] is True


def test_the_published_schema_describes_the_override() -> None:
    """Editors validating a policy file know the field and that the reason is required."""
    schema = PolicyFile.model_json_schema()
    assert "security_override" in schema["properties"]
    assert schema["$defs"]["SecurityOverrideSpec"]["required"] == ["reason"]


def test_a_missing_taxonomy_still_flags_a_misspelt_allow_list() -> None:
    """Without a declared taxonomy, allow-list namespaces are checked against Fides."""
    text = """
rules:
  - {name: security-only, when: all-within, within: [security, essential]}
destinations:
  audience-building: {allow: [marketing.advertisment, marketing.advertising, analytics]}
"""
    assert parse(text).warnings() == [
        "destination 'audience-building': allowed namespace 'marketing.advertisment' is not "
        "in the Fides taxonomy (the policy declares no taxonomy of its own)"
    ]


# --- many policies: the probes agree with an exhaustive search ------------------------

POOL = [
    "security",
    "security.mfa",
    "security.mfa.totp",
    "essential",
    "essential.service",
    "essential.service.security",
    "essential.service.authentication",
    "essential.fraud_detection",
    "marketing.advertising",
    "analytics",
]
CONDITIONS = ["all-within", "any-within", "none-within", "any-outside"]
TYPES = [None, ["phone"], ["email"], ["phone", "email"]]
# Every kind of security-only tag the pool can tell apart.
UNIVERSE = [t for ns in POOL for t in (ns, ns + ".x") if within_any(t, BUILTIN_SECURITY_NAMESPACES)]

rule_strategy = st.fixed_dictionaries(
    {
        "when": st.sampled_from(CONDITIONS),
        "within": st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique=True),
        "types": st.sampled_from(TYPES),
    }
)


def _policy_text(rules: list[dict[str, object]], allow: list[str] | None) -> str:
    lines = ["rules:"]
    for n, rule in enumerate(rules):
        types = f", types: {rule['types']}" if rule["types"] else ""
        lines.append(f"  - {{name: r{n}, when: {rule['when']}, within: {rule['within']}{types}}}")
    if allow:
        lines.append(f"destinations:\n  audience-building: {{allow: {allow}}}")
    return "\n".join(lines).replace("'", "") + "\n" + OVERRIDE


def _exhaustive(policy: Policy) -> bool:
    """True when some list of up to four security-only tags passes, for some type (four:
    each of three rules and the allow-list may need a tag of its own to fail on)."""
    for kind in ("phone", "email", "device_id"):
        for size in (1, 2, 3, 4):
            for tags in itertools.combinations(UNIVERSE, size):
                if policy.rule_for(kind, tags) is None:
                    return True
    return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=st.lists(rule_strategy, min_size=1, max_size=3),
    allow=st.none() | st.lists(st.sampled_from(POOL), min_size=1, max_size=2, unique=True),
)
def test_the_probes_find_a_leak_exactly_when_one_exists(
    rules: list[dict[str, object]], allow: list[str] | None
) -> None:
    """Sound (its example passes through the real step) and complete (no list of
    security-only tags passes when it finds none)."""
    policy = parse(_policy_text(rules, allow))
    leak = find_leak(policy)
    assert (leak is not None) == _exhaustive(policy)
    if leak is not None:
        kind = leak.type or "device_id"
        found = make_step(policy)(record(event(ident(kind, "v", list(leak.purposes)))))
        assert found.kind is OutcomeKind.PASSED
        assert all(within_any(t, BUILTIN_SECURITY_NAMESPACES) for t in leak.purposes)
