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
        # Before Kafka's times start: refused here, not by the broker once asked.
        (["--since", "1969-12-31T23:59:59Z"], "argument --since: a time before 1970-01-01"),
        (["--until", "0001-01-01T00:00:00Z"], "argument --until: a time before 1970-01-01"),
        (["--since", "1970-01-01T00:59:59+01:00"], "argument --since: a time before"),
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


def _empty_plan(tmp_path: Path, *, with_exposure: bool = False) -> Path:
    """A plan file with nothing to retract, for refusals that come before any read
    (``with_exposure``: as `plan --with-exposure` writes it, with nothing to seed)."""
    from enforcer.remediate.plan import HistoryCounts, Plan, write_plan

    path = tmp_path / "plan.json"
    plan = Plan(
        "sink", "sha256:" + "1" * 64, "0123456789abcdef", "off", None, None, (),
        HistoryCounts(), 0, {}, {}, {}, 0, (), () if with_exposure else None,
    )  # fmt: skip
    write_plan(path, plan.with_id())
    return path


@pytest.mark.parametrize("exposure", [[], ["--exposure-topic", "enforcer.exposure"]])
def test_apply_with_an_unreachable_broker(
    exposure: list[str], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """One line and exit 2, said by the quick check `plan` makes, before a transactional
    producer would wait half a minute and librdkafka print its own lines (on file
    descriptor 2: hence capfd). Any plan may name an exposure topic, not only one made
    with --with-exposure."""
    path = _empty_plan(tmp_path)
    assert main(["remediate", "apply", str(path), *exposure]) == 2
    err = capfd.readouterr().err
    assert err == (
        "enforcer: error: cannot reach Kafka at 127.0.0.1:9 (--bootstrap-servers, "
        "ENFORCER_BOOTSTRAP_SERVERS)\n"
    )


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--group-id", "x"), ("--source-topic", "x"), ("--source-partitioner", "crc32")],
)
def test_apply_refuses_an_exposure_flag_without_an_exposure_topic(
    flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--group-id``, ``--source-topic`` and ``--source-partitioner`` are for
    ``--exposure-topic`` alone: given without one (flag or ENFORCER_EXPOSURE_TOPIC), they
    would be ignored, and the apply would leave exposure stale while its user meant to
    keep it right."""
    path = _empty_plan(tmp_path)
    _one_line_exit_2(
        ["remediate", "apply", str(path), flag, value], capsys, f"{flag} goes with --exposure-topic"
    )


def test_plan_with_a_page_that_cannot_be_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory given for the page is named as the page, before the history is read
    (nothing listens on the bootstrap servers) and before the plan file is written."""
    page = tmp_path / "adir"
    page.mkdir()
    out = tmp_path / "y.json"
    argv = ["remediate", "plan", "--out", str(out), "--html", str(page)]
    _one_line_exit_2(argv, capsys, f"cannot write {page}: it is a directory")
    _one_line_exit_2([*argv[:3], str(page), "--html", str(out)], capsys, f"{page}: it is a")
    _one_line_exit_2([*argv[:5], str(out)], capsys, "--out and --html name the same file")
    assert list(tmp_path.iterdir()) == [page]


def test_plan_with_a_page_that_is_the_plan_file_by_another_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path through ``..`` or a symbolic link to the plan file is the same file: the
    page written over the plan would leave an HTML file where the plan should be."""
    (tmp_path / "d").mkdir()
    out = tmp_path / "p.json"
    (tmp_path / "link.json").symlink_to(out)
    for page in (tmp_path / "d" / ".." / "p.json", tmp_path / "link.json"):
        argv = ["remediate", "plan", "--out", str(out), "--html", str(page)]
        _one_line_exit_2(argv, capsys, "--out and --html name the same file")
    assert not out.exists()


def test_the_plan_and_its_page_are_written_both_or_neither(tmp_path: Path) -> None:
    """A page that cannot be written (its directory is a file) leaves no plan file
    behind, nor any temporary file."""
    from enforcer.cli.common import UsageError
    from enforcer.cli.remediate import _write_all

    blocker = tmp_path / "afile"
    blocker.write_text("")
    out, page = tmp_path / "y.json", blocker / "page.html"
    with pytest.raises(UsageError, match=f"cannot write {page}: "):
        _write_all([(out, b"{}"), (page, b"<html>")])
    assert list(tmp_path.iterdir()) == [blocker]
    _write_all([(out, b"{}"), (tmp_path / "page.html", b"<html>")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "page.html", "y.json"]
    assert out.read_bytes() == b"{}"


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_a_transactional_id_in_the_client_properties_is_remediate_s_own(
    command: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Refused in one line, before any Kafka client, saying what is true of remediate:
    its transactional id is derived from the plan's id (ENFORCER_INSTANCE_ID, the
    workers' advice, does nothing here)."""
    config = tmp_path / "client.properties"
    config.write_text("transactional.id=mine\n")
    path = _empty_plan(tmp_path)
    argv = (
        ["remediate", "apply", str(path)]
        if command == "apply"
        else ["remediate", "plan", "--out", str(tmp_path / "out.json")]
    )
    assert main([*argv, "--kafka-config", str(config)]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "transactional.id is refused" in err, err
    assert "derives its own from the plan's id" in err and "ENFORCER_INSTANCE_ID" not in err


def test_a_registry_outage_during_a_plan_names_remediate_plan() -> None:
    """The lines about an unreachable schema registry are replay's own, with the name of
    the command that reads (tests/unit/replay/test_replay_schemas.py)."""
    from enforcer.cli.remediate import _formats
    from enforcer.config.settings import EnforcerSettings
    from enforcer.core.policy.load import load_policy

    settings = EnforcerSettings(schema_registry_url="http://127.0.0.1:9")
    formats = _formats(settings, load_policy(None))
    assert formats is not None and formats.command == "remediate plan"


def test_apply_refuses_a_plan_made_to_seed_exposure_without_an_exposure_topic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plan made with --with-exposure is made to seed exposure: applied without an
    exposure topic it would write its retractions and seed nothing, silently. Refused
    before anything is read or written, saying what to give instead."""
    path = _empty_plan(tmp_path, with_exposure=True)
    _one_line_exit_2(
        ["remediate", "apply", str(path)],
        capsys,
        f"{path}: the plan carries exposure to seed (plan --with-exposure); give the "
        "exposure topic (--exposure-topic or ENFORCER_EXPOSURE_TOPIC)",
    )


def test_plan_with_a_previous_key_that_is_not_one_it_can_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The previous key file is checked as the worker checks it: the key in force, or a
    missing file, is one line naming the setting, before any Kafka client starts."""
    key = generate_key()
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", key)
    same = tmp_path / "same.key"
    same.write_text(key)
    same.chmod(0o600)
    argv = ["remediate", "plan", "--out", str(tmp_path / "p.json")]
    flag = "--previous-fingerprint-key-file"
    _one_line_exit_2([*argv, flag, str(same)], capsys, "holds the key in force")
    _one_line_exit_2(
        [*argv, flag, str(tmp_path / "absent.key")], capsys, "ENFORCER_PREVIOUS_FINGERPRINT_KEY"
    )


def test_the_bar_of_a_plan_counts_offsets_markers_and_aborted_records_included() -> None:
    """Records come merged across partitions, with gaps where a transaction's marker or
    an aborted record was: the bar moves by offsets, and reaches each partition's last
    record read."""
    from enforcer.cli.remediate import advancing
    from enforcer.outputs.progress import ProgressBar
    from enforcer.remediate.history import SinkRecord

    class Bar(ProgressBar):
        def __init__(self) -> None:
            super().__init__(False, 0, "rec", "plan")
            self.moved: list[int] = []

        def advance(self, amount: int) -> None:
            self.moved.append(amount)

    def record(partition: int, offset: int) -> SinkRecord:
        return SinkRecord(None, b"{}", (), partition, offset, 0)

    read = [record(0, 5), record(1, 0), record(0, 7), record(1, 1), record(0, 8)]
    bar = Bar()
    assert list(advancing(iter(read), bar, {0: 5, 1: 0})) == read
    assert bar.moved == [1, 1, 2, 1, 1]
    assert sum(bar.moved) == (8 + 1 - 5) + (1 + 1 - 0)


def test_plan_names_each_key_of_retractions_it_could_not_match(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One warning line per other key id, with the count and the flag to give; no
    fingerprint and no value in it."""
    from enforcer.cli.remediate import _warn_of_other_key_retractions

    _warn_of_other_key_retractions({"fedcba9876543210": 1200, "0011223344556677": 1}, "a" * 16)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        "enforcer: warning: 1 retraction in the history made under key id 0011223344556677,"
    )
    assert "1,200 retractions in the history made under key id fedcba9876543210" in lines[1]
    assert all(
        "--previous-fingerprint-key-file" in line and "hmac-sha256" not in line for line in lines
    )
