"""Wait until a Kafka broker answers a Metadata request and lists itself.

Standard library only, so kafka.sh can use any python3 without the project's venv.
The broker opens its client listener only after it has joined the KRaft quorum and
been unfenced, so a Metadata answer that lists a broker means clients can work.

    python3 probe.py HOST PORT [--timeout SECONDS] [--pid PID]

Exit status: 0 ready, 1 timed out, 3 the process given by --pid died meanwhile.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import time

API_METADATA = 3
API_VERSIONS = 18
CLIENT_ID = b"kafka-sh-probe"


def _request(sock: socket.socket, api_key: int, version: int, body: bytes) -> bytes:
    """Send one request with header v1 and return the response body (header v0 skipped)."""
    header = struct.pack(">hhih", api_key, version, 1, len(CLIENT_ID)) + CLIENT_ID
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", _read_exactly(sock, 4))[0]
    return _read_exactly(sock, size)[4:]  # drop correlation id


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


def _metadata_version(sock: socket.socket) -> int:
    """Pick a non-flexible Metadata version (1..8) that the broker supports."""
    body = _request(sock, API_VERSIONS, 0, b"")
    error, count = struct.unpack_from(">hi", body, 0)
    if error != 0:
        raise ConnectionError(f"ApiVersions error {error}")
    for index in range(count):
        key, low, high = struct.unpack_from(">hhh", body, 6 + 6 * index)
        if key == API_METADATA:
            version = min(max(low, 1), 8)
            if version > high:
                raise ConnectionError(f"no usable Metadata version in {low}..{high}")
            return version
    raise ConnectionError("broker does not list the Metadata API")


def _broker_count(host: str, port: int) -> int:
    with socket.create_connection((host, port), timeout=3) as sock:
        sock.settimeout(3)
        version = _metadata_version(sock)
        body = struct.pack(">i", 0)  # no topics: we only want the broker list
        if version >= 4:
            body += b"\x00"  # allow_auto_topic_creation
        if version >= 8:
            body += b"\x00\x00"  # include cluster / topic authorized operations
        response = _request(sock, API_METADATA, version, body)
        offset = 4 if version >= 3 else 0  # throttle_time_ms
        return int(struct.unpack_from(">i", response, offset)[0])


def _alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--pid", type=int, default=None)
    args = parser.parse_args()

    deadline = time.monotonic() + args.timeout
    last_error = "no attempt made"
    while time.monotonic() < deadline:
        if not _alive(args.pid):
            print(f"probe: broker process {args.pid} exited", file=sys.stderr)
            return 3
        try:
            if _broker_count(args.host, args.port) >= 1:
                return 0
            last_error = "metadata lists no broker yet"
        except (OSError, struct.error) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(0.25)
    print(
        f"probe: {args.host}:{args.port} not ready after {args.timeout}s ({last_error})",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
