"""A Confluent-compatible schema registry, read by schema id (docs/formats.md).

Only the two routes the enforcer needs: a schema by its id, and a subject's version
(for a Protobuf schema's references, and to check a mapping against the subject's
latest schema at start). The standard library's HTTP client, with a timeout on every
request, basic auth and TLS (a CA file, and a client certificate when the registry asks
for one).

A registry that answers "no such schema" is an answer (``None``): the record that names
it is bad input. A registry that does not answer, answers 5xx, or refuses the enforcer's
credentials is an outage (:class:`RegistryUnavailableError`): never a reason to dead-letter a
record, the driver waits and says so (docs/contract.md: liveness).
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from enforcer.formats.schema_error import UnusableSchemaError

SchemaType = Literal["AVRO", "PROTOBUF", "JSON"]

DEFAULT_TIMEOUT_S = 10.0
# The registry's error for a schema or subject it does not have is HTTP 404 (error
# codes 40401 subject, 40402 version, 40403 schema): an answer, not an outage.
_NOT_FOUND = 404


class RegistryUnavailableError(Exception):
    """The registry did not answer, answered with a server error, or refused the
    enforcer's credentials. ``str()`` is one line naming the cause (no record data)."""


class Reference(NamedTuple):
    """A schema a schema imports (a Protobuf import, an Avro named type)."""

    name: str
    subject: str
    version: int


class RegisteredSchema(NamedTuple):
    """A schema as the registry holds it. A Protobuf schema's ``text`` is the base64
    of its ``FileDescriptorProto`` when the registry gives that form (as registered, or
    asked for with ``format=serialized``), else the ``.proto`` source."""

    schema_id: int
    schema_type: SchemaType
    text: str
    references: tuple[Reference, ...]


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """Where the registry is and how to reach it."""

    url: str
    """The base URL of the Confluent-compatible API (Apicurio: ``…/apis/ccompat/v7``)."""
    basic_auth: tuple[str, str] | None = None
    """User and password."""
    ca_file: str | None = None
    """A PEM file of the certificate authorities to trust (default: the system's)."""
    cert_file: str | None = None
    """A PEM client certificate, for a registry that asks for one."""
    key_file: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        scheme = urllib.parse.urlsplit(self.url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"schema registry URL must be http:// or https://: {self.url!r}")
        if self.timeout_s <= 0:
            raise ValueError("schema registry timeout must be positive")


