"""The purpose ledger (SPEC §11): what each identifier was collected for.

The pure core lives here: the ledger record model and its parser (:mod:`.model`),
the materialized state (:mod:`.state`), the per-identifier decision (:mod:`.decide`)
and file replay (:mod:`.replay`). Nothing in this package imports Kafka.
"""
