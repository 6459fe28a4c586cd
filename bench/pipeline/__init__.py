"""End-to-end pipeline benchmark: the enforcer next to its client's ceiling and its peers.

One run on one broker, on one generated stream of identity events, measures:

- Kafka's own perf tools (the Java classes in the broker jars): the machine's limit;
- a raw aiokafka consume → produce pass-through (:mod:`.raw_passthrough`);
- a raw confluent-kafka pass-through, and the same loop running the enforcer's
  ``Step`` with no guards or metrics (:mod:`.confluent_passthrough`);
- quixstreams running the same ``Step`` (:mod:`.quix_step`);
- the enforcer itself (``enforcer run``, driven by :mod:`enforcer.testing.worker`);

each at-least-once and exactly-once at several commit intervals: records/s while
draining a pre-produced backlog, CPU-µs per record of the pipeline process, and
end-to-end latency seen by a ``read_committed`` consumer. ``bash bench/run_pipeline.sh``
is the command; ``python -m bench.pipeline --help`` lists the knobs.

Layout, in the order a run uses it:

- :mod:`.machine`: what the numbers were measured on;
- :mod:`.workload`: the generated stream, the backlog producer, the paced producer;
- :mod:`.kafka_tools`: ProducerPerformance, ConsumerPerformance, EndToEndLatency;
- :mod:`.processes`: the pipelines as processes (commands, environment, stop);
- :mod:`.measure`: throughput and CPU from progress samples, latency percentiles;
- :mod:`.run`: one pipeline configuration, start to finish;
- :mod:`.report`: target ratios, the JSON file and the markdown table;
- :mod:`.profile`: optional py-spy profiles of the pipelines, and their summary;
- :mod:`.cli`: the command line.
"""
