"""The policy language: loading, the default, versions, and every feature of docs/policy.md."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from enforcer.cli import main
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.load import (
    PolicyLoadError,
    default_policy_bytes,
    load_policy,
    parse_policy,
)
from enforcer.core.policy.spec import PolicyFile
from enforcer.core.policy.vocabulary import FIDES, builtin_vocabulary
from enforcer.core.step import OutcomeKind

from ..conftest import event, ident, make_step, record

PolicyFrom = Callable[..., Policy]

OVERRIDE = "security_override: {reason: a test of another feature}\n"
"""For tests of other features on policies that let security-only identifiers through."""


def verdicts(policy: Policy, *identifiers: dict[str, object]) -> tuple[str, list[str]]:
    """The outcome kind and each identifier's rule (or "pass") under ``policy``."""
    outcome, decision = make_step(policy).explain(record(event(*identifiers)))
    rules = [j.rule.name if j.rule else "pass" for j in decision.identifiers] if decision else []
    return outcome.kind.value, rules


def test_default_policy_version_is_the_sha256_of_its_text() -> None:
    """Without a file, the version is sha256 of the built-in default's canonical text."""
    expected = "sha256:" + hashlib.sha256(default_policy_bytes()).hexdigest()
    assert load_policy(None).version == expected


def test_version_of_a_file_is_the_sha256_of_its_bytes(tmp_path: Path) -> None:
    """A comment changes the bytes, so it changes the version."""
    path = tmp_path / "p.yaml"
    path.write_bytes(default_policy_bytes() + b"# changed\n")
    assert load_policy(path).version == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_policy(path).version != load_policy(None).version


def test_default_policy_rules() -> None:
    """The default: security namespaces, missing purpose, then the advertising allow-list."""
    policy = load_policy(None)
    assert [r.name for r in policy.rules] == [
        "security-only-purpose",
        "missing-purpose",
        "purpose-not-allowed",
    ]
    assert policy.rules[0].namespaces == (
        "security",
        "essential.service.security",
        "essential.service.authentication",
        "essential.fraud_detection",
    )
    assert policy.allowed == policy.rules[2].namespaces == ("marketing.advertising",)
    assert policy.taxonomy is not None
    assert policy.taxonomy.keys == builtin_vocabulary(FIDES).keys
    assert policy.taxonomy.namespaces == ("security",)
    assert policy.taxonomy.unknown == "ignore"
    assert policy.taxonomy_warnings() == []


@pytest.mark.parametrize(
    ("purposes", "rule"),
    [
        # 1. every purpose within the security namespaces: the 2019 case
        (["security.mfa"], "security-only-purpose"),
        (["security"], "security-only-purpose"),
        (["SECURITY.MFA ", "essential.fraud_detection"], "security-only-purpose"),
        (["essential.service.authentication.sms"], "security-only-purpose"),
        # 2. no purpose at all
        ([], "missing-purpose"),
        (None, "missing-purpose"),
        # 3. purposes, but none within marketing.advertising
        (["security.mfa", "analytics.reporting"], "purpose-not-allowed"),
        (["essential.service.notifications.sms"], "purpose-not-allowed"),
        (["essential.service"], "purpose-not-allowed"),
        (["marketing"], "purpose-not-allowed"),
        (["marketing.communications.sms"], "purpose-not-allowed"),
        (["analytics.reporting.ad_performance"], "purpose-not-allowed"),
        (["securityx"], "purpose-not-allowed"),
        (["security_team"], "purpose-not-allowed"),
        (["securityx.foo"], "purpose-not-allowed"),
        (["marketing.advertisingx"], "purpose-not-allowed"),
        (["astrology"], "purpose-not-allowed"),
        # passes: at least one purpose within marketing.advertising
        (["security.mfa", "marketing.advertising"], "pass"),
        (["marketing.advertising"], "pass"),
        ([" Marketing.Advertising.Third_Party.Targeted"], "pass"),
        (["analytics.reporting", "marketing.advertising.frequency_capping"], "pass"),
        (["astrology", "marketing.advertising.custom_audiences"], "pass"),
    ],
)
def test_default_policy_per_identifier(purposes: list[str] | None, rule: str) -> None:
    """Each identifier gets the first matching rule of the default policy, in order."""
    _, rules = verdicts(load_policy(None), ident("phone", "+1 555 0100", purposes))
    assert rules == [rule]


