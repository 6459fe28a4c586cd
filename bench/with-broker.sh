#!/usr/bin/env bash
# Run a benchmark module against a fresh local broker: installs what is missing
# (scripts/setup.sh), resets and starts the broker in $BENCH_KAFKA_STATE_DIR
# (.bench-kafka in the checkout, so two checkouts never reset each other's broker),
# runs `python -m MODULE --bootstrap ADDR --kafka-version V ARGS...`,
# and always stops the broker again. Used by run_pipeline.sh and run_restore.sh.
#
#   bash bench/with-broker.sh LABEL MODULE [ARGS...]
set -euo pipefail

label="$1"
module="$2"
shift 2

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
export KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
export KAFKA_STATE_DIR="${BENCH_KAFKA_STATE_DIR:-$ROOT/.bench-kafka}"
KAFKA_SH="$ROOT/deploy/kafka/kafka.sh"

bash scripts/setup.sh

stop_broker() {
  bash "$KAFKA_SH" stop || true
}

# A new cluster every run: no topics, groups or transactions left from the last one.
bash "$KAFKA_SH" reset
trap stop_broker EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
BOOTSTRAP="$(bash "$KAFKA_SH" start)"
echo "$label: broker $BOOTSTRAP (Kafka $KAFKA_VERSION, state $KAFKA_STATE_DIR); load average: $(cut -d' ' -f1-3 /proc/loadavg)"

"$ROOT/.venv/bin/python" -m "$module" --bootstrap "$BOOTSTRAP" --kafka-version "$KAFKA_VERSION" "$@"
