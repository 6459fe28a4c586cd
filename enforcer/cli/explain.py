"""``enforcer explain``: one record, each identifier's decision and the rule behind it.

Shows types, normalized purposes and decisions, never identifier values. With a
purpose ledger (docs/ledger.md) it shows, per identifier, what the ledger grants (or that it
does not know the identifier) beside what the event claims. A record in a format of its
own (a framed value, ``--format confluent`` for one in base64, or plain JSON a mapping
reads) also shows where each identifier sits in it: its path (docs/formats.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enforcer.cli.common import (
    EXIT_OK,
    LEDGER_FILE_HELP,
    Parser,
    UsageError,
    ledger_as_of_flag,
    policy_from,
    policy_options,
    schema_registry_from,
    schema_registry_options,
    schema_registry_settings,
    settings_from,
)
from enforcer.core.ledger_view import LedgerMode
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.evaluate import Decision, Judgement
from enforcer.core.purposes import within
from enforcer.core.record_format import Decoded
from enforcer.core.step import Outcome, OutcomeKind, Step

if TYPE_CHECKING:
    from enforcer.config.settings import EnforcerSettings
    from enforcer.core.record_format import RecordReader
    from enforcer.replay.ledger import LoadedLedger


def explanation(
    step: Step, outcome: Outcome, decision: Decision | None, ledger: LoadedLedger | None = None
) -> dict[str, Any]:
    """The explanation as a JSON-ready object; ``ledger`` is the one ``step`` judges by."""
    policy = step.policy
    result: dict[str, Any] = {
        "outcome": outcome.kind.value,
        "policy_version": policy.version,
        "policy": policy.origin,
        "mode": policy.mode.value,
        "destination": policy.destination,
        "allowed_purposes": list(policy.allowed),
    }
    by_ledger = ledger is not None and step.ledger_mode is not LedgerMode.OFF
    if ledger is not None:
        summary = ledger.summary(step.ledger_mode)
        result["ledger"] = summary.model_dump(
            mode="json", exclude={"identifiers_judged", "purpose_not_granted"}
        )
    if outcome.kind is OutcomeKind.DEADLETTERED:
        result["dead_letter"] = {
            "reason": str(outcome.error_reason),
            "message": outcome.error_message,
        }
        return result
    if outcome.violation is not None:
        result["violation_action"] = outcome.violation["action"]
    result["identifiers"] = [
        {
            "index": index,
            "type": j.type,
            "purposes": list(j.purposes),
            "decision": j.rule.action.value if j.rule else "pass",
            "rule": j.rule_name,
            "why": _ledger_why(step.ledger_mode, j) + _why(policy, j)
            if by_ledger
            else _why(policy, j),
            **(_ledger_fields(j) if by_ledger else {}),
        }
        for index, j in enumerate(decision.identifiers if decision else ())
    ]
    return result


def _ledger_fields(judgement: Judgement) -> dict[str, Any]:
    """What the ledger grants the identifier (``None``: unknown to it) and what the
    event claimed."""
    known = judgement.from_ledger
    return {
        "ledger": "known" if known else "unknown",
        "ledger_purposes": list(judgement.purposes) if known else None,
        "claimed_purposes": list(judgement.claimed or ()),
    }


def _ledger_why(mode: LedgerMode, judgement: Judgement) -> str:
    """How the ledger decided what the identifier is judged by."""
    if not judgement.from_ledger:
        if mode is LedgerMode.FALLBACK:
            return "unknown to the ledger, so judged by the event's purposes (fallback): "
        return "unknown to the ledger, so judged as having no purpose (authoritative): "
    granted = ", ".join(judgement.purposes) or "nothing"
    if judgement.not_granted:
        claimed = ", ".join(judgement.claimed or ())
        return (
            f"the event claims {claimed}, which the ledger does not grant (it grants "
            f"{granted}); by the ledger's purposes: "
        )
    return f"judged by the ledger's purposes ({granted}): "


def _why(policy: Policy, judgement: Judgement) -> str:
    """The rule's meaning; for a pass, the purpose that let it through when there is one."""
    rule = judgement.rule
    if rule is not None:
        if policy.is_allow_list(rule):
            allowed = ", ".join(policy.allowed)
            return f"{rule.description} ({policy.destination} allows only: {allowed})"
        return rule.description
    for purpose in judgement.purposes:
        for namespace in policy.allowed:
            if within(purpose, namespace):
                return f"{purpose} lies within {namespace}, which {policy.destination} allows"
    return "no rule matched" if judgement.purposes else "no rule matched (no purpose)"


