"""What the parsers accept and what their help says: no abbreviations, defaults shown,
help texts that promise only what a command does, ``run --phone-region``."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from enforcer.cli import build_parser, main
from enforcer.cli.common import UsageError

COMMANDS = (
    "run",
    "lag-exporter",
    "replay",
    "explain",
    "remediate",
    "policy",
    "schema",
    "sample",
    "keygen",
)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _every_parser() -> list[tuple[str, argparse.ArgumentParser]]:
    """The top-level parser and every command's (and sub-command's), with their flags."""
    found: list[tuple[str, argparse.ArgumentParser]] = []
    pending: list[tuple[str, argparse.ArgumentParser]] = [("enforcer", build_parser())]
    while pending:
        name, parser = pending.pop()
        parser.populated()  # type: ignore[attr-defined]
        found.append((name, parser))
        pending += [(f"{name} {sub}", p) for sub, p in _subparsers(parser).items()]
    return found


def test_every_parser_refuses_abbreviations() -> None:
    """allow_abbrev is off everywhere, the sub-commands' parsers included."""
    parsers = _every_parser()
    assert {name.split()[1] for name, _ in parsers if " " in name} == set(COMMANDS)
    assert [name for name, parser in parsers if parser.allow_abbrev] == []


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--bootstrap-server", "k:9092"],
        ["lag-exporter", "--bootstrap", "k:9092"],
        ["replay", "--fail-on", "--from-file", "x", "--out", "o"],
        ["explain", "--ledger", "l.jsonl", "x.json"],
    ],
)
def test_an_abbreviated_flag_is_refused(argv: list[str]) -> None:
    """Refused by name instead of being taken for the long flag (parsed only: a `run`
    that accepted it would start a worker)."""
    with pytest.raises(UsageError, match=f"unrecognized arguments: {argv[1]}"):
        build_parser().parse_args(argv)


def test_an_abbreviated_flag_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "x.json", "--ledger"]) == 2
    assert capsys.readouterr().err == "enforcer: error: unrecognized arguments: --ledger\n"


def test_the_top_level_help_describes_the_tool_in_plain_words() -> None:
    """No docstring fragment: no reST markup, no list of commands cut off mid-line."""
    text = build_parser().format_help()
    description = text.split("\n\n")[1]
    assert "``" not in text
    assert description.startswith("Keep identifiers out of audience building")
    assert description.rstrip().endswith(".")
    assert "enforcer COMMAND --help" in text and "Exit status" in text


def _help(command: str) -> str:
    return dict(_every_parser())[f"enforcer {command}"].format_help()


def test_help_shows_defaults_and_never_none() -> None:
    """A flag with a default says it; one that defaults to None (so that its variable
    shows through) gets the setting's default, never "default: None"."""
    for name, parser in _every_parser():
        assert "default: None" not in parser.format_help(), name
    run = " ".join(_help("run").split())
    assert "(ENFORCER_COMMIT_INTERVAL, default: 1.0)" in run
    assert "(ENFORCER_SINK_TOPIC, default: audience.building)" in run
    assert "(ENFORCER_HTTP_PORT, default: 8080)" in run
    lag = " ".join(_help("lag-exporter").split())
    assert "(ENFORCER_GROUP_ID, default: purpose-enforcer)" in lag
    assert "ENFORCER_LOG_LEVEL (default info)" in lag
    explain = " ".join(_help("explain").split())
    assert "record file, or - for stdin (default: -)" in explain


def test_the_lag_exporter_promises_only_what_it_serves() -> None:
    """It serves /metrics and /healthz; /readyz would answer 404 there."""
    text = _help("lag-exporter")
    assert "/readyz" not in text
    assert "/metrics and /healthz" in " ".join(text.split())


def test_run_takes_the_phone_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """--phone-region reaches run's settings as ENFORCER_PHONE_DEFAULT_REGION does."""
    import enforcer.cli.run as cli_run

    given: dict[str, Any] = {}

    def settings_from(**overrides: Any) -> Any:
        given.update(overrides)
        raise UsageError("stop here: no broker in a unit test")

    monkeypatch.setattr(cli_run, "settings_from", settings_from)
    args = build_parser().parse_args(["run", "--phone-region", "GB"])
    with pytest.raises(UsageError, match="stop here"):
        cli_run.command(args)
    assert given["phone_default_region"] == "GB"


def test_run_refuses_an_unknown_phone_region_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked with the other settings, before anything connects."""
    monkeypatch.delenv("ENFORCER_PHONE_DEFAULT_REGION", raising=False)
    assert main(["run", "--phone-region", "Atlantis"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ENFORCER_PHONE_DEFAULT_REGION" in err
