#!/usr/bin/env bash
# The end-to-end pipeline benchmark (docs/benchmarks.md): Kafka's own perf tools, raw
# aiokafka and confluent-kafka pass-throughs, a confluent-kafka loop and quixstreams
# each running the enforcer's Step, and the enforcer, each at-least-once and
# exactly-once at commit intervals of 100 ms and 1 s, on one generated stream, on a
# fresh local broker that this script starts and always stops again.
#
#   bash bench/run_pipeline.sh                  # 80,000 records per configuration, twice
#   bash bench/run_pipeline.sh --records 20000  # quicker; other options of
#                                               # `python -m bench.pipeline --help` pass through
#
# Writes bench/results/pipeline.json, bench/results/pipeline.md and the results section
# of docs/benchmarks.md. The broker lives in $BENCH_KAFKA_STATE_DIR (/tmp/bench-kafka).
set -euo pipefail

exec bash "$(dirname "${BASH_SOURCE[0]}")/with-broker.sh" bench bench.pipeline "$@"
