"""Exposure: what the enforcer forwarded to each sink, per subject (docs/exposure.md).

Pure, above the decision core and the ledger: the entry model and the compacted
topic's value format (:mod:`.model`), the state of a worker's partitions in memory
(:mod:`.state`), and exact retractions, the exposed identifiers no longer allowed, with
their records (:mod:`.retract`), and the state's partitions on disk (:mod:`.disk`).
Nothing in this package imports Kafka: :mod:`enforcer.live.exposure` keeps exposure in a
running worker.
"""
