"""A Kafka client-properties file (``--kafka-config``, ``ENFORCER_KAFKA_CONFIG``).

The file holds librdkafka properties, one ``name=value`` a line as in a Java
``.properties`` file, for whatever the enforcer has no setting of its own: OAUTHBEARER,
GSSAPI, a cloud's IAM login, client tuning. It is merged *under* the enforcer's own
settings for every librdkafka client (docs/security.md). What the enforcer sets itself is
never taken from the file: a property that would break a guarantee is refused, one
that has a setting of its own is refused with that setting's name; nothing in the file
is ignored silently.

Values are never logged nor put in an error message: the file holds secrets
(``sasl.password``, ``sasl.oauthbearer.client.secret``). Messages name the file, the
line and the property only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class ClientPropertiesError(ValueError):
    """A client-properties file that cannot be used (the message names the file, the
    line or property, never a value)."""


ALIASES = {
    "metadata.broker.list": "bootstrap.servers",
    "sasl.mechanisms": "sasl.mechanism",
    "queue.buffering.max.ms": "linger.ms",
    "request.required.acks": "acks",
    "auto.commit.enable": "enable.auto.commit",
    "message.send.max.retries": "retries",
}
"""librdkafka's other names for one property, mapped to the name used here."""

_SAME_TRANSACTION = (
    "the enforcer commits offsets only inside the transaction that writes the outputs "
    "(docs/contract.md: guarantees); a commit of its own could skip records whose outputs "
    "were never committed"
)
_RANGE = (
    "the enforcer needs the range assignor: partition i of the source and of the ledger "
    "must go to the same worker (docs/ledger.md)"
)
_CALLBACK = "a Python callback of the enforcer; it cannot come from a file"

GUARANTEES: dict[str, str] = {
    "enable.auto.commit": _SAME_TRANSACTION,
    "enable.auto.offset.store": _SAME_TRANSACTION,
    "isolation.level": (
        "the enforcer reads read_committed: records of aborted transactions must never be decided"
    ),
    "auto.offset.reset": (
        "the enforcer starts a group without commits at the earliest offset; 'latest' "
        "would skip records never decided"
    ),
    "partition.assignment.strategy": _RANGE,
    "group.protocol": _RANGE,
    "group.remote.assignor": _RANGE,
    "group.instance.id": (
        "static membership is not supported: the engine's rebalance handling and its "
        "fencing (one transactional id per ENFORCER_INSTANCE_ID) assume dynamic members"
    ),
    "enable.partition.eof": "it changes what a poll returns to the engine",
    "transactional.id": (
        "the enforcer makes one per worker (<group id>-<instance id>) so that a restarted "
        "worker fences its previous incarnation; set ENFORCER_INSTANCE_ID"
    ),
    "enable.idempotence": (
        "the output producer is idempotent: no duplicated or reordered outputs on retry, "
        "and transactions need it"
    ),
    "acks": "outputs are acknowledged by every in-sync replica (acks=all) before they count",
    "delivery.report.only.error": (
        "the enforcer reads failed deliveries to name why a transaction failed"
    ),
    "metadata.recovery.strategy": (
        "the enforcer turns re-bootstrapping off: with it a transactional commit after a "
        "broker restart was seen to block for good"
    ),
    "linger.ms": "the enforcer sets it per client (5 ms for outputs, 0 for metrics)",
    "client.id": (
        "the enforcer names each client enforcer-<role>-<instance id>, which its logs and "
        "the broker's logs use"
    ),
    **dict.fromkeys(
        (
            "error_cb",
            "throttle_cb",
            "stats_cb",
            "oauth_cb",
            "logger",
            "log_cb",
            "on_commit",
            "offset_commit_cb",
            "on_delivery",
            "dr_cb",
            "dr_msg_cb",
            "rebalance_cb",
            "background_event_cb",
        ),
        _CALLBACK,
    ),
}
"""Properties the enforcer sets for its guarantees or its own working, and why."""

