"""The enforcer's registry client over TLS with basic auth (docs/formats.md, "Running
with a schema registry").

The session's Apicurio speaks plain HTTP without users, so it stands here behind a small
TLS-terminating proxy that asks for a user and password, as a registry behind a
company's gateway would: the certificate is issued for 127.0.0.1 by a test CA written to
a file, and requests that carry the right ``Authorization`` header are passed on to the
real registry unchanged. The client must trust the CA file it is given, send the
credentials from the settings (the password from a file), and treat a refused login or
an untrusted certificate as an outage naming its cause, never as an unknown schema.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import json
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from enforcer.cli.common import schema_registry_from
from enforcer.config.settings import EnforcerSettings
from enforcer.formats.registry import (
    RegistrySettings,
    RegistryUnavailableError,
    SchemaRegistry,
)
from enforcer.testing.topics import unique_topic_name

USER, PASSWORD = "enforcer", "s3cret-for-tests"
SCHEMA = {"type": "record", "name": "Tls", "fields": [{"name": "a", "type": "string"}]}


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 it signed: (ca, cert, key) files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "enforcer test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def _gateway(upstream: str, cert: Path, key: Path) -> http.server.ThreadingHTTPServer:
    """TLS and basic auth in front of ``upstream`` (the registry's scheme, host and
    port: a request's path is passed on as it is)."""
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _forward(self) -> None:
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="registry"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {
                name: value
                for name, value in self.headers.items()
                if name.lower() in ("accept", "content-type")
            }
            request = urllib.request.Request(  # noqa: S310 - the loopback registry
                upstream.rstrip("/") + self.path, body, headers, method=self.command
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                    status, data = answer.status, answer.read()
            except urllib.error.HTTPError as exc:
                status, data = exc.code, exc.read()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            self._forward()

        def log_message(self, format: str, *args: object) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    class TlsServer(http.server.ThreadingHTTPServer):
        """TLS per connection, in the connection's thread: a handshake the client
        refuses (an untrusted certificate) closes that connection and nothing else."""

        daemon_threads = True

        def finish_request(self, request: Any, client_address: Any) -> None:
            try:
                connection = context.wrap_socket(request, server_side=True)
            except OSError:  # ssl.SSLError included; the socket is closed by then
                return
            with connection:
                super().finish_request(connection, client_address)

    return TlsServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def gateway(schema_registry_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The TLS gateway's URL (same path as the registry's) and the CA file to trust."""
    ca, cert, key = _certificates(tmp_path)
    origin = "/".join(schema_registry_url.split("/", 3)[:3])  # http://127.0.0.1:PORT
    server = _gateway(origin, cert, key)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        path = schema_registry_url.split("/", 3)[3]  # apis/ccompat/v7
        yield f"https://127.0.0.1:{port}/{path}", ca
    finally:
        server.shutdown()
        server.server_close()


def test_the_client_trusts_the_ca_file_and_sends_the_password_from_its_file(
    gateway: tuple[str, Path], schema_registry_url: str, tmp_path: Path
) -> None:
    url, ca = gateway
    schema_id = SchemaRegistry(RegistrySettings(schema_registry_url)).register(
        f"{unique_topic_name('tls')}-value", "AVRO", json.dumps(SCHEMA)
    )
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    settings = EnforcerSettings(
        schema_registry_url=url,
        schema_registry_user=USER,
        schema_registry_password_file=password_file,
        schema_registry_ca_file=ca,
    )
    registry = schema_registry_from(settings)
    assert registry is not None
    fetched = registry.schema_by_id(schema_id)
    assert fetched is not None and json.loads(fetched.text)["name"] == "Tls"
    assert registry.schema_by_id(987_654_321) is None  # an answer through the gateway too


def test_a_refused_login_is_an_outage_naming_the_status_not_an_unknown_schema(
    gateway: tuple[str, Path],
) -> None:
    url, ca = gateway
    wrong = SchemaRegistry(RegistrySettings(url, basic_auth=(USER, "wrong"), ca_file=str(ca)))
    with pytest.raises(RegistryUnavailableError, match="answered HTTP 401") as refused:
        wrong.schema_by_id(1)
    assert "wrong" not in str(refused.value)


def test_a_certificate_not_signed_by_a_trusted_ca_is_an_outage(
    gateway: tuple[str, Path],
) -> None:
    url, _ = gateway
    untrusting = SchemaRegistry(RegistrySettings(url, basic_auth=(USER, PASSWORD)))
    with pytest.raises(RegistryUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.schema_by_id(1)
