"""Benchmark of the schema-format codecs (prints numbers; not a test).

CPU microseconds per record for ``decode`` and for ``decode`` + ``encode_without`` (the
two-factor phone and the device id emptied; Avro's ``encode_body_without``, the patch of
the body the record reader uses) of each codec, on the sample account events
of ``enforcer sample --format`` (docs/formats.md), built straight from the schemas (no
registry involved). ``orjson.loads`` of the same event as plain JSON is the floor the
plain identity event's parse starts from.

    python bench/bench_formats.py [--records 20000]
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from collections.abc import Callable

import orjson

from enforcer.demo.formats_sample import (
    FORMATS,
    FramedSample,
    avro_schema,
    json_schema,
    protobuf_file,
    sample_contacts,
)
from enforcer.formats.avro import AvroCodec, avro_codec
from enforcer.formats.codec import Codec, Location
from enforcer.formats.framing import HEADER
from enforcer.formats.json_schema import json_schema_codec
from enforcer.formats.protobuf import protobuf_codec
from enforcer.formats.registry import RegisteredSchema
from enforcer.testing.formats import OneIdRegistry

EMPTIED: list[Location] = [("two_factor_phone",), ("device_id",)]


def _codec(sample_format: str) -> Codec:
    if sample_format == "avro":
        return avro_codec(RegisteredSchema(1, "AVRO", json.dumps(avro_schema()), ()))
    if sample_format == "json-schema":
        return json_schema_codec(RegisteredSchema(1, "JSON", json.dumps(json_schema()), ()))
    text = base64.b64encode(protobuf_file().SerializeToString()).decode()
    return protobuf_codec(RegisteredSchema(1, "PROTOBUF", text, ()))


def _cpu_us(bodies: list[bytes], work: Callable[[bytes], object]) -> float:
    """Best of three passes over ``bodies``, CPU microseconds per record."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for body in bodies:
            work(body)
        best = min(best, time.process_time() - start)
    return best / len(bodies) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    contacts = list(sample_contacts(args.records, seed=7))
    plain = [orjson.dumps({k: v for k, v in c.items() if v is not None}) for c in contacts]
    print(f"{len(contacts)} sample account events; CPU us per record, best of 3 passes")
    print(f"{'format':<12} {'bytes':>6} {'decode':>8} {'+encode_without':>16}")
    floor = _cpu_us(plain, orjson.loads)
    plain_size = sum(map(len, plain)) / len(plain)
    print(f"{'plain JSON':<12} {plain_size:>6.0f} {floor:>8.2f} {'(orjson.loads)':>16}")
    for sample_format in FORMATS:
        sample = FramedSample(sample_format, OneIdRegistry(), "bench-value")
        bodies = [sample.encode(contact)[HEADER.size :] for contact in contacts]
        codec = _codec(sample_format)

        def both(body: bytes, codec: Codec = codec) -> object:
            native, _ = codec.decode(body)
            if isinstance(codec, AvroCodec):  # as the record reader calls it
                return codec.encode_body_without(body, native, EMPTIED)
            return codec.encode_without(native, EMPTIED)

        decode_us = _cpu_us(bodies, codec.decode)
        both_us = _cpu_us(bodies, both)
        size = sum(map(len, bodies)) / len(bodies)
        print(f"{sample_format:<12} {size:>6.0f} {decode_us:>8.2f} {both_us:>16.2f}")


if __name__ == "__main__":
    main()