def test_every_fides_data_use_under_the_default_policy() -> None:
    """One identifier per Fides data use: exactly the marketing.advertising subtree passes;
    the security uses are the 2019 rule, every other use is not allowed; none is rejected."""
    policy = load_policy(None)
    keys = sorted(builtin_vocabulary(FIDES).keys)
    outcome, rules = verdicts(policy, *(ident("email", f"u{i}", [k]) for i, k in enumerate(keys)))
    assert outcome == "redacted"
    decided = dict(zip(keys, rules, strict=True))
    passed = sorted(k for k, r in decided.items() if r == "pass")
    assert passed == sorted(
        k for k in keys if k == "marketing.advertising" or k.startswith("marketing.advertising.")
    )
    assert len(passed) == 10
    assert sorted(k for k, r in decided.items() if r == "security-only-purpose") == [
        "essential.fraud_detection",
        "essential.service.authentication",
        "essential.service.security",
    ]
    assert sum(r == "purpose-not-allowed" for r in rules) == 56 - 10 - 3


def test_records_with_nothing_left_are_dropped_and_empty_records_pass() -> None:
    """Dropped: had identifiers, none left. No identifiers at all: passed unchanged."""
    policy = load_policy(None)
    ads = ["marketing.advertising"]
    assert verdicts(policy, ident("phone", "1", ["security"]))[0] == "dropped"
    assert verdicts(policy, ident("phone", "1", ["analytics"]))[0] == "dropped"
    assert verdicts(policy)[0] == "passed"
    assert verdicts(policy, ident("phone", "1", ["security"]), ident("e", "2", ads))[0] == (
        "redacted"
    )


def test_the_default_allow_list_serves_audience_building_only() -> None:
    """Advertising is what audience building may take, not what any destination may:
    the default refuses to serve another destination rather than guess."""
    with pytest.raises(PolicyLoadError, match="destination 'crm' is not declared"):
        load_policy(None, destination="crm")


def test_allow_list_destination(policy_from: PolicyFrom) -> None:
    """In allow-list mode an identifier passes only with a purpose within `allow`."""
    policy = policy_from(
        """
rules:
  - {name: missing-purpose, when: no-purpose}
destinations:
  audience-building: {allow: [marketing.advertising]}
"""
    )
    _, rules = verdicts(
        policy,
        ident("email", "a", ["marketing.advertising.lookalike"]),
        ident("email", "b", ["analytics"]),
        ident("email", "c", []),
    )
    assert rules == ["pass", "purpose-not-allowed", "missing-purpose"]


def test_destinations_may_share_their_rule_name(policy_from: PolicyFrom) -> None:
    """A worker serves one destination, so two destinations keeping the default rule
    name load, each judged by its own allow-list; a destination's rule named like one
    of `rules`, or two rules of one name, are refused."""
    text = """
rules:
  - {name: missing-purpose, when: no-purpose}
destinations:
  audience-building: {allow: [marketing.advertising]}
  crm: {allow: [sales]}
"""
    crm = policy_from(text, destination="crm")
    _, rules = verdicts(crm, ident("email", "a", ["sales"]), ident("email", "b", ["marketing"]))
    assert rules == ["pass", "purpose-not-allowed"]
    _, rules = verdicts(policy_from(text), ident("email", "a", ["sales"]))
    assert rules == ["purpose-not-allowed"]
    repeated = "rule names must be unique; repeated: missing-purpose"
    clash = text.replace("crm: {allow: [sales]}", "crm: {allow: [sales], rule: missing-purpose}")
    with pytest.raises(PolicyLoadError, match=repeated):
        policy_from(clash, destination="audience-building")
    again = "  - {name: missing-purpose, when: no-purpose}\ndestinations:"
    with pytest.raises(PolicyLoadError, match=repeated):
        policy_from(text.replace("destinations:", again))


