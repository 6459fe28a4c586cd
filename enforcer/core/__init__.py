"""The decision: bytes in, exactly one outcome out. Pure: no I/O, the clock passed in.

- :mod:`.models`       the wire models: identity event, violation, dead-letter reasons
- :mod:`.purposes`     purpose tags: normalization and namespace matching
- :mod:`.parse`        bytes -> a validated event, or why not (never raises)
- :mod:`.fingerprint`  keyed HMAC fingerprints of normalized identifiers
- :mod:`.policy`       the policy: file format, loading, compiled rules, evaluation
- :mod:`.ledger_view`  what the decision asks of a purpose ledger (mode and lookup)
- :mod:`.step`         one record -> one :class:`~.step.Outcome`; never raises
- :mod:`.clock`        the clock the step is given

Everything else (the live engine, replay, ``explain``, policy tests) calls
:class:`enforcer.core.step.Step`; nothing in this package imports Kafka, a file or any
other room of the enforcer.
"""
