#!/usr/bin/env bash
# The purpose ledger's restore rate and memory (docs/benchmarks.md): ledgers of 2x10^5
# and 10^6 identifiers (and an empty one, the RSS baseline) written to a fresh local
# broker, each restored by `enforcer run`; the broker is started here and always
# stopped again.
#
#   bash bench/run_restore.sh                           # 2x10^5 and 10^6 identifiers
#   bash bench/run_restore.sh --identifiers 100000      # other options of
#                                                       # `python -m bench.pipeline.restore --help`
#
# Writes bench/results/ledger_restore.{json,md}. The broker lives in
# $BENCH_KAFKA_STATE_DIR (/tmp/bench-kafka).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
export KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
export KAFKA_STATE_DIR="${BENCH_KAFKA_STATE_DIR:-/tmp/bench-kafka}"
KAFKA_SH="$ROOT/deploy/kafka/kafka.sh"

bash scripts/setup.sh

stop_broker() {
  bash "$KAFKA_SH" stop || true
}

bash "$KAFKA_SH" reset
trap stop_broker EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
BOOTSTRAP="$(bash "$KAFKA_SH" start)"
echo "restore: broker $BOOTSTRAP (Kafka $KAFKA_VERSION, state $KAFKA_STATE_DIR); load average: $(cut -d' ' -f1-3 /proc/loadavg)"

"$ROOT/.venv/bin/python" -m bench.pipeline.restore --bootstrap "$BOOTSTRAP" --kafka-version "$KAFKA_VERSION" "$@"