def render_text(data: dict[str, Any]) -> str:
    """The explanation for a terminal."""
    lines = [
        f"outcome: {data['outcome']}"
        + (
            f" (enforce mode would have {data['violation_action']} it)"
            if data["mode"] == "audit" and "violation_action" in data
            else ""
        ),
        f"policy:  {data['policy_version']} ({data['policy']}), mode {data['mode']}, "
        f"destination {data['destination']}"
        + (
            f" (allows only: {', '.join(data['allowed_purposes'])})"
            if data["allowed_purposes"]
            else ""
        ),
    ]
    if "ledger" in data:
        lines.append(_ledger_line(data["ledger"]))
    if "dead_letter" in data:
        letter = data["dead_letter"]
        lines.append(f"dead letter: {letter['reason']}: {letter['message']}")
        return "\n".join(lines)
    if not data["identifiers"]:
        lines.append("no identifiers")
    for item in data["identifiers"]:
        purposes = ", ".join(item["purposes"]) or "(none)"
        verdict = (
            item["decision"]
            if item["rule"] is None
            else (f"{item['decision']}  by rule {item['rule']}")
        )
        label = "judged by" if "ledger" in item else "purposes"
        at = f"at {item['path']}; " if "path" in item else ""
        lines.append(f"  [{item['index']}] {item['type']:<10} {at}{label}: {purposes}")
        if "ledger" in item:
            granted = item["ledger_purposes"]
            ledger = (
                "unknown to the ledger"
                if granted is None
                else ", ".join(granted) or "(known, nothing granted)"
            )
            claimed = ", ".join(item["claimed_purposes"]) or "(none)"
            lines.append(f"      ledger: {ledger}; the event claims: {claimed}")
        lines.append(f"      -> {verdict}: {item['why']}" if item["why"] else f"      -> {verdict}")
    return "\n".join(lines)


def _ledger_line(ledger: dict[str, Any]) -> str:
    source = ledger["source"]
    when = f" as of {ledger['as_of']}" if ledger["as_of"] else ""
    state, records = ledger["state"], ledger["records"]
    invalid = f", {records['invalid']:,} invalid records skipped" if records["invalid"] else ""
    return (
        f"ledger:  {source['kind']} {source['name']}{when}, setting {ledger['mode']}: "
        f"{state['subjects']:,} subjects, {state['identifiers']:,} identifiers{invalid}"
    )


def add_flags(explain: Parser) -> None:
    """The flags of ``explain``."""
    explain.add_argument("file", nargs="?", default="-", help="record file, or - for stdin")
    explain.add_argument(
        "--line", type=int, metavar="N", help="take 0-based line N of a JSONL file"
    )
    explain.add_argument(
        "--format",
        choices=("json", "confluent"),
        default="json",
        help="json: the record's value as it is (JSON, or a framed value's bytes); "
        "confluent: its base64, one value a line, as `enforcer sample --format avro` "
        "writes it",
    )
    explain.add_argument(
        "--source-topic",
        metavar="NAME",
        help="the topic the record is taken to come from, for field mappings that name "
        "topics (default: the file's name, or stdin)",
    )
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.add_argument("--ledger-file", type=Path, metavar="FILE", help=LEDGER_FILE_HELP)
    ledger_as_of_flag(explain)
    policy_options(explain)
    schema_registry_options(explain, waits=False)


def command(args: argparse.Namespace) -> int:
    """Judge the record and print its explanation."""
    if args.ledger_as_of is not None and args.ledger_file is None:
        raise UsageError("--ledger-as-of goes with --ledger-file")
    import orjson

    from enforcer.core.clock import SystemClock
    from enforcer.core.fingerprint import Fingerprinter, generate_key
    from enforcer.core.step import InputRecord, Source

    settings = settings_from(
        policy_file=args.policy,
        destination=args.destination,
        mode=args.mode,
        phone_default_region=args.phone_region,
        **schema_registry_settings(args),
    )
    name = args.source_topic or ("stdin" if args.file == "-" else Path(args.file).name)
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"{args.file}: {exc.strerror}") from None
    offset = 0
    if args.line is not None:
        lines = numbered_lines(data)
        if not 0 <= args.line < len(lines):
            raise UsageError(f"{args.file} has no line {args.line} (it has {len(lines)})")
        data, offset = lines[args.line], args.line
    if args.format == "confluent":
        data = _from_base64(args.file, data, args.line)
    framed = data[:1] == b"\x00"  # the Confluent wire format's magic byte (docs/formats.md)
    if not framed and args.format == "json":
        _refuse_json_lines(args.file, data)
        data = data.strip()
    # explain shows decisions, not fingerprints, so it needs no secret key: the ledger is
    # fingerprinted with the same throw-away key as the record.
    fingerprinter = Fingerprinter(generate_key().encode(), settings.phone_default_region)
    policy = policy_from(settings)
    policy.ledger_mode(args.ledger_file is not None)  # refuses a policy wanting a ledger
    ledger = None
    if args.ledger_file is not None:
        from enforcer.ledger.lookup import WholeLedger
        from enforcer.replay.ledger import load_ledger_file

        ledger = load_ledger_file(args.ledger_file, fingerprinter, args.ledger_as_of)
    lookup = WholeLedger(ledger.replay.state) if ledger is not None else None
    reader = _reader(settings, policy, data)
    step = Step(policy, fingerprinter, SystemClock(), lookup, reader=reader)
    source = Source(name, 0, offset)
    outcome, decision = step.explain(InputRecord(None, data, (), source))
    result = explanation(step, outcome, decision, ledger)
    # The reader does no I/O: reading the record again gives the decided event's paths.
    decoded = reader.read(*source, data) if reader is not None else None
    if isinstance(decoded, Decoded):
        _add_paths(result, decoded, settings.phone_default_region)
    elif decoded is None and not framed:
        _add_phone_formats(result, data, settings.phone_default_region)
    print(
        orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
        if args.json
        else render_text(result)
    )
    return EXIT_OK


