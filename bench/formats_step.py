"""The formats through the step (prints numbers; not a test).

CPU microseconds per record of :class:`enforcer.core.step.Step` with the formats' reader
(``policies/formats.yaml``), on the same account events (the sample of ``enforcer sample
--format``, docs/formats.md) in five shapes, side by side in one run:

- ``identifiers[]``: the identity event of docs/contract.md, the same identifiers and
  purposes in its list (the core's one pass; the baseline);
- ``mapped JSON``: the event as plain JSON in its own fields, read by the policy's
  mapping ``account-contacts-json``;
- ``avro``, ``protobuf``, ``json-schema``: framed (Confluent wire format), read by the
  mapping ``account-contacts`` and the schema's tags.

Rows: one passed record and one redacted record decided again and again (warm caches,
as ``bench_core.py``'s pass and redact rows), and the sample stream (a mix: about 70%
redacted, 30% passed) once over, from a new step.

    python -m bench.formats_step [--records 20000]
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from enforcer.core.clock import FixedClock, rfc3339
from enforcer.core.fingerprint import Fingerprinter, phone_e164
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord, OutcomeKind, Source, Step
from enforcer.demo.formats_sample import (
    FORMATS,
    FramedSample,
    avro_schema,
    json_schema,
    protobuf_file,
    sample_contacts,
)
from enforcer.formats.avro import avro_codec
from enforcer.formats.codec import Codec
from enforcer.formats.json_schema import json_schema_codec
from enforcer.formats.protobuf import protobuf_codec
from enforcer.formats.reader import build_reader
from enforcer.formats.registry import RegisteredSchema
from enforcer.testing.formats import OneIdRegistry

POLICY = Path(__file__).resolve().parents[1] / "policies" / "formats.yaml"
PLAIN_TOPIC = "identity.events"
"""Where the identity events are: no mapping reads plain JSON there."""
MAPPED_TOPIC = "identity.accounts"
"""Where the mapped plain JSON is (the policy's ``account-contacts-json``)."""
SHAPES = ("identifiers[]", "mapped JSON", *FORMATS)

# Fixed purposes of the sample's tagged fields (their schema tags, and the plain JSON
# mapping's lists).
_FIXED = {
    "two_factor_phone": ("phone", ["security.mfa"]),
    "recovery_email": ("email", ["security.account_recovery"]),
    "device_id": ("device_id", ["analytics.reporting"]),
}
_PASSING = {
    "event_id": "evt-0000000001-0123456789ab",
    "account_id": "acct-0012345",
    "occurred_at": 1569931200000,
    "two_factor_phone": None,
    "recovery_email": None,
    "contact_email": "user12345@example.com",
    "contact_email_purposes": ["marketing.advertising"],
    "device_id": None,
    "client": "ios-8.2.1",
}
_REDACTING = {
    **_PASSING,
    "two_factor_phone": "+1 (415) 555-2345",
    "device_id": "8d3f0c2a11b94e6f9d0b7b8f3e0c2a11",
}


def codec_of(sample_format: str, schema_id: int = 1) -> Codec:
    """The codec the registry's ``schema_id`` names for ``sample_format``'s schema."""
    if sample_format == "avro":
        return avro_codec(RegisteredSchema(schema_id, "AVRO", json.dumps(avro_schema()), ()))
    if sample_format == "json-schema":
        schema = RegisteredSchema(schema_id, "JSON", json.dumps(json_schema()), ())
        return json_schema_codec(schema)
    text = base64.b64encode(protobuf_file().SerializeToString()).decode()
    return protobuf_codec(RegisteredSchema(schema_id, "PROTOBUF", text, ()))


def identity_event(contact: dict[str, Any]) -> bytes:
    """``contact`` as the identity event: the same identifiers and purposes in
    ``identifiers[]``."""
    identifiers = []
    for name in ("two_factor_phone", "recovery_email", "contact_email", "device_id"):
        value = contact[name]
        if value is None:
            continue
        if name == "contact_email":
            kind, purposes = "email", contact["contact_email_purposes"]
        else:
            kind, purposes = _FIXED[name]
        identifiers.append({"type": kind, "value": value, "purposes": purposes})
    at = datetime.fromtimestamp(contact["occurred_at"] / 1000, tz=UTC)
    return orjson.dumps(
        {
            "event_id": contact["event_id"],
            "subject_id": contact["account_id"],
            "occurred_at": rfc3339(at),
            "client": contact["client"],
            "identifiers": identifiers,
        }
    )


def mapped_json(contact: dict[str, Any]) -> bytes:
    """``contact`` as plain JSON in its own fields (as the JSON Schema body is)."""
    return orjson.dumps({k: v for k, v in contact.items() if v is not None})


@dataclass(frozen=True)
class Shape:
    """One shape: the topic its records are on and how a contact is written in it."""

    name: str
    topic: str
    encode: Callable[[dict[str, Any]], bytes]


def shapes() -> list[Shape]:
    """The five shapes, framed ones with schema id 1."""
    found = [
        Shape("identifiers[]", PLAIN_TOPIC, identity_event),
        Shape("mapped JSON", MAPPED_TOPIC, mapped_json),
    ]
    for sample_format in FORMATS:
        sample = FramedSample(sample_format, OneIdRegistry(), "bench-value")
        found.append(Shape(sample_format, MAPPED_TOPIC, sample.encode))
    return found


def new_step(codec: Codec | None) -> Step:
    """A step with the formats policy's reader, ``codec`` its registry's only schema."""
    policy = load_policy(POLICY)
    codecs = (lambda schema_id: codec if schema_id == codec.schema_id else None) if codec else None
    reader = build_reader(policy, None)
    assert reader is not None
    if codecs is not None:
        reader = type(reader)(reader.tags, reader.mappings, codecs, reader.origin)
    return Step(policy, Fingerprinter(b"k" * 32), FixedClock(datetime.now(UTC)), reader=reader)


def _cpu_us_per_call(fn: Callable[[], object]) -> float:
    """Best of five timed batches (about 0.1 CPU-s each), CPU-µs per call."""
    n = 500
    while True:
        start = time.process_time()
        for _ in range(n):
            fn()
        if time.process_time() - start > 0.1:
            break
        n *= 2
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - start) / n)
    return best * 1e6


