"""Configuration: the one place ``ENFORCER_*`` variables are read (:mod:`.settings`),
the Kafka security options derived from them for both clients (:mod:`.kafka_security`),
and logging (:mod:`.logs`)."""
