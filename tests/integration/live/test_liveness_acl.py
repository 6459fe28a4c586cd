"""A worker denied a permission says so and exits; once granted, it goes on (docs/contract.md:
liveness); the ACLs of docs/security.md, granted by deploy/acls.sh, are enough.

A broker of the test's own with the StandardAuthorizer: a PLAINTEXT listener for the
test (its principal, ANONYMOUS, is a super user) and a SASL_PLAINTEXT listener where the
enforcer logs in as ``enforcer`` and has exactly the ACLs the test grants.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._acl import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
)
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType

from enforcer.core.fingerprint import generate_key
from enforcer.testing.consume import read_committed
from enforcer.testing.kafka_broker import DEFAULT_KAFKA_VERSION, LocalKafka, free_port
from enforcer.testing.ledger import ledger_value, produce_ledger
from enforcer.testing.topics import create_topics, unique_topic_name
from enforcer.testing.worker import (
    ASSIGNED,
    FAST_GROUP_ENV,
    Deployment,
    EnforcerTopics,
    EnforcerWorker,
    end_offsets_of,
    produce,
    wait_for_commits,
)

pytestmark = pytest.mark.timeout(240)

USER, PASSWORD = "enforcer", "acl-test-password-0123"
DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


@pytest.fixture(scope="module")
def acl_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(plaintext bootstrap for the test, SASL bootstrap for the enforcer)."""
    directory = tmp_path_factory.mktemp("acl-kafka")
    port, controller, sasl = free_port(), free_port(), free_port()
    extra = directory / "extra.properties"
    extra.write_text(
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},"
        f"SASL_PLAINTEXT://127.0.0.1:{sasl}\n"
        f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{sasl},PLAINTEXT://127.0.0.1:{port}\n"
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
        "SASL_PLAINTEXT:SASL_PLAINTEXT\n"
        "sasl.enabled.mechanisms=PLAIN\n"
        "listener.name.sasl_plaintext.plain.sasl.jaas.config="
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{USER}="{PASSWORD}";\n'
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n"
        "super.users=User:ANONYMOUS\n"
        "allow.everyone.if.no.acl.found=false\n"
    )
    kafka = LocalKafka(
        directory / "kafka",
        port=port,
        controller_port=controller,
        extra_env={"KAFKA_EXTRA_CONFIG": str(extra)},
    )
    with kafka:
        yield kafka.bootstrap_servers, f"127.0.0.1:{sasl}"


def _acls(topics: EnforcerTopics, group: str, *, with_group: bool) -> list[AclBinding]:
    """What docs/security.md lists, with or without Read on the group."""
    principal, host, allow = f"User:{USER}", "*", AclPermissionType.ALLOW

    def acl(
        kind: ResourceType,
        name: str,
        operation: AclOperation,
        pattern: ResourcePatternType = ResourcePatternType.LITERAL,
    ) -> AclBinding:
        return AclBinding(kind, name, pattern, principal, host, operation, allow)

    bindings = [
        acl(ResourceType.TOPIC, topics.source, AclOperation.READ),
        acl(ResourceType.TOPIC, topics.source, AclOperation.DESCRIBE),
        acl(
            ResourceType.TRANSACTIONAL_ID,
            f"{group}-",
            AclOperation.WRITE,
            ResourcePatternType.PREFIXED,
        ),
        acl(
            ResourceType.TRANSACTIONAL_ID,
            f"{group}-",
            AclOperation.DESCRIBE,
            ResourcePatternType.PREFIXED,
        ),
    ]
    for name in (topics.sink, topics.violations, topics.deadletter, topics.metrics):
        bindings += [
            acl(ResourceType.TOPIC, name, AclOperation.WRITE),
            acl(ResourceType.TOPIC, name, AclOperation.DESCRIBE),
            acl(ResourceType.TOPIC, name, AclOperation.DESCRIBE_CONFIGS),
        ]
    if with_group:
        bindings.append(acl(ResourceType.GROUP, group, AclOperation.READ))
    return bindings


def _apply(admin: AdminClient, bindings: list[AclBinding]) -> None:
    for future in admin.create_acls(bindings).values():
        future.result(30)


def _revoke_group(admin: AdminClient, group: str) -> None:
    _revoke(admin, ResourceType.GROUP, group, AclOperation.READ)


def _revoke(admin: AdminClient, kind: ResourceType, name: str, operation: AclOperation) -> None:
    found = AclBindingFilter(
        kind,
        name,
        ResourcePatternType.LITERAL,
        f"User:{USER}",
        "*",
        operation,
        AclPermissionType.ALLOW,
    )
    for future in admin.delete_acls([found]).values():
        assert future.result(30)


