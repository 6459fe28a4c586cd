#!/usr/bin/env bash
# The main job: the enforcer on a local Kafka broker with sample traffic.
#
# Installs what is missing (scripts/setup.sh, without the benchmark's peers), starts
# a local broker in .kafka/demo, runs `enforcer run` as a real worker over generated
# identity events shaped like the 2019 case, stops it, prints what happened to every
# record, writes an HTML report (enforcer replay over the same events) and prints
# the next commands to try. The broker is stopped again at the end, also on failure.
#
#   bash scripts/demo.sh [--records 5000] [--seed 2019]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh --demo

export KAFKA_STATE_DIR="${KAFKA_STATE_DIR:-$PWD/.kafka/demo}"
trap 'bash deploy/kafka/kafka.sh stop >/dev/null 2>&1 || true' EXIT
bootstrap="$(bash deploy/kafka/kafka.sh start)"
echo "local Kafka at $bootstrap (log: $KAFKA_STATE_DIR/logs/server.log)"
.venv/bin/python -m enforcer.demo --bootstrap "$bootstrap" "$@"
