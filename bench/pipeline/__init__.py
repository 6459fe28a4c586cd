"""End-to-end pipeline benchmark: the enforcer next to its client's ceiling and its peers.

One run on one broker, on one generated stream of identity events, measures:

- Kafka's own perf tools (the Java classes in the broker jars): the machine's limit;
- raw confluent-kafka and aiokafka consume → produce pass-throughs
  (:mod:`.confluent_passthrough`, :mod:`.raw_passthrough`);
- the confluent-kafka loop, quixstreams and bytewax, each running the enforcer's ``Step``
  and writing its outputs (:mod:`.confluent_passthrough`, :mod:`.quix_step`,
  :mod:`.bytewax_step`, all through :mod:`.peer_step`);
- the enforcer itself (``enforcer run``, driven by :mod:`enforcer.testing.worker`), with
  and without a purpose ledger, keeping exposure (from an empty topic, and in the steady
  state: :mod:`.steady`), and under the formats policy with a schema registry on
  the same account events as identity events and framed in Avro (:mod:`.formats`);

at the guarantees and commit intervals asked for: records/s while draining a
pre-produced backlog, CPU-µs per record of the pipeline process, end-to-end latency seen
by a ``read_committed`` consumer, an independent check that every input had exactly one
outcome, the enforcer's garbage-collector work, and the peak RSS of one worker draining
a large backlog. ``bash bench/run_pipeline.sh`` is the command; ``python -m
bench.pipeline --help`` lists the knobs.

Layout, in the order a run uses it:

- :mod:`.machine`: what the numbers were measured on;
- :mod:`.workload`: the generated stream, the backlog producer, the paced producer;
- :mod:`.formats`: the formats rows' account events and their registry;
- :mod:`.steady`: the steady-state exposure rows' stream and exposure seed;
- :mod:`.kafka_tools`: ProducerPerformance, ConsumerPerformance, EndToEndLatency;
- :mod:`.processes`: the pipelines as processes (commands, environment, stop);
- :mod:`.measure`: throughput and CPU from progress samples, latency percentiles;
- :mod:`.outcomes`: the independent check of each run's outputs;
- :mod:`.gc_metrics`: the enforcer's GC counters from its ``/metrics``;
- :mod:`.run`: one pipeline configuration, start to finish;
- :mod:`.memory`: peak RSS of one worker draining a large backlog;
- :mod:`.report`: target ratios, the JSON file and the markdown table;
- :mod:`.profile`: optional py-spy profiles of the pipelines, and their summary;
- :mod:`.cli`: the command line.
"""
