"""Wait until an Apicurio Registry answers on its Confluent-compatible API and says ready.

Standard library only, so registry.sh can use any python3 without the project's venv.
Ready means both: the management interface's ``/health/ready`` reports ``UP`` (storage
initialised), and ``GET /apis/ccompat/v7/subjects`` on the API port returns a JSON list,
which is the first request a Confluent client makes. Polls every 0.2 s.

    python3 probe.py API_PORT MANAGEMENT_PORT [--timeout SECONDS] [--pid PID]

Exit status: 0 ready, 1 timed out, 3 the process given by --pid died meanwhile.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

POLL_INTERVAL_S = 0.2
REQUEST_TIMEOUT_S = 2.0


def _get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT_S) as response:  # noqa: S310 - loopback http only
        return json.loads(response.read())


def is_ready(api_port: int, management_port: int) -> bool:
    """Whether the registry on these loopback ports is ready for clients."""
    try:
        health = _get_json(f"http://127.0.0.1:{management_port}/health/ready")
        subjects = _get_json(f"http://127.0.0.1:{api_port}/apis/ccompat/v7/subjects")
    except (OSError, urllib.error.URLError, ValueError):
        return False
    return isinstance(health, dict) and health.get("status") == "UP" and isinstance(subjects, list)


def _process_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        state = stat.rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("api_port", type=int)
    parser.add_argument("management_port", type=int)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--pid", type=int)
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    while True:
        if is_ready(args.api_port, args.management_port):
            return 0
        if args.pid is not None and _process_gone(args.pid):
            return 3
        if time.monotonic() >= deadline:
            return 1
        time.sleep(POLL_INTERVAL_S)


if __name__ == "__main__":
    sys.exit(main())