def _reader(settings: EnforcerSettings, policy: Policy, value: bytes) -> RecordReader | None:
    """The record reader, with the schema ``value`` names fetched first (``None``
    without a registry or field mappings). An unreachable registry is one line, exit 2:
    explain decides one record now or not at all, and never calls an outage bad input."""
    from enforcer.live.schemas import schema_loader, step_reader

    registry = schema_registry_from(settings)
    if registry is None:
        return step_reader(policy, None)
    from enforcer.formats.registry import RegistryUnavailableError

    loader = schema_loader(registry)
    try:
        loader.load(loader.missing([value]))
    except RegistryUnavailableError as exc:
        raise UsageError(f"{exc}; the record was not decided") from None
    return step_reader(policy, loader)


def numbered_lines(data: bytes) -> list[bytes]:
    """The lines of a file as replay numbers them (docs/contract.md: command line): ended
    by a line feed only, a carriage return before it dropped. ``bytes.splitlines`` also
    ends a line at a lone carriage return, which JSON allows between tokens: line N was
    then another record than replay's offset N."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the last line's own line feed ends no further line
    return [line.rstrip(b"\r") for line in lines]


def _from_base64(file: str, data: bytes, line: int | None) -> bytes:
    """The value of a ``--format confluent`` record: its one base64 line decoded (the
    rules of ``replay --format confluent``). Anything else is a usage error."""
    from enforcer.replay.sources.base64_lines import decode_line

    where = file if line is None else f"{file} line {line}"
    lines = [text for text in data.splitlines() if text.strip()]
    if not lines:
        raise UsageError(f"{where} holds no value: --format confluent reads one base64 value")
    if len(lines) > 1:
        raise UsageError(
            f"{file} holds {len(lines)} base64 values: pass --line N to explain its 0-based line N"
        )
    value = decode_line(lines[0])
    if isinstance(value, str):
        raise UsageError(f"{where}: {value}")
    return value


def _add_paths(result: dict[str, Any], decoded: Decoded, region: str) -> None:
    """Say where each identifier sits in the record (its path, never its value), and of
    each phone number whether it fingerprints as E.164."""
    from enforcer.core.fingerprint import phone_e164

    identifiers = decoded.event.identifiers
    for number, item in enumerate(result.get("identifiers", ())):
        index = item["index"]
        result["identifiers"][number] = {"index": index, "path": decoded.locations[index], **item}
        if item["type"] == "phone":
            valid = phone_e164(identifiers[index].value, region) is not None
            result["identifiers"][number]["phone_format"] = (
                "e164" if valid else "not a valid number: separators removed"
            )


def _refuse_json_lines(file: str, data: bytes) -> None:
    """Refuse several records at once: explained whole, a JSON Lines file is one invalid
    record, and its dead letter would say nothing about the records in it. A single
    record spread over several lines (pretty-printed JSON) is still explained."""

    lines = [line for line in numbered_lines(data) if line.strip()]
    if len(lines) < 2:
        return
    try:
        _json_of(data)
    except ValueError:
        raise UsageError(
            f"{file} holds {len(lines)} non-blank lines and is not one JSON record: "
            "pass --line N to explain its 0-based line N"
        ) from None


def _json_of(data: bytes) -> Any:
    """``data`` parsed as JSON, also when it holds a number beyond a float's range
    (``1e400``: valid JSON, and a valid event, that orjson refuses). Raises
    ``ValueError`` for what is no JSON (NaN and Infinity included)."""
    import json

    import orjson

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(data, parse_constant=refuse)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _add_phone_formats(result: dict[str, Any], data: bytes, region: str) -> None:
    """Say of each phone number whether it fingerprints as E.164 (never its value)."""

    from enforcer.core.fingerprint import phone_e164

    if "identifiers" not in result:
        return
    written = _json_of(data).get("identifiers")  # judged, so a valid event ...
    if not isinstance(written, list):  # ... or a record a field mapping read
        return
    for item in result["identifiers"]:
        if item["type"] == "phone":
            valid = phone_e164(written[item["index"]]["value"], region) is not None
            item["phone_format"] = "e164" if valid else "not a valid number: separators removed"