def _produce(bootstrap: str, topic: str, first: int, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for n in range(first, first + count):
        value = orjson.dumps(
            {
                "event_id": f"evt-{n}",
                "subject_id": f"acct-{n}",
                "occurred_at": "2019-10-08T12:00:00Z",
                "identifiers": [],
            }
        )
        producer.produce(topic, value, f"acct-{n}".encode())
    assert producer.flush(30) == 0


async def test_missing_then_revoked_group_permission(
    acl_kafka: tuple[str, str], tmp_path: Path
) -> None:
    """Without Read on its group the worker stops within seconds, naming the missing
    permission (exit 1); once granted, a restarted worker commits every record; when
    the grant is revoked while it runs, it stops again with the cause named."""
    plain, sasl = acl_kafka
    topics = EnforcerTopics.unique("acl")
    group = unique_topic_name("acl-group")
    env = {
        **FAST_GROUP_ENV,
        "ENFORCER_BOOTSTRAP_SERVERS": sasl,
        "ENFORCER_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "ENFORCER_SASL_MECHANISM": "PLAIN",
        "ENFORCER_SASL_USERNAME": USER,
        "ENFORCER_SASL_PASSWORD": PASSWORD,
    }
    admin = AdminClient({"bootstrap.servers": plain})
    with Deployment(plain, topics, group, generate_key(), tmp_path, extra_env=env) as deployment:
        await deployment.create_topics(1)
        _apply(admin, _acls(topics, group, with_group=False))
        _produce(plain, topics.source, 0, 20)

        denied = deployment.worker("denied")
        denied.start()
        assert await asyncio.to_thread(denied.wait_exit, 90) == 1, denied.log_tail()
        assert denied.log_count("not authorized: GROUP_AUTHORIZATION_FAILED") == 1, (
            denied.log_tail()
        )

        _apply(admin, _acls(topics, group, with_group=True))
        granted = deployment.worker("granted")
        granted.start()
        await granted.wait_for_log(ASSIGNED)
        await wait_for_commits(
            plain, group, topics.source, at_least=20, timeout_s=60, alive=[granted]
        )

        _revoke_group(admin, group)
        _produce(plain, topics.source, 20, 5)
        assert await asyncio.to_thread(granted.wait_exit, 90) == 1, granted.log_tail()
        assert granted.log_count("GROUP_AUTHORIZATION_FAILED") >= 1, granted.log_tail()
        assert granted.log_count("enforcer stopping") == 1, granted.log_tail()
        await deployment.delete_topics()


def _enforcer_env(sasl: str) -> dict[str, str]:
    """The enforcer's side: SASL as ``enforcer``, with only the ACLs granted to it."""
    return {
        **FAST_GROUP_ENV,
        "ENFORCER_BOOTSTRAP_SERVERS": sasl,
        "ENFORCER_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "ENFORCER_SASL_MECHANISM": "PLAIN",
        "ENFORCER_SASL_USERNAME": USER,
        "ENFORCER_SASL_PASSWORD": PASSWORD,
    }


def _run_acls_sh(
    bootstrap: str, topics: EnforcerTopics, group: str, work: Path, extra: Mapping[str, str]
) -> None:
    """Run deploy/acls.sh as docs/security.md says, with ``kafka-acls.sh`` on the PATH
    being what Kafka's own script runs: ``kafka.admin.AclCommand`` from the broker's jars."""
    shim = work / "bin" / "kafka-acls.sh"
    shim.parent.mkdir(exist_ok=True)
    lib = DEPLOY / "kafka" / f"lib-{DEFAULT_KAFKA_VERSION}"
    shim.write_text(
        f'#!/usr/bin/env bash\nexec java -Xmx256m -cp "{lib}/*" kafka.admin.AclCommand "$@"\n'
    )
    shim.chmod(0o755)
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_TOPIC")},
        "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
        "PRINCIPAL": f"User:{USER}",
        "GROUP": group,
        "BOOTSTRAP": bootstrap,
        "SOURCE_TOPIC": topics.source,
        "SINK_TOPIC": topics.sink,
        "VIOLATIONS_TOPIC": topics.violations,
        "DEADLETTER_TOPIC": topics.deadletter,
        "METRICS_TOPIC": topics.metrics,
        **extra,
    }
    done = subprocess.run(
        ["bash", str(DEPLOY / "acls.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


ADS = ("marketing.advertising",)


def _event(event_id: str, subject: str, email: str) -> bytes:
    """An event claiming ``email`` for advertising."""
    return orjson.dumps(
        {
            "event_id": event_id,
            "subject_id": subject,
            "occurred_at": "2026-11-02T10:00:00Z",
            "identifiers": [{"type": "email", "value": email, "purposes": list(ADS)}],
        }
    )


async def test_the_documented_acls_cover_the_ledger(
    acl_kafka: tuple[str, str], tmp_path: Path
) -> None:
    """deploy/acls.sh without LEDGER_TOPIC grants nothing on the ledger: a worker with a
    ledger is refused at start (exit 2) with the permission named, not "missing … pass
    --create-topics" (Kafka leaves an undescribable topic out of its listing). With
    LEDGER_TOPIC the worker restores the ledger and decides against it."""
    plain, sasl = acl_kafka
    topics = EnforcerTopics.unique("acl-led")
    group = unique_topic_name("acl-led-group")
    ledger = unique_topic_name("acl-led-purposes")
    env = {**_enforcer_env(sasl), "ENFORCER_LEDGER_TOPIC": ledger}
    with Deployment(plain, topics, group, generate_key(), tmp_path, extra_env=env) as deployment:
        await deployment.create_topics(1)
        await create_topics(plain, [ledger], 1)
        await produce_ledger(
            plain,
            ledger,
            [("s-ads", ledger_value("s-ads", "2026-11-01T09:00:00Z", [("email", "a@x.org", ADS)]))],
        )
        inputs = await produce(
            plain,
            topics.source,
            # Granted by the ledger: forwarded only if the ledger was read.
            [_event("e1", "s-ads", "a@x.org"), _event("e2", "s-none", "b@x.org")],
        )

        await asyncio.to_thread(_run_acls_sh, plain, topics, group, tmp_path, {})
        refused = deployment.worker("refused")
        refused.start()
        assert await asyncio.to_thread(refused.wait_exit, 90) == 2, refused.log_tail()
        expected = (
            f"not authorized to describe the ledger topic '{ledger}' "
            "(TOPIC_AUTHORIZATION_FAILED): grant Read and Describe on it "
            "(deploy/acls.sh, docs/security.md)"
        )
        assert refused.log_count(expected) == 1, refused.log_tail()
        assert refused.log_count("missing") == 0, refused.log_tail()
        assert refused.log_count("Traceback") == 0, refused.log_tail()

        await asyncio.to_thread(
            _run_acls_sh, plain, topics, group, tmp_path, {"LEDGER_TOPIC": ledger}
        )
        granted = deployment.worker("granted")
        granted.start()
        await wait_for_commits(
            plain, group, topics.source, until=end_offsets_of(inputs), timeout_s=90, alive=[granted]
        )
        assert granted.stop() == 0, granted.log_tail()
        sink = await read_committed(plain, topics.sink, expected=1, timeout_s=30, settle_s=1.0)
        forwarded = [orjson.loads(record.value or b"")["event_id"] for record in sink]
        assert forwarded == ["e1"]
        violations = await read_committed(
            plain, topics.violations, expected=1, timeout_s=30, settle_s=1.0
        )
        assert [orjson.loads(v.value or b"")["event_id"] for v in violations] == ["e2"]
        await deployment.delete_topics()


STOPPING = "enforcer stopping"


async def _stop_line(worker: EnforcerWorker, timeout_s: float) -> tuple[str, float]:
    """The worker's stop line and when it was first seen (monotonic)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        path = worker.log_path
        text = path.read_text(errors="replace") if path and path.exists() else ""
        lines = [line for line in text.splitlines() if STOPPING in line]
        if lines:
            return lines[0], time.monotonic()
        if not worker.running and worker.log_count(STOPPING, all_runs=False) == 0:
            raise AssertionError(f"exited without a stop line\n{worker.log_tail()}")
        await asyncio.sleep(0.1)
    raise AssertionError(f"no stop line in {timeout_s:.0f}s\n{worker.log_tail()}")


async def test_a_sink_write_revoked_while_running_names_the_permission_and_the_sink(
    acl_kafka: tuple[str, str], tmp_path: Path
) -> None:
    """Write on the sink revoked (Describe kept) while the worker runs: librdkafka
    refuses every send with _STATE and every commit asks for an abort. The worker stops
    within 30 s, exit 1, with one line naming TOPIC_AUTHORIZATION_FAILED and the sink,
    not _STATE (nor, 31 s later, "no commit for 31s")."""
    plain, sasl = acl_kafka
    topics = EnforcerTopics.unique("acl-w")
    group = unique_topic_name("acl-w-group")
    admin = AdminClient({"bootstrap.servers": plain})
    with Deployment(
        plain, topics, group, generate_key(), tmp_path, extra_env=_enforcer_env(sasl)
    ) as deployment:
        await deployment.create_topics(1)
        _apply(admin, _acls(topics, group, with_group=True))
        _produce(plain, topics.source, 0, 20)
        worker = deployment.worker("writer")
        worker.start()
        await wait_for_commits(
            plain, group, topics.source, at_least=20, timeout_s=60, alive=[worker]
        )

        _revoke(admin, ResourceType.TOPIC, topics.sink, AclOperation.WRITE)
        revoked = time.monotonic()
        _produce(plain, topics.source, 20, 20)
        line, seen = await _stop_line(worker, 60)
        print(f"sink Write revoked -> stop line: {seen - revoked:.1f} s")
        assert await asyncio.to_thread(worker.wait_exit, 60) == 1, worker.log_tail()
        assert seen - revoked < 30, (seen - revoked, line)
        assert "TOPIC_AUTHORIZATION_FAILED" in line, line
        assert f"'{topics.sink}'" in line, line
        assert "_STATE" not in line, line
        assert worker.log_count(STOPPING) == 1, worker.log_tail()
        assert worker.log_count("Traceback") == 0, worker.log_tail()
        await deployment.delete_topics()