class SchemaRegistry:
    """A read-only client of one registry."""

    def __init__(self, settings: RegistrySettings) -> None:
        self.settings = settings
        self._base = settings.url.rstrip("/") + "/"
        self._headers = {"Accept": "application/vnd.schemaregistry.v1+json, application/json"}
        if settings.basic_auth is not None:
            user, password = settings.basic_auth
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._context: ssl.SSLContext | None = None
        if settings.url.startswith("https"):
            self._context = ssl.create_default_context(cafile=settings.ca_file)
            if settings.cert_file is not None:
                self._context.load_cert_chain(settings.cert_file, settings.key_file)

    def schema_by_id(self, schema_id: int) -> RegisteredSchema | None:
        """The schema registered under ``schema_id``, or ``None`` when there is none;
        :class:`UnusableSchemaError` for one of a type the enforcer does not read."""
        body = self._get(f"schemas/ids/{schema_id}")
        if body is None:
            return None
        return _registered(
            schema_id, self._serialized(f"schemas/ids/{schema_id}", body), self.settings.url
        )

    def subject_version(
        self, subject: str, version: int | str = "latest"
    ) -> RegisteredSchema | None:
        """A subject's version (``"latest"`` by default), or ``None`` when the subject or
        the version does not exist; :class:`UnusableSchemaError` for a schema of a type
        the enforcer does not read."""
        path = f"subjects/{urllib.parse.quote(subject, safe='')}/versions/{version}"
        body = self._get(path)
        if body is None:
            return None
        schema_id = body.get("id")
        if type(schema_id) is not int:
            raise RegistryUnavailableError(
                f"schema registry {self.settings.url} gave no schema id for {path}"
            )
        return _registered(schema_id, self._serialized(path, body), self.settings.url)

    def _serialized(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A Protobuf schema as its serialized descriptor when the registry gave the
        ``.proto`` text. Asked in a second request: Apicurio refuses ``format`` for
        Avro (HTTP 400), and gives Protobuf registered as a descriptor back as one."""
        if body.get("schemaType") != "PROTOBUF" or _is_base64(body["schema"]):
            return body
        try:
            serialized = self._get(path, {"format": "serialized"})
        except RegistryUnavailableError:
            return body
        return serialized if serialized is not None else body

    def register(
        self,
        subject: str,
        schema_type: SchemaType,
        text: str,
        references: tuple[Reference, ...] = (),
    ) -> int:
        """Register ``text`` under ``subject`` (or find it there) and return its id.
        Used by ``enforcer sample`` and the demo, never by the enforcer's decision."""
        body = {
            "schemaType": schema_type,
            "schema": text,
            "references": [ref._asdict() for ref in references],
        }
        path = f"subjects/{urllib.parse.quote(subject, safe='')}/versions"
        answer = self._request(path, {}, json.dumps(body).encode())
        if answer is None or not isinstance(answer.get("id"), int):
            raise RegistryUnavailableError(
                f"schema registry {self.settings.url} gave no id for a schema of {subject}"
            )
        return int(answer["id"])

    def latest_version_number(self, subject: str) -> int:
        """The number of ``subject``'s latest version (a reference names one)."""
        path = f"subjects/{urllib.parse.quote(subject, safe='')}/versions/latest"
        answer = self._request(path, {})
        if answer is None or not isinstance(answer.get("version"), int):
            raise RegistryUnavailableError(
                f"schema registry {self.settings.url} gave no version of {subject}"
            )
        return int(answer["version"])

    def _get(self, path: str, query: dict[str, str] | None = None) -> dict[str, Any] | None:
        document = self._request(path, query or {})
        if document is not None and not isinstance(document.get("schema"), str):
            raise RegistryUnavailableError(
                f"schema registry {self.settings.url} gave no schema for {path}"
            )
        return document

    def _request(
        self, path: str, query: dict[str, str], data: bytes | None = None
    ) -> dict[str, Any] | None:
        url = self._base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = self._headers
        if data is not None:
            headers = {**headers, "Content-Type": "application/vnd.schemaregistry.v1+json"}
        method = "GET" if data is None else "POST"
        request = urllib.request.Request(url, data, headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(  # noqa: S310 - the URL's scheme is checked above
                request, timeout=self.settings.timeout_s, context=self._context
            ) as response:
                document = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            exc.close()  # the error is the response: its connection closes with it
            if exc.code == _NOT_FOUND:
                return None
            raise RegistryUnavailableError(
                f"schema registry {self.settings.url} answered HTTP {exc.code} for {path}"
            ) from None
        except (OSError, ValueError) as exc:
            # URLError, timeouts, refused and reset connections are OSErrors; a body
            # that is not JSON is a registry (or proxy) not working as one.
            raise RegistryUnavailableError(
                f"schema registry {self.settings.url} did not answer {path}: {_cause(exc)}"
            ) from None
        if not isinstance(document, dict):
            raise RegistryUnavailableError(
                f"schema registry {self.settings.url} gave no JSON object for {path}"
            )
        return document


_SCHEMA_TYPES: dict[Any, SchemaType] = {"AVRO": "AVRO", "PROTOBUF": "PROTOBUF", "JSON": "JSON"}


def _registered(schema_id: int, body: dict[str, Any], url: str) -> RegisteredSchema:
    """The schema a registry's answer ``body`` describes. Raises
    :class:`RegistryUnavailableError` for an answer no registry gives (a type that is
    not a name, references that name no subject and version, as a body that is not
    JSON), and :class:`UnusableSchemaError` for a schema of a type the enforcer does not
    read (a registry may hold others: its records are bad input, not an outage)."""
    named = body.get("schemaType") or "AVRO"
    if not isinstance(named, str):
        raise RegistryUnavailableError(
            f"schema registry {url} gave a schema type that is not a name for schema {schema_id}"
        )
    kind = _SCHEMA_TYPES.get(named)
    if kind is None:
        raise UnusableSchemaError(
            f"schema {schema_id} has a type the enforcer cannot read: {named[:40]!r}"
        )
    listed = body.get("references") or []
    if not isinstance(listed, list) or not all(_is_reference(ref) for ref in listed):
        raise RegistryUnavailableError(
            f"schema registry {url} gave references that name no subject and version "
            f"for schema {schema_id}"
        )
    references = tuple(Reference(ref["name"], ref["subject"], ref["version"]) for ref in listed)
    return RegisteredSchema(schema_id, kind, body["schema"], references)


def _is_reference(ref: Any) -> bool:
    """Whether ``ref`` is a reference as a registry lists it: a name, a subject and a
    whole version number."""
    return (
        isinstance(ref, dict)
        and isinstance(ref.get("name"), str)
        and isinstance(ref.get("subject"), str)
        and type(ref.get("version")) is int
    )


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        return False
    return True


def _cause(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason if reason is not None else exc) or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__
