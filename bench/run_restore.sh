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
# $BENCH_KAFKA_STATE_DIR (.bench-kafka in the checkout).
set -euo pipefail

exec bash "$(dirname "${BASH_SOURCE[0]}")/with-broker.sh" restore bench.pipeline.restore "$@"
