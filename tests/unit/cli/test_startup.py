"""The command line starts light: lazy imports, --version, and a help text for every flag."""

from __future__ import annotations

import argparse
import platform
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from enforcer import __version__
from enforcer.cli import build_parser, main

from ...conftest import load_compiled_core

# Heavy or live-only packages that `import enforcer.cli` must not load.
LIVE_ONLY = ("faust", "aiokafka", "confluent_kafka", "mode")
# Loaded by every command that does work, but not needed to list the commands.
NOT_FOR_HELP = ("pydantic", "pydantic_settings", "phonenumbers", "asyncio")


def _imported_by(code: str) -> set[str]:
    """Top-level names of the modules that ``python -X importtime -c code`` imports."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_importing_the_cli_loads_no_kafka_client_and_no_pydantic() -> None:
    """`enforcer --help` stays fast: the Kafka stack and pydantic load only when a command runs."""
    imported = _imported_by("import enforcer.cli")
    assert "enforcer" in imported  # the probe itself works
    assert not imported & set(LIVE_ONLY)
    assert not imported & set(NOT_FOR_HELP)


def test_help_of_the_command_list_loads_no_kafka_client() -> None:
    """Building and printing the top-level help needs none of them either."""
    code = (
        "import contextlib, io\n"
        "from enforcer.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
    )
    imported = _imported_by(code)
    assert not imported & set(LIVE_ONLY + NOT_FOR_HELP)


def test_file_replay_does_not_load_the_kafka_stack() -> None:
    """Parsing a file replay's flags does not load Kafka clients."""
    code = (
        "from enforcer.cli import build_parser\n"
        "build_parser().parse_args(['replay', '--from-file', 'x', '--out', 'o'])\n"
    )
    assert not _imported_by(code) & set(LIVE_ONLY)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`enforcer --version` prints the package version and exits 0."""
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    core = "plain" if load_compiled_core().plain_requested() else "compiled"
    assert capsys.readouterr().out == (
        f"enforcer {__version__} (decision core: {core}; Python {platform.python_version()})\n"
    )


def test_the_version_said_is_the_packages() -> None:
    """``--version`` and ``enforcer_build_info`` say ``enforcer.__version__``, no longer the
    installed package's metadata: the two must not drift apart when the version changes."""
    pyproject = Path(__file__).parents[3] / "pyproject.toml"
    assert tomllib.loads(pyproject.read_text())["project"]["version"] == __version__


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


@pytest.mark.parametrize("command", ["replay", "explain", "policy", "schema", "sample"])
def test_every_flag_has_a_help_text(command: str) -> None:
    """Each flag and argument of the file commands explains itself in --help."""
    parsers = [_subparsers(build_parser())[command]]
    checked = 0
    while parsers:
        parser = parsers.pop()
        parser.populated()  # type: ignore[attr-defined]
        parsers += _subparsers(parser).values()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            checked += 1
            assert action.help, (command, action.option_strings or action.dest)
    assert checked > 1


def test_every_command_has_a_help_line() -> None:
    """The command list shows what each command does."""
    text = build_parser().format_help()
    for name in _subparsers(build_parser()):
        assert any(
            line.split()[:1] == [name] and len(line.split()) > 1 for line in text.splitlines()
        )


def test_run_flags_are_added_when_run_is_parsed() -> None:
    """The deferred `run` parser gets its flags from cli_run on first use."""
    args = build_parser().parse_args(["run", "--bootstrap-servers", "k:9092", "--mode", "audit"])
    assert (args.command, args.bootstrap_servers, args.mode) == ("run", "k:9092", "audit")


@pytest.mark.parametrize(
    ("words", "status"), [(["run", "--help"], 0), (["run", "--no-such-flag"], 2)]
)
def test_run_gives_the_signal_handlers_back_when_its_arguments_end_it(
    words: list[str], status: int
) -> None:
    """`run` takes SIGTERM and SIGINT over first thing; when the parser ends it (help, a
    bad flag) the process's own handlers are back, so a test process running main again
    is not ended by a later signal meant for something else."""
    before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    try:
        ended: int | str | None = main(words)
    except SystemExit as exc:
        ended = exc.code
    assert ended == status
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


# Flags whose destination is spelled differently from the setting they override.
SETTING_OF_FLAG = {"--policy": "policy_file", "--phone-region": "phone_default_region"}
# Flags named like a setting that take no ENFORCER_* variable: their default is their own.
NOT_FROM_THE_ENVIRONMENT = {
    ("sample", "--schema-registry-url"),
    ("explain", "--source-topic"),
    ("replay", "--source-topic"),
    ("replay", "--ledger-topic"),
    ("remediate plan", "--ledger-topic"),
}


def _flags_backed_by_settings() -> list[tuple[str, str, str]]:
    """(command, flag, help) of every flag that overrides an ``ENFORCER_*`` setting."""
    from enforcer.config.settings import EnforcerSettings

    flags = []
    parsers = [("", build_parser())]
    while parsers:
        name, parser = parsers.pop()
        if hasattr(parser, "populated"):
            parser.populated()
        parsers += [(f"{name} {sub}".strip(), p) for sub, p in _subparsers(parser).items()]
        for action in parser._actions:
            for flag in action.option_strings:
                field = SETTING_OF_FLAG.get(flag, action.dest)
                if (name, flag) in NOT_FROM_THE_ENVIRONMENT:
                    continue
                if field in EnforcerSettings.model_fields:
                    flags.append((name, flag, str(action.help)))
    return flags


def test_every_flag_of_a_setting_names_its_variable_in_help() -> None:
    """README and contract: each flag's --help names its ENFORCER_* variable, so an
    operator who sets ENFORCER_MODE or ENFORCER_POLICY_FILE knows every command obeys it."""
    flags = _flags_backed_by_settings()
    assert {("run", "--mode"), ("replay", "--policy"), ("explain", "--destination")} <= {
        (command, flag) for command, flag, _ in flags
    }
    from enforcer.config.settings import EnforcerSettings

    missing = []
    for command, flag, help_text in flags:
        variable = "ENFORCER_" + SETTING_OF_FLAG.get(flag, flag[2:].replace("-", "_")).upper()
        assert variable[len("ENFORCER_") :].lower() in EnforcerSettings.model_fields, variable
        if variable not in help_text:
            missing.append(f"{command} {flag}: {variable}")
    assert not missing, missing