def test_an_undeclared_destination_is_refused(policy_from: PolicyFrom) -> None:
    """A policy with destinations must name the one the enforcer serves."""
    text = "rules: [{name: r, when: no-purpose}]\ndestinations: {crm: {allow: [sales]}}\n"
    with pytest.raises(PolicyLoadError, match="destination 'audience-building' is not declared"):
        policy_from(text)
    assert policy_from(text, destination="crm").destination == "crm"


def test_rules_limited_to_types_and_drop_action(policy_from: PolicyFrom) -> None:
    """A rule can apply to some identifier types only, and drop the whole record."""
    policy = policy_from(
        """
namespace_sets: {security: [security]}
rules:
  - {name: phone-2fa, when: all-within, within: security, types: [Phone], action: drop}
  - {name: any-security, when: any-within, within: [security], action: redact}
security_override: {reason: "a test of types: the Fides security keys are not covered"}
"""
    )
    assert verdicts(policy, ident("email", "a", ["security", "ads"]))[1] == ["any-security"]
    assert verdicts(policy, ident("email", "a", ["ads"]), ident("PHONE", "1", ["security"])) == (
        "dropped",
        ["pass", "phone-2fa"],
    )


@pytest.mark.parametrize(
    ("unknown", "outcome", "rules"),
    [
        ("ignore", "passed", ["pass", "pass"]),
        ("redact", "redacted", ["unknown-purpose", "pass"]),
        ("drop", "dropped", ["unknown-purpose", "pass"]),
        ("reject", "deadlettered", []),
    ],
)
def test_taxonomy_unknown_tags(
    policy_from: PolicyFrom, unknown: str, outcome: str, rules: list[str]
) -> None:
    """A declared taxonomy decides what a tag outside it causes."""
    policy = policy_from(
        f"""
rules: [{{name: missing-purpose, when: no-purpose}}]
taxonomy: {{purposes: [security, marketing], unknown: {unknown}}}
security_override: {{reason: a test of the taxonomy alone}}
"""
    )
    identifiers = [
        ident("email", "a", ["marketing.ads", "astrology"]),
        ident("e", "b", ["marketing"]),
    ]
    got = verdicts(policy, *identifiers)
    assert got[0] == outcome
    if rules:
        assert got[1] == rules
    else:
        dead = make_step(policy)(record(event(*identifiers)))
        assert (
            dead.error_message
            == "identifiers[0].purposes[1]: purpose is not in the policy's taxonomy"
        )


@pytest.mark.parametrize(
    ("purposes", "outcome"),
    [
        (["essential.service.notifications.sms"], "passed"),  # a Fides key
        (["marketing"], "passed"),  # a Fides key that has children
        (["security.mfa.totp"], "passed"),  # within the policy's own namespace
        (["essential.service.notifications.pigeon"], "deadlettered"),  # not a Fides key
        (["marketing.advertizing"], "deadlettered"),
        (["securityx"], "deadlettered"),
    ],
)
def test_built_in_fides_keys_are_a_closed_list(
    policy_from: PolicyFrom, purposes: list[str], outcome: str
) -> None:
    """`include: [fides]` takes Fides keys exactly; `purposes` are open namespaces."""
    policy = policy_from(
        """
rules: [{name: missing-purpose, when: no-purpose}]
taxonomy: {include: [fides], purposes: [security], unknown: reject}
security_override: {reason: a test of the taxonomy alone}
"""
    )
    assert verdicts(policy, ident("email", "a", purposes))[0] == outcome


