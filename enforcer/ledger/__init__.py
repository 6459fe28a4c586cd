"""The purpose ledger: what each identifier was collected for (docs/ledger.md).

Pure, above the decision core: the ledger record model and its parser (:mod:`.model`),
the materialized state in memory (:mod:`.state`) or on disk (:mod:`.disk`, RocksDB),
both :class:`.store.LedgerStore` on the layout of :mod:`.slots`, a lookup over one
state for replay and ``explain`` (:mod:`.lookup`), the retractions a ledger update
sends (:mod:`.retract`) and the ledger replayed from records (:mod:`.replay`). What the
decision itself asks of a ledger (the mode, the lookup) is
:mod:`enforcer.core.ledger_view`. Nothing in this package imports Kafka.
"""