def _stream_cpu_us(step: Step, records: Sequence[InputRecord]) -> float:
    """CPU-µs per record of ``step`` over ``records`` once (best of three passes)."""
    best = float("inf")
    gc.collect()
    gc.freeze()  # the records are kept for the loop: the collector need not scan them
    try:
        for _ in range(3):
            start = time.process_time()
            for record in records:
                step(record)
            best = min(best, time.process_time() - start)
    finally:
        gc.unfreeze()
    return best / len(records) * 1e6


def measure(records: int) -> dict[str, dict[str, Any]]:
    """Per shape: bytes of the redacting record, CPU-µs passed, redacted, and over the
    sample stream, and the stream's outcomes."""
    contacts = list(sample_contacts(records, seed=7))
    results: dict[str, dict[str, Any]] = {}
    for shape in shapes():
        codec = codec_of(shape.name) if shape.name in FORMATS else None
        step = new_step(codec)

        def record(value: bytes, offset: int, shape: Shape = shape) -> InputRecord:
            return InputRecord(b"acct", value, (), Source(shape.topic, 0, offset))

        passing = record(shape.encode(_PASSING), 1)
        redacting = record(shape.encode(_REDACTING), 2)
        kinds = (step(passing).kind, step(redacting).kind)
        assert kinds == (OutcomeKind.PASSED, OutcomeKind.REDACTED), (shape.name, kinds)
        stream = [record(shape.encode(c), i) for i, c in enumerate(contacts)]
        phone_e164.cache_clear()
        outcomes = _outcomes(new_step(codec), stream)
        results[shape.name] = {
            "bytes": len(redacting.value or b""),
            "passed_us": round(_cpu_us_per_call(partial(step, passing)), 2),
            "redacted_us": round(_cpu_us_per_call(partial(step, redacting)), 2),
            "stream_us": round(_stream_cpu_us(new_step(codec), stream), 2),
            "stream_outcomes": outcomes,
        }
    return results


def _outcomes(step: Step, records: Iterable[InputRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        kind = step(record).kind.value
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def print_table(results: dict[str, dict[str, Any]]) -> None:
    """The rows, each shape next to the ``identifiers[]`` baseline of the same run."""
    base = results["identifiers[]"]
    print(
        f"{'step, by shape':<16} {'bytes':>5} {'passed':>8} {'x':>5} {'redacted':>9} "
        f"{'x':>5} {'stream':>8} {'x':>5}   CPU-us per record"
    )
    for name, row in results.items():
        ratios = [row[k] / base[k] for k in ("passed_us", "redacted_us", "stream_us")]
        print(
            f"{name:<16} {row['bytes']:>5} {row['passed_us']:>8.2f} {ratios[0]:>5.2f} "
            f"{row['redacted_us']:>9.2f} {ratios[1]:>5.2f} {row['stream_us']:>8.2f} "
            f"{ratios[2]:>5.2f}"
        )
    outcomes = {name: row["stream_outcomes"] for name, row in results.items()}
    print(
        f"stream outcomes: {outcomes['identifiers[]']} (every shape the same: "
        f"{len({json.dumps(o) for o in outcomes.values()}) == 1})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = measure(args.records)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