REMEDIATE_GUARANTEES: dict[str, str] = {
    **GUARANTEES,
    "transactional.id": (
        "remediate apply derives its own from the plan's id (enforcer-remediate-<the "
        "first 32 hex digits of the id>, docs/remediate.md), so that running an apply "
        "again fences an earlier one of the same plan; remove it from the file"
    ),
}
"""The same for ``enforcer remediate``, whose transactional ids are not the workers'."""

OWN_SETTINGS: dict[str, str] = {
    "group.id": "ENFORCER_GROUP_ID (--group-id)",
    "session.timeout.ms": "ENFORCER_SESSION_TIMEOUT",
    "heartbeat.interval.ms": "ENFORCER_SESSION_TIMEOUT (the heartbeat is a third of it)",
    "transaction.timeout.ms": "ENFORCER_TRANSACTION_TIMEOUT",
    "debug": "ENFORCER_KAFKA_DEBUG",
}
"""Properties that have a setting of their own, which the file must not contradict."""


def canonical(name: str) -> str:
    """The name used here for a librdkafka property (its aliases folded)."""
    return ALIASES.get(name, name)


_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _unescape(text: str) -> str:
    out, chars = [], iter(text)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append(_ESCAPES.get(following, following))
        else:
            out.append(char)
    return "".join(out)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each logical line: comments and blank lines dropped,
    lines ending in an odd number of backslashes joined with the next."""
    lines: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.lstrip()
        if pending is None and (not line or line[0] in "#!"):
            continue
        start, joined = pending if pending is not None else (number, "")
        joined += line
        trailing = len(joined) - len(joined.rstrip("\\"))
        if trailing % 2 == 1:
            pending = (start, joined[:-1])
            continue
        pending = None
        lines.append((start, joined))
    if pending is not None:
        lines.append(pending)
    return lines


def _split(line: str) -> tuple[str, str] | None:
    """(name, value) at the first unescaped ``=`` or ``:``; ``None`` without one."""
    escaped = False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in "=:":
            return _unescape(line[:index].strip()), _unescape(line[index + 1 :].lstrip())
    return None


def parse_properties(text: str, origin: str) -> dict[str, str]:
    """The properties of a Java-style properties text, by name as written.

    Refuses a line without ``=`` and a property set twice (two lines, or a name and
    its alias): in a file of credentials, a silent "last one wins" hides mistakes.
    """
    found: dict[str, tuple[str, str, int]] = {}
    for number, line in _logical_lines(text):
        pair = _split(line)
        if pair is None or not pair[0]:
            raise ClientPropertiesError(
                f"{origin} line {number}: expected name=value (librdkafka property names)"
            )
        name, value = pair
        if any(char.isspace() for char in name):
            # "name value" with a space (Java's other separator) would carry the value
            # into the name, and librdkafka's refusal would quote it: never a secret.
            raise ClientPropertiesError(
                f"{origin} line {number}: a property name with a space in it; write name=value"
            )
        key = canonical(name)
        if key in found:
            raise ClientPropertiesError(
                f"{origin} line {number}: {name} is set again (first on line {found[key][2]})"
            )
        found[key] = (name, value, number)
    return {name: value for name, value, _ in found.values()}


def read_properties(path: Path, refusals: Mapping[str, str] = GUARANTEES) -> dict[str, str]:
    """The file's properties, checked against ``refusals`` (:data:`GUARANTEES`, or a
    command's own such as :data:`REMEDIATE_GUARANTEES`) and :data:`OWN_SETTINGS` (the
    one-line refusal says why, and what to set instead)."""
    origin = f"Kafka client properties {path} (--kafka-config, ENFORCER_KAFKA_CONFIG)"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ClientPropertiesError(f"cannot read {origin}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ClientPropertiesError(f"{origin} is not UTF-8 text") from None
    properties = parse_properties(text, origin)
    for name in properties:
        key = canonical(name)
        if key in refusals:
            raise ClientPropertiesError(f"{origin}: {name} is refused: {refusals[key]}")
        if key in OWN_SETTINGS:
            raise ClientPropertiesError(
                f"{origin}: {name} has a setting of its own; set {OWN_SETTINGS[key]} instead"
            )
    return properties
