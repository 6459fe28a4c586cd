"""``replay --format confluent`` and ``explain --format confluent`` on the command line
(docs/formats.md: "Replay and explain"): one base64 value a line, bad input one line and
exit 2, and explain naming each identifier by its path in the record, never its value."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import orjson
import pytest

from enforcer.cli import main

KEY_TEXT = "0123456789abcdef0123456789abcdef"
PHONE, EMAIL = "+1 (415) 555-0100", "recover7@example.com"

# A mapping without topics reads plain JSON on every topic (explain's topic is the
# file's name): the sample account event as plain JSON, no registry needed.
POLICY = """\
format: 1
mode: enforce
rules:
  - name: security-only-purpose
    when: all-within
    within: [security]
    action: redact
destinations:
  audience-building:
    allow: [marketing.advertising]
    action: redact
formats:
  mappings:
    - name: accounts
      subject_id: account_id
      event_id: event_id
      occurred_at: occurred_at
      identifiers:
        - {path: two_factor_phone, type: phone, purposes: [security.mfa]}
        - {path: "contacts[*].email", type: email, purposes: {path: "contacts[*].purposes"}}
"""


def _account(**fields: object) -> bytes:
    return orjson.dumps(
        {
            "event_id": "evt-1",
            "account_id": "acct-7",
            "occurred_at": "2019-10-08T12:00:00Z",
            "two_factor_phone": PHONE,
            "contacts": [
                {"email": "other@example.com", "purposes": ["analytics"]},
                {"email": EMAIL, "purposes": ["marketing.advertising"]},
            ],
            **fields,
        }
    )


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ENFORCER_POLICY_FILE", "ENFORCER_SCHEMA_REGISTRY_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", KEY_TEXT)
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def test_replay_reads_base64_lines_and_writes_forwarded_values_the_same_way(
    capsys: pytest.CaptureFixture[str], policy: Path, tmp_path: Path
) -> None:
    """Each line one value; a line that is not base64 is a dead letter (undecodable),
    named in the summary like any other; forwarded values are base64 lines."""
    data = tmp_path / "accounts.b64"
    data.write_bytes(
        base64.b64encode(_account()) + b"\n\n" + b"{not base64}\n" + base64.b64encode(_account())
    )
    out = tmp_path / "out"
    code, _, err = run(
        capsys, "replay", "--from-file", str(data), "--format", "confluent", "--out", str(out),
        "--policy", str(policy), "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    assert "replayed 3 records" in err and "2 redacted" in err and "1 dead-lettered" in err
    forwarded = [base64.b64decode(v) for v in (out / "forwarded.jsonl").read_bytes().splitlines()]
    assert [json.loads(v)["two_factor_phone"] for v in forwarded] == [None, None]
    [dead] = [json.loads(v) for v in (out / "deadletter.jsonl").read_bytes().splitlines()]
    assert (dead["source"]["offset"], dead["reason"]) == (2, "undecodable")
    report = json.loads((out / "report.json").read_bytes())
    assert report["records"]["deadlettered"] == 1 and report["records"]["in"] == 3


def test_replay_refuses_format_with_a_topic(
    capsys: pytest.CaptureFixture[str], policy: Path, tmp_path: Path
) -> None:
    code, _, err = run(
        capsys, "replay", "--topic", "t", "--format", "confluent", "--out", str(tmp_path)
    )
    assert code == 2 and err.count("\n") == 1 and "--format goes with --from-file" in err


def test_explain_names_the_record_paths_of_the_identifiers_never_their_values(
    capsys: pytest.CaptureFixture[str], policy: Path, tmp_path: Path
) -> None:
    """A record in base64: each identifier with its path in the record (a list item by
    its index), in text and in JSON; whether the phone is E.164; no value anywhere."""
    path = tmp_path / "one.b64"
    path.write_bytes(base64.b64encode(_account()) + b"\n")
    code, out, _ = run(
        capsys, "explain", str(path), "--format", "confluent", "--policy", str(policy)
    )
    assert code == 0
    assert "outcome: redacted" in out
    assert "[0] phone      at two_factor_phone; purposes: security.mfa" in out
    assert "[2] email      at contacts[1].email; purposes: marketing.advertising" in out
    code, out, _ = run(
        capsys, "explain", str(path), "--format", "confluent", "--json", "--policy", str(policy)
    )
    data = json.loads(out)
    assert [(i["path"], i["decision"]) for i in data["identifiers"]] == [
        ("two_factor_phone", "redact"),
        ("contacts[0].email", "redact"),
        ("contacts[1].email", "pass"),
    ]
    assert data["identifiers"][0]["phone_format"] == "e164"
    for value in (PHONE, EMAIL, "other@example.com", "555"):
        assert value not in out


def test_explain_of_plain_json_a_mapping_reads_names_paths_too(
    capsys: pytest.CaptureFixture[str], policy: Path, tmp_path: Path
) -> None:
    """The same record as plain JSON (the default --format): the same paths."""
    path = tmp_path / "one.json"
    path.write_bytes(_account())
    code, out, err = run(capsys, "explain", str(path), "--json", "--policy", str(policy))
    assert code == 0, err
    paths = [i["path"] for i in json.loads(out)["identifiers"]]
    assert paths == ["two_factor_phone", "contacts[0].email", "contacts[1].email"]


def test_explain_takes_line_n_of_a_base64_file(
    capsys: pytest.CaptureFixture[str], policy: Path, tmp_path: Path
) -> None:
    path = tmp_path / "many.b64"
    path.write_bytes(
        base64.b64encode(_account()) + b"\n" + base64.b64encode(_account(two_factor_phone=None))
    )
    code, out, err = run(
        capsys, "explain", str(path), "--format", "confluent", "--policy", str(policy)
    )
    assert code == 2 and out == ""
    assert err == (
        f"enforcer: error: {path} holds 2 base64 values: pass --line N to explain its 0-based "
        "line N\n"
    )
    code, out, _ = run(
        capsys, "explain", str(path), "--format", "confluent", "--line", "1", "--json",
        "--policy", str(policy),
    )  # fmt: skip
    assert code == 0
    assert [i["path"] for i in json.loads(out)["identifiers"]] == [
        "contacts[0].email",
        "contacts[1].email",
    ]


@pytest.mark.parametrize("content", [b"{not base64}\n", b"YWJ\n", b"\n  \n"])
def test_explain_of_a_line_that_is_not_base64_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], policy: Path, tmp_path: Path, content: bytes
) -> None:
    """Not base64, or no value at all: one line naming the file, never its content."""
    path = tmp_path / "bad.b64"
    path.write_bytes(content)
    code, out, err = run(
        capsys, "explain", str(path), "--format", "confluent", "--policy", str(policy)
    )
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(path) in err
    assert "not base64" in err or "holds no value" in err
    assert "{not" not in err


@pytest.mark.parametrize("command", ["replay", "explain"])
def test_source_topic_chooses_a_mapping_that_names_topics(
    capsys: pytest.CaptureFixture[str], policy: Path, tmp_path: Path, command: str
) -> None:
    """A mapping limited to a topic reads a file's records only when they are said to
    come from it: without --source-topic the record is not read by the mapping (a plain
    identity event it is not: dead-lettered), with it the mapping reads it."""
    policy.write_text(
        POLICY.replace(
            "    - name: accounts\n", "    - name: accounts\n      topics: [identity.accounts]\n"
        )
    )
    data = tmp_path / "accounts.jsonl"
    data.write_bytes(_account() + b"\n")
    out = tmp_path / "out"
    base = (
        ["replay", "--from-file", str(data), "--out", str(out), "--no-progress"]
        if command == "replay"
        else ["explain", str(data), "--json"]
    )
    code, printed, err = run(capsys, *base, "--policy", str(policy))
    assert code in (0, 1), err
    text = printed + err
    assert ("1 dead-lettered" in text) if command == "replay" else ('"deadlettered"' in text)
    code, printed, err = run(
        capsys, *base, "--policy", str(policy), "--source-topic", "identity.accounts"
    )
    assert code in (0, 1), err
    text = printed + err
    assert ("1 redacted" in text) if command == "replay" else ('"redacted"' in text)


def test_replay_refuses_source_topic_with_a_topic(
    capsys: pytest.CaptureFixture[str], policy: Path, tmp_path: Path
) -> None:
    code, _, err = run(
        capsys, "replay", "--topic", "t", "--source-topic", "u", "--out", str(tmp_path)
    )
    assert code == 2 and err.count("\n") == 1 and "--source-topic goes with --from-file" in err
