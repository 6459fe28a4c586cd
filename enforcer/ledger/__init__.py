"""The purpose ledger (SPEC §11): what each identifier was collected for.

The pure core lives here: the ledger record model and its parser (:mod:`.model`),
the materialized state in memory (:mod:`.state`) or on disk (:mod:`.disk`, RocksDB),
both :class:`.store.LedgerStore` on the layout of :mod:`.slots`, the per-identifier
decision (:mod:`.decide`) and file replay (:mod:`.replay`). Nothing in this package
imports Kafka.
"""
