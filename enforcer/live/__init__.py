"""The live engine: consume a batch, decide each record, produce, commit, repeat.

- :mod:`enforcer.live.positions` where each partition stands in the open transaction
- :mod:`enforcer.live.failures`  what to do about a Kafka error: retry, abort or stop
- :mod:`enforcer.live.output`    the transactional (or at-least-once) producer side
- :mod:`enforcer.live.limits`    outputs fitted to their topics' size limits
- :mod:`enforcer.live.engine`    the loop itself, and what it does at a rebalance
- :mod:`enforcer.live.health`    liveness and readiness, from what the loop reports
- :mod:`enforcer.live.http`      ``/metrics``, ``/healthz``, ``/readyz``
- :mod:`enforcer.live.publisher` metrics snapshots on the metrics topic, and lag
- :mod:`enforcer.live.clients`   librdkafka settings for every client
- :mod:`enforcer.live.signals`   SIGTERM/SIGINT as a flag, installed before anything else
- :mod:`enforcer.live.ledger`    the ledger's partitions: restore, updates, retractions
- :mod:`enforcer.live.guard`     stops a bad deploy from dead-lettering the whole stream
- :mod:`enforcer.live.schemas`   schemas fetched before a batch; held while the registry is down
- :mod:`enforcer.live.policy_reload` the policy file watched; a change applied between transactions
- :mod:`enforcer.live.admin`     topics checked (or created) at start, their size limits
- :mod:`enforcer.live.worker`    builds all of it from settings and runs it (and the watchdog)
- :mod:`enforcer.live.lag_exporter` the group's lag read from the broker, for Prometheus

Nothing here decides anything: every record goes through :class:`enforcer.core.step.Step`.
"""
