"""Where replay reads records from: a JSON Lines file (:mod:`.jsonl`) or a Kafka topic
(:mod:`.kafka_topic`)."""
