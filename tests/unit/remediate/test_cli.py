"""``enforcer remediate``'s bad input: one line on stderr and exit 2, before any Kafka
client starts (docs/remediate.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from enforcer.cli import main
from enforcer.core.fingerprint import generate_key


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("ENFORCER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", generate_key())
    # Nothing listens there: a test that got as far as Kafka would fail, not hang.
    monkeypatch.setenv("ENFORCER_BOOTSTRAP_SERVERS", "127.0.0.1:9")


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], needle: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("enforcer: error: "), err
    assert needle in err


def test_apply_a_missing_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_exit_2(["remediate", "apply", str(tmp_path / "absent.json")], capsys, "No such file")


def test_apply_a_file_that_is_not_a_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{"plan_id": "x", "secret": "someone@example.com"}')
    _one_line_exit_2(["remediate", "apply", str(path)], capsys, "plan.json")
    assert "someone" not in capsys.readouterr().err


def test_apply_needs_a_batch_of_one_at_least(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["remediate", "apply", str(tmp_path / "p.json"), "--batch-size", "0"]
    _one_line_exit_2(argv, capsys, "--batch-size")


def test_plan_with_an_unreadable_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["remediate", "plan", "--out", str(tmp_path / "p.json")]
    _one_line_exit_2([*argv, "--policy", str(tmp_path / "absent.yaml")], capsys, "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: 1\nrules: 3\n")
    _one_line_exit_2([*argv, "--policy", str(bad)], capsys, "bad.yaml")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--since", "yesterday"], "RFC 3339"),
        (["--since", "2026-12-02T00:00:00Z", "--until", "2026-12-01T00:00:00Z"], "after"),
        (["--ledger-as-of", "2026-12-01T00:00:00Z"], "--ledger-as-of goes with"),
        ([], "--out"),
        (["--html", "/nonexistent/dir/plan.html"], "directory does not exist"),
    ],
)
def test_plan_flags(
    flags: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = [] if not flags else ["--out", str(tmp_path / "p.json")]
    _one_line_exit_2(["remediate", "plan", *out, *flags], capsys, needle)


@pytest.mark.parametrize("exposure", [[], ["--exposure-topic", "enforcer.exposure"]])
def test_apply_with_an_unreachable_broker(
    exposure: list[str], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """One line and exit 2, said by the quick check `plan` makes, before a transactional
    producer would wait half a minute and librdkafka print its own lines (on file
    descriptor 2: hence capfd). Any plan may name an exposure topic, not only one made
    with --with-exposure."""
    from enforcer.remediate.plan import HistoryCounts, Plan, write_plan

    path = tmp_path / "plan.json"
    plan = Plan(
        "sink", "sha256:" + "1" * 64, "0123456789abcdef", "off", None, None, (),
        HistoryCounts(), 0, {}, {}, {}, 0, (),
    )  # fmt: skip
    write_plan(path, plan.with_id())
    assert main(["remediate", "apply", str(path), *exposure]) == 2
    err = capfd.readouterr().err
    assert err == (
        "enforcer: error: cannot reach Kafka at 127.0.0.1:9 (--bootstrap-servers, "
        "ENFORCER_BOOTSTRAP_SERVERS)\n"
    )
