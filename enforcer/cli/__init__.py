"""The ``enforcer`` command: run | lag-exporter | replay | explain | remediate | policy |
schema | sample | keygen.

One module per command (``enforcer/cli/<command>.py``), each with ``add_flags`` and
``command``. Nothing of a command is imported until that command is parsed or run:
``enforcer --help`` loads neither pydantic nor the Kafka stack, and file commands never
load Kafka clients.

Every failure a user can cause ends as one line on stderr and exit status 2
(usage or configuration) or 1 (violations with --fail-on-violation, tests failed, an
apply stopped, an internal error); never a traceback. A
reader that stops reading standard output (``| head``) ends the command quietly, with
exit status 141, as SIGPIPE ends a shell tool.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any, NoReturn

from enforcer.cli.common import EXIT_FINDINGS, EXIT_USAGE, Parser, UsageError

__all__ = ["UsageError", "main"]


class _Version(argparse.Action):
    """``--version``: the package's version, and whether its decision core is compiled."""

    def __init__(self, option_strings: Sequence[str], dest: str, **_: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        from enforcer.outputs.build_info import version_line

        print(version_line())
        parser.exit()


DESCRIPTION = (
    "Keep identifiers out of audience building unless they were given for it: the live "
    "agent on Kafka, and the same decision over history, for one record, or for a policy's "
    "tests."
)
EPILOG = (
    "'enforcer COMMAND --help' shows a command's flags. Exit status: 0 done (violations "
    "found by a replay included, unless --fail-on-violation), 1 a failure the command "
    "names (violations with --fail-on-violation, a policy test failing, an apply "
    "stopped, an internal error), 2 a usage or configuration error (one line on "
    "stderr), 141 its output closed by its reader."
)

# name, help, module under enforcer.cli: in the order `enforcer --help` lists them.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("run", "run the live enforcer on Kafka", "run"),
    ("lag-exporter", "serve the group's lag, read from the broker, for Prometheus", "lag"),
    ("replay", "run the decision over history", "replay"),
    ("explain", "show the decision for one record", "explain"),
    ("remediate", "plan and apply retractions of what a sink's history exposes", "remediate"),
    ("policy", "check, test or describe policies", "policy"),
    ("schema", "print the JSON Schema of an input format", "schema"),
    ("sample", "write sample identity events (JSON Lines) like the 2019 case", "sample"),
    ("keygen", "print a new random fingerprint key", "keygen"),
)


def _command_module(module: str) -> Any:
    return import_module(f"enforcer.cli.{module}")


def _flags_of(module: str) -> Callable[[Parser], None]:
    def populate(parser: Parser) -> None:
        _command_module(module).add_flags(parser)

    return populate


def build_parser() -> argparse.ArgumentParser:
    """The ``enforcer`` parser; each command's flags are added when it is parsed."""
    parser = Parser(prog="enforcer", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, help_text, module in COMMANDS:
        commands.add_parser(name, help=help_text, populate=_flags_of(module))
    return parser


# Errors a user can cause (exit 2), by module and class. Each is looked up only in a
# module already imported: an exception of a class exists only once its module is
# loaded, and importing them all up front would load the Kafka stack for every command.
_USAGE_ERRORS = (
    ("enforcer.core.policy.load", "PolicyLoadError"),
    ("enforcer.core.policy.compiled", "PolicyConfigError"),
    ("enforcer.core.fingerprint", "FingerprintKeyError"),
    ("enforcer.config.settings", "UnknownVariableError"),
    ("enforcer.config.kafka_security", "KafkaSecurityError"),
    ("enforcer.config.client_properties", "ClientPropertiesError"),
    ("enforcer.replay.run", "ReplayInputError"),
    ("enforcer.replay.ledger", "LedgerInputError"),
    ("enforcer.remediate.plan", "PlanError"),
    ("enforcer.live.admin", "TopicSetupError"),
    ("enforcer.cli.run", "HttpPortError"),
    ("enforcer.cli.run", "DataDirError"),
)


def _is_usage_error(exc: Exception) -> bool:
    if isinstance(exc, UsageError):
        return True
    for module, name in _USAGE_ERRORS:
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return True
    return False


EXIT_READER_GONE = 128 + 13
"""The status of a command whose reader stopped reading (``| head``): what a shell tool
killed by SIGPIPE (13) ends with."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``enforcer`` console script."""
    try:
        try:
            return _main_of(argv)
        finally:
            # What is still buffered is written here, where a reader that stopped is
            # seen, not by the interpreter at exit ("Exception ignored ...").
            sys.stdout.flush()
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """Nothing more is written to stdout: its reader stopped reading (``| head``), which
    is not an error. Standard output is pointed at ``os.devnull`` so that the
    interpreter's own flush at exit finds nowhere to fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a file descriptor (a test's captured stdout)
        pass
    return EXIT_READER_GONE


def _stdout_reader_gone() -> bool:
    """Whether standard output is a pipe nobody reads any more (poll says POLLERR on
    the write end of a pipe whose read end is closed). Any other broken pipe (a socket,
    a child process) is not this."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)  # errors are always reported
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _main_of(argv: Sequence[str] | None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["run"]:
        # First of all: a SIGTERM from here on ends the worker cleanly, start-up included.
        from enforcer.live.signals import install_stop_signal, uninstall_stop_signal

        install_stop_signal()
        try:
            return _main(argv)
        finally:
            # Given back however the command ends (`run --help` and bad arguments exit
            # in the parser): a process that runs main again keeps its own handlers.
            uninstall_stop_signal()
    return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        module = next(module for name, _, module in COMMANDS if name == args.command)
        status: int = _command_module(module).command(args)
        return status
    except KeyboardInterrupt:
        print("enforcer: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if isinstance(exc, BrokenPipeError) and _stdout_reader_gone():
            return _reader_gone()
        if _is_usage_error(exc):
            print(f"enforcer: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if os.environ.get("ENFORCER_DEBUG"):
            raise
        # Only the type: a message could quote input data.
        print(
            f"enforcer: internal error ({type(exc).__name__}); "
            "set ENFORCER_DEBUG=1 to see the traceback",
            file=sys.stderr,
        )
        return EXIT_FINDINGS