def test_unknown_purpose_rule_knows_built_in_keys(policy_from: PolicyFrom) -> None:
    """`unknown: redact` matches a tag that is neither a Fides key nor within `purposes`."""
    policy = policy_from(
        """
rules: [{name: missing-purpose, when: no-purpose}]
taxonomy: {include: [fides], purposes: [security], unknown: redact}
security_override: {reason: a test of the taxonomy alone}
"""
    )
    _, rules = verdicts(
        policy,
        ident("email", "a", ["analytics.reporting", "security.mfa"]),
        ident("email", "b", ["analytics.reporting.made_up"]),
    )
    assert rules == ["pass", "unknown-purpose"]


def test_a_taxonomy_must_declare_something(policy_from: PolicyFrom) -> None:
    """Neither `include` nor `purposes` is a mistake, not an empty vocabulary."""
    with pytest.raises(PolicyLoadError, match="a taxonomy needs 'include', 'purposes' or both"):
        policy_from("rules: [{name: r, when: no-purpose}]\ntaxonomy: {unknown: ignore}\n")
    with pytest.raises(PolicyLoadError, match=r"at taxonomy\.include"):
        policy_from("rules: [{name: r, when: no-purpose}]\ntaxonomy: {include: [iab]}\n")


def test_taxonomy_warnings_name_rule_namespaces_outside_it(policy_from: PolicyFrom) -> None:
    """A rule namespace that names nothing in the taxonomy is probably a typo."""
    policy = policy_from(
        """
namespace_sets: {security: [security, essential.service.security, securty]}
rules:
  - {name: security-only, when: all-within, within: security}
  - {name: broad, when: any-within, within: [essential, analytics.made_up]}
destinations:
  audience-building: {allow: [marketing.advertizing, marketing.advertising.first_party]}
taxonomy: {include: [fides], purposes: [security], unknown: ignore}
"""
    )
    assert policy.taxonomy_warnings() == [
        "rule 'security-only': 'securty' is not in the policy's taxonomy",
        "rule 'broad': 'analytics.made_up' is not in the policy's taxonomy",
        "rule 'purpose-not-allowed': 'marketing.advertizing' is not in the policy's taxonomy",
    ]
    no_taxonomy = policy_from(
        "rules: [{name: r, when: any-within, within: [anything]}]\n" + OVERRIDE
    )
    assert no_taxonomy.taxonomy_warnings() == []


def test_destination_rule_description(policy_from: PolicyFrom) -> None:
    """The allow-list rule says what it means: as written, or naming what is allowed."""
    text = OVERRIDE + "rules: [{name: r, when: no-purpose}]\ndestinations:\n  audience-building:\n"
    generated = policy_from(text + "    allow: [marketing.advertising, sales]\n")
    assert generated.allowed == ("marketing.advertising", "sales")
    assert generated.rules[-1].description == (
        "None of its purposes is one audience-building allows (marketing.advertising, sales)."
    )
    written = policy_from(text + "    allow: [sales]\n    description: Not for sales.\n")
    assert written.rules[-1].description == "Not for sales."
    assert policy_from(OVERRIDE + "rules: [{name: r, when: no-purpose}]\n").allowed == ()


