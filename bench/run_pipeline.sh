#!/usr/bin/env bash
# The end-to-end pipeline benchmark (docs/benchmarks.md): the raw confluent-kafka and
# aiokafka loops, a bare confluent-kafka loop, quixstreams and bytewax each running the
# enforcer's Step, the enforcer with the ledger off and on, with exposure (from an empty
# topic, and in the steady state on a stream of stable identifiers), and the enforcer under
# policies/formats.yaml on the same account events as identity events and framed in Avro
# (a local schema registry, deploy/registry/registry.sh, on loopback with its state in the
# run's work directory, started for the run and stopped after); each run checked (every
# input exactly one outcome); the enforcer's GC work; the peak RSS of one worker
# draining a 300,000-record backlog; the targets. On a fresh local broker that this
# script starts and always stops again.
#
#   bash bench/run_pipeline.sh --targets-only  # exactly-once at 1 s, 80,000 records, twice
#   bash bench/run_pipeline.sh --quick         # the same, 20,000 records, once
#   bash bench/run_pipeline.sh                 # also at-least-once, 100 ms, Kafka's tools
#
# Other options of `python -m bench.pipeline --help` pass through. Writes
# bench/results/pipeline.json, bench/results/pipeline.md and the results section of
# docs/benchmarks.md. The broker lives in $BENCH_KAFKA_STATE_DIR (.bench-kafka in the checkout).
set -euo pipefail

exec bash "$(dirname "${BASH_SOURCE[0]}")/with-broker.sh" bench bench.pipeline "$@"
