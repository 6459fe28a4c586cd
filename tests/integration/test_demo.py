"""The README's main job, as a user runs it (minus the broker start-up): the demo with
its purpose ledger prints a summary in which every record is accounted for, claims the
ledger does not grant are caught, withdrawals and the policy mistake fixed halfway are
retracted (each retraction naming an identifier that was forwarded), and the remediation
at the end applies its plan once; it names a log that
holds the worker's info lines, ends with an HTML report and three commands that work,
and prints the same numbers every time for the same seed.

Its Avro variant (``--format avro``, on the session's schema registry) accounts for
every record too, keeps every number given for two-factor authentication out of audience
building, and forwards records that confluent-kafka's own Avro deserializer reads under
the schema id they came with; its report and its plain-JSON next commands count what the
live run did."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from enforcer.demo.avro import SOURCE_TOPIC, SUBJECT, TOPICS
from enforcer.testing.consume import read_committed
from enforcer.testing.worker import ASSIGNED

RECORDS = "800"


def _demo(bootstrap: str, where: Path, *flags: str) -> str:
    """Run the demo in ``where`` (its state and working directory); return its stdout."""
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
    env["KAFKA_STATE_DIR"] = str(where)
    done = subprocess.run(
        [sys.executable, "-m", "enforcer.demo", "--bootstrap", bootstrap, *flags],
        env=env,
        cwd=where,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def _summary(out: str) -> str:
    """The numbers: from the header of the summary to the report line."""
    return out[out.index("what the enforcer did") : out.index("\nreport: ")]


def _next_commands(out: str) -> list[str]:
    return [line.strip() for line in out.split("\nnext, try:\n", 1)[1].splitlines()]


def _run(command: str, where: Path) -> str:
    """Run a printed next command as a user pastes it; return what it printed."""
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=where,
        env={k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout + done.stderr


def _count(label: str, text: str) -> int:
    found = re.search(rf"^ *{label}: +([\d,]+)", text, re.M)
    assert found, (label, text)
    return int(found.group(1).replace(",", ""))


@pytest.mark.timeout(600)
def test_the_demo_accounts_for_every_record_and_retracts_withdrawals(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    out = _demo(kafka_bootstrap, tmp_path / "first", "--records", RECORDS)
    assert "(every record has exactly one outcome)" in out, out
    not_granted = re.search(r"claims the ledger does not grant: ([\d,]+) identifiers", out)
    retracted = re.search(r"retractions sent to audience building: ([\d,]+)", out)
    assert not_granted and int(not_granted.group(1).replace(",", "")) > 0, out
    assert retracted and int(retracted.group(1).replace(",", "")) > 0, out
    # With exposure, every retraction names an identifier that was forwarded; the
    # policy mistake fixed halfway retracted what it had let through.
    exact = re.search(r"had forwarded \(exposure\): ([\d,]+) of ([\d,]+)", out)
    assert exact and exact.group(1) == exact.group(2) == retracted.group(1), out
    assert "'policy-changed': " in out, out
    # The remediation at the end: the plan's retractions applied once, then nothing.
    planned = re.search(r"plan: [\d,]+ identifiers still exposed; ([\d,]+) to retract", out)
    applied = re.search(r"applied: ([\d,]+) retractions written .*applied again: (.*)$", out, re.M)
    assert planned and applied and int(planned.group(1).replace(",", "")) > 0, out
    assert applied.group(1) == planned.group(1), out
    assert applied.group(2) == "nothing to write", out

    # The log it names holds the worker's info lines (the default level is info).
    logs = set(re.findall(r"its log: (\S+)", out))
    assert len(logs) == 1, out
    log = Path(logs.pop())
    assert " INFO enforcer" in log.read_text(), log

    # The HTML report exists, with the report.json beside it.
    report = re.search(r"^report: (\S+)$", out, re.M)
    assert report, out
    page = tmp_path / "first" / report.group(1)
    assert page.name == "report.html" and "<html" in page.read_text()[:500].lower()
    assert (page.parent / "report.json").is_file()

    # Three next commands, each of which works as printed.
    commands = _next_commands(out)
    assert len(commands) == 3, out
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path / "first",
            env={k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (command, done.stdout, done.stderr)

    # The same seed (the default, and given explicitly): the same numbers.
    again = _demo(kafka_bootstrap, tmp_path / "second", "--records", RECORDS, "--seed", "2019")
    assert _summary(again) == _summary(out)


@pytest.mark.timeout(600)
def test_the_avro_demo_keeps_2fa_numbers_out_and_forwards_avro_any_consumer_reads(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path
) -> None:
    where = tmp_path / "avro"
    out = _demo(
        kafka_bootstrap,
        where,
        "--format",
        "avro",
        "--records",
        RECORDS,
        "--schema-registry-url",
        schema_registry_url,
    )
    # The registry it was given, not one of its own.
    assert "starting a local schema registry" not in out, out
    summary = _summary(out)
    assert "(every record has exactly one outcome)" in summary, out
    live = {kind: _count(kind, summary) for kind in ("passed", "redacted", "dropped")}
    assert all(live.values()), out
    phones = re.search(
        r"\(two_factor_phone\): ([\d,]+) given for security only, (\d+) reached", out
    )
    assert phones and int(phones.group(1).replace(",", "")) > 0 and phones.group(2) == "0", out
    # A producer's framing mistakes are dead letters of the two new reasons.
    assert "'undecodable': " in summary and "'unknown-schema': " in summary, out

    # What was forwarded is read by confluent-kafka's Avro deserializer, a client other
    # than ours, by the schema id the records came with: no security-only value in it.
    forwarded = asyncio.run(
        read_committed(kafka_bootstrap, TOPICS["sink"], expected=live["passed"] + live["redacted"])
    )
    assert len(forwarded) == live["passed"] + live["redacted"]
    context = SerializationContext(SOURCE_TOPIC, MessageField.VALUE)
    with SchemaRegistryClient({"url": schema_registry_url, "timeout": 10}) as client:
        registered = client.get_latest_version(SUBJECT).schema_id
        deserialize = AvroDeserializer(client)
        read = [deserialize(r.value, context) for r in forwarded]
    assert {int.from_bytes((r.value or b"")[1:5], "big") for r in forwarded} == {registered}
    assert all(isinstance(r, dict) for r in read)
    assert all(r["two_factor_phone"] is None and r["recovery_email"] is None for r in read)

    # The report (replay over the topic, same registry) counts what the live run did.
    report = re.search(r"^report: (\S+)$", out, re.M)
    assert report, out
    page = where / report.group(1)
    assert page.name == "report.html" and "<html" in page.read_text()[:500].lower()
    counted = json.loads((page.parent / "report.json").read_text())["records"]
    assert {kind: counted[kind] for kind in live} == live, (counted, out)

    # Three next commands that need neither broker nor registry, each working as
    # printed: explain names the rule that stopped the 2FA number, and the same events
    # as plain JSON, read by the policy's mapping, get the live run's outcomes.
    commands = _next_commands(out)
    assert len(commands) == 3, out
    explained = _run(commands[0], where)
    assert "outcome: redacted" in explained and "security-only-purpose" in explained, explained
    replayed = _run(commands[1], where)
    assert (
        f"{live['passed']:,} passed, {live['redacted']:,} redacted, {live['dropped']:,} dropped"
        in replayed
    ), (replayed, out)
    assert "mapping 'account-contacts'" in _run(commands[2], where)


_DEMO_WITH_CTRL_C = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('enforcer.demo', run_name='__main__', alter_sys=True)"
)
"""``python -m enforcer.demo`` with Python's own Ctrl-C handler in place. A test run
started in the background by a non-interactive shell (``cmd &``, ``nohup``) ignores
SIGINT; every child inherits that, and Python then installs no handler of its own, so
the demo would never see the interrupt this test sends (it ran to its end, status 0)."""


def test_ctrl_c_ends_the_demo_in_one_line_and_stops_its_worker(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Interrupted once its worker runs, the demo stops the worker and says so in one
    line, status 130, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
    env["KAFKA_STATE_DIR"] = str(tmp_path)
    demo = subprocess.Popen(
        [sys.executable, "-c", _DEMO_WITH_CTRL_C, "--bootstrap", kafka_bootstrap,
         "--records", "200000"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            if line.startswith("started the enforcer"):
                log = Path(line.rsplit("its log: ", 1)[1].strip())
                break
        else:
            pytest.fail("the demo never started its worker")
        # Interrupted once the worker works: it must then be stopped, not left running.
        deadline = time.monotonic() + 90
        while ASSIGNED not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "the demo's worker never joined its group"
            time.sleep(0.2)
        demo.send_signal(signal.SIGINT)
        _, err = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 130, err
    assert err.strip().splitlines()[-1] == "the demo was interrupted; what it started is stopped", (
        err
    )
    assert "Traceback" not in err
    # The worker ended on the demo's way out: its log says it stopped.
    assert log.read_text().rstrip().endswith("stopped"), log.read_text()[-2000:]