def test_audit_mode_from_the_file(policy_from: PolicyFrom) -> None:
    """`mode: audit` in the file forwards unchanged and still reports."""
    policy = policy_from(
        OVERRIDE + "mode: audit\nrules: [{name: missing-purpose, when: no-purpose}]\n"
    )
    outcome = make_step(policy)(record(event(ident("email", "a"))))
    assert outcome.kind is OutcomeKind.PASSED
    assert outcome.violation is not None
    assert outcome.violation["mode"] == "audit"
    assert outcome.violation["action"] == "dropped"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [", "test.yaml:1:9: invalid YAML"),
        ("rules: " + "[" * 5000, "test.yaml: invalid YAML: nested too deeply"),
        ("rules: " + "[" * 5000 + "]" * 5000, "test.yaml: invalid YAML: nested too deeply"),
        ("- a\n- b\n", "test.yaml: a policy must be a YAML mapping"),
        ("rules: []\n", "test.yaml:1: at rules: List should have at least 1 item"),
        (
            "rules:\n  - name: r\n    when: sometimes\n",
            "test.yaml:3: at rules[0].when: Input should be",
        ),
        (
            "rules:\n  - {name: r, when: all-within}\n",
            "test.yaml:2: at rules[0]: Value error, a 'all-within' rule needs 'within'",
        ),
        (
            "rules:\n  - {name: r, when: all-within, within: nope}\n",
            "which `namespace_sets` does not define",
        ),
        (
            "rules:\n  - {name: r, when: no-purpose}\n  - {name: r, when: no-purpose}\n",
            "repeated: r",
        ),
        (
            "namespace_sets: {s: ['Bad Tag']}\nrules: [{name: r, when: no-purpose}]\n",
            "test.yaml:1: at namespace_sets.s[0]",
        ),
        ("rules: [{name: r, when: no-purpose}]\nmode: loud\n", "test.yaml:2: at mode"),
        (
            "rules:\n  - {name: r, when: no-purpose, types: [email, 'e-mail address']}\n",
            "test.yaml:2: at rules[0].types[1]: Value error, must be an identifier type",
        ),
        (
            "rules: [{name: r, when: no-purpose}]\nsurprise: 1\n",
            "test.yaml:2: at surprise: Extra inputs are not permitted",
        ),
    ],
)
def test_invalid_policies_name_file_place_and_problem(
    policy_from: PolicyFrom, text: str, message: str
) -> None:
    """One clear message: file, line where known, field path, problem."""
    with pytest.raises(PolicyLoadError) as caught:
        policy_from(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unreadable_policy_file(tmp_path: Path) -> None:
    """A missing file is a load error naming it."""
    with pytest.raises(PolicyLoadError, match="cannot read policy file"):
        load_policy(tmp_path / "absent.yaml")


def test_published_schema_matches_the_model() -> None:
    """The JSON Schema shipped for editors is the one the model generates."""
    import json
    from importlib import resources

    shipped = json.loads(
        resources.files("enforcer.core.policy").joinpath("policy.schema.json").read_text()
    )
    assert shipped == PolicyFile.model_json_schema()


def test_shipped_example_policies_load() -> None:
    """Every example policy in policies/ is valid."""
    root = Path(__file__).resolve().parents[3] / "policies"
    examples = sorted(p for p in root.glob("*.yaml") if not p.name.endswith(".test.yaml"))
    assert examples, "no example policies found"
    assert [p.name for p in examples] == [
        "advertising-allow-list.yaml",
        "default.yaml",
        "formats.yaml",
        "security-only.yaml",
    ]
    for path in examples:
        policy = parse_policy(path.read_bytes(), origin=str(path))
        assert policy.rules
        assert policy.taxonomy_warnings() == []
        assert (root / path.name.replace(".yaml", ".test.yaml")).exists()


def test_example_default_is_the_built_in_default() -> None:
    """policies/default.yaml is byte for byte the built-in default (same version)."""
    example = Path(__file__).resolve().parents[3] / "policies" / "default.yaml"
    assert example.read_bytes() == default_policy_bytes()


def test_policy_tests_judge_the_rules_of_a_policy_with_a_ledger_setting(tmp_path: Path) -> None:
    """`policy test` runs its cases on the events' tags, even when the policy sets
    `ledger: authoritative` (which needs a ledger to run)."""
    policy = tmp_path / "ledger.yaml"
    policy.write_bytes(default_policy_bytes() + b"\nledger: authoritative\n")
    cases = tmp_path / "ledger.test.yaml"
    cases.write_text(
        "policy: ledger.yaml\n"
        "cases:\n"
        "  - name: 2FA only\n"
        "    record: {event_id: e, subject_id: s, occurred_at: '2019-10-08T12:00:00Z',\n"
        "             identifiers: [{type: phone, value: '+14155550100',\n"
        "                            purposes: [security.mfa]}]}\n"
        "    expect: {outcome: dropped, decisions: [security-only-purpose]}\n"
    )
    assert main(["policy", "test", str(cases)]) == 0
