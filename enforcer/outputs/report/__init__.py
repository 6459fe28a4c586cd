"""Replay's report: what would have happened (:mod:`.aggregate`, :mod:`.ledger`),
its model (:mod:`.model`, written as ``report.json``) and the HTML page (:mod:`.html`,
:mod:`.charts`)."""
