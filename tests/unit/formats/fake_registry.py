"""A schema registry on the loopback interface that answers what a test tells it to,
for tests of the enforcer's registry client and of the commands that use it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeRegistry:
    """The answers by path (without the query), each a status and a body (bytes as
    they are, anything else as JSON); an unknown path is 404. :attr:`asked` lists the
    paths asked for."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: dict[str, tuple[int, Any]] = {}
        self.asked: list[str] = []

    def latest(self, subject: str, status: int, body: Any) -> None:
        """What the latest version of ``subject`` is answered with."""
        self.answers[f"/subjects/{subject}/versions/latest"] = (status, body)


@contextmanager
def fake_registry() -> Iterator[FakeRegistry]:
    """A :class:`FakeRegistry` serving on 127.0.0.1 while the context lasts."""
    registry: FakeRegistry

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            registry.asked.append(path)
            status, body = registry.answers.get(path, (404, {"error_code": 40401}))
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    registry = FakeRegistry(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def avro_record(name: str, *fields: str) -> str:
    """The text of an Avro record schema of string ``fields``."""
    return json.dumps(
        {"type": "record", "name": name, "fields": [{"name": f, "type": "string"} for f in fields]}
    )
