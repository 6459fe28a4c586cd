#!/usr/bin/env bash
# The project's test command: lint, type-check, then the unit and integration tests.
# The integration tests run against a real single-node Kafka broker that this script
# starts (fresh, in .kafka/test) and always stops again, also when something fails.
#
#   bash scripts/test.sh                      # everything, Kafka 3.9.1
#   KAFKA_VERSION=4.1.1 bash scripts/test.sh  # the same against Kafka 4.1.1
#   bash scripts/test.sh -m unit              # extra arguments go to pytest; no broker
#
# ENFORCER_TEST_BOOTSTRAP=host:port uses a broker that is already running instead.
# A selection of unit tests only starts no broker (see unit_only). ENFORCER_TEST_PLAN=1
# prints whether a broker would be started for the given arguments, and does nothing.
set -euo pipefail

# Whether the pytest arguments select unit tests only, so that no broker is needed.
# Deliberately narrow: exactly `-m unit` and/or paths under tests/unit, with -k and
# output flags. Anything else (another marker expression, an integration path, a
# plugin option) starts the broker as before: a missing broker fails tests, a needless
# one only costs time.
unit_only() {
  local selected=0
  while (($#)); do
    case "$1" in
      -m)
        [[ "${2:-}" == unit ]] || return 1
        selected=1
        shift
        ;;
      -k) (($# >= 2)) || return 1; shift ;;
      tests/unit | tests/unit/* | ./tests/unit | ./tests/unit/*)
        [[ "$1" != *..* ]] || return 1
        selected=1
        ;;
      -q | -qq | -v | -vv | -x | -ra | --quiet | --verbose | --exitfirst | --no-header) ;;
      *) return 1 ;;
    esac
    shift
  done
  ((selected))
}

broker=start
if unit_only "$@"; then
  broker=none
fi
if [[ -n "${ENFORCER_TEST_PLAN:-}" ]]; then
  echo "broker: $broker"
  exit 0
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
export KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
bash scripts/setup.sh
BIN="$ROOT/.venv/bin/"
KAFKA_SH="$ROOT/deploy/kafka/kafka.sh"
TEST_STATE_DIR="${ENFORCER_TEST_KAFKA_STATE_DIR:-$ROOT/.kafka/test-$KAFKA_VERSION}"

echo "== ruff check"
"${BIN}ruff" check .
"${BIN}ruff" format --check .

echo "== mypy"
"${BIN}mypy"

stop_broker() {
  KAFKA_STATE_DIR="$TEST_STATE_DIR" bash "$KAFKA_SH" stop || true
}

if [[ "$broker" == none ]]; then
  echo "== kafka: not started (unit tests only)"
elif [[ -z "${ENFORCER_TEST_BOOTSTRAP:-}" ]]; then
  echo "== kafka $KAFKA_VERSION"
  # A fresh cluster for every run; the previous run's broker log is kept until now.
  KAFKA_STATE_DIR="$TEST_STATE_DIR" bash "$KAFKA_SH" reset
  trap stop_broker EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  ENFORCER_TEST_BOOTSTRAP="$(KAFKA_STATE_DIR="$TEST_STATE_DIR" bash "$KAFKA_SH" start)"
  export ENFORCER_TEST_BOOTSTRAP
  echo "broker $ENFORCER_TEST_BOOTSTRAP, log $TEST_STATE_DIR/logs/server.log"
fi

echo "== pytest"
status=0
"${BIN}python" -m pytest "$@" || status=$?
if ((status == 5)); then
  echo "scripts/test.sh: pytest collected no tests; that is a failure here" >&2
fi
exit "$status"
