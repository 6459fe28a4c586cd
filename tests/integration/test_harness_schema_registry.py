"""LocalSchemaRegistry: every port the registry opens is on loopback, a restart keeps
the URL (storage is in memory, so not the schemas), kill and stop end the process, and a
registry that fails to start is reported and stopped."""

from __future__ import annotations

import ipaddress
import json
import urllib.request
from pathlib import Path

import pytest

from enforcer.testing.schema_registry import LocalSchemaRegistry, SchemaRegistryError

_TCP_LISTEN = "0A"


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address from /proc/net/tcp{,6}: 32-bit words in the host's (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    swapped = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(swapped)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on, IPv4 and IPv6."""
    inodes = _socket_inodes(pid)
    found: list[tuple[str, int]] = []
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _TCP_LISTEN and inode in inodes:
                host, port = local.split(":")
                found.append((str(_address(host)), int(port, 16)))
    return found


def _subjects(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/subjects", timeout=10) as response:  # noqa: S310 - loopback
        subjects: list[str] = json.loads(response.read())
    return subjects


def _register(url: str, subject: str) -> None:
    body = json.dumps({"schema": json.dumps({"type": "string"})}).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{url}/subjects/{subject}/versions",
        data=body,
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        assert "id" in json.loads(response.read())


def test_every_listener_is_on_loopback_and_restart_keeps_the_url(
    private_schema_registry: LocalSchemaRegistry,
) -> None:
    registry = private_schema_registry
    url = registry.url
    assert url.startswith("http://127.0.0.1:") and url.endswith("/apis/ccompat/v7")
    pid = registry.pid
    assert pid is not None

    listeners = listening_addresses(pid)
    # The API and the management interface (health), nothing else, and none on a
    # wildcard or outside address (the management port's default is 0.0.0.0:9000).
    assert len(listeners) == 2, listeners
    assert all(ipaddress.ip_address(host).is_loopback for host, _ in listeners), listeners
    assert 9000 not in {port for _, port in listeners}
    assert f"127.0.0.1:{url.split(':')[2].split('/')[0]}" in {f"{h}:{p}" for h, p in listeners}

    _register(url, "harness-value")
    assert _subjects(url) == ["harness-value"]
    assert "apicurio-registry.access" in registry.log_path.read_text()

    registry.kill()
    assert not registry.is_running()
    assert registry.start() == url  # same port
    assert _subjects(url) == []  # in-memory storage: a new start is an empty registry

    registry.stop()
    assert not registry.is_running()
    registry.stop()  # idempotent


def test_a_registry_that_dies_while_starting_is_reported_with_its_log(tmp_path: Path) -> None:
    """A JVM that cannot start (a heap far too small) fails ``start`` at once with the
    cause from the JVM's own output, and leaves no process and no URL behind."""
    registry = LocalSchemaRegistry(
        tmp_path / "registry", extra_env={"REGISTRY_HEAP_OPTS": "-Xmx2m"}
    )
    with pytest.raises(SchemaRegistryError) as failure:
        registry.start()
    message = str(failure.value)
    assert "the registry exited before it was ready" in message
    assert "OutOfMemoryError" in message
    assert not registry.is_running()
    assert not (tmp_path / "registry" / "url").exists()
    assert not (tmp_path / "registry" / "registry.pid").exists()
