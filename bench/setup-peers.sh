#!/usr/bin/env bash
# A virtualenv of its own (.venv-peers) for the benchmark's peer pipelines that pin
# their own Kafka client: quixstreams 3.x requires confluent-kafka < 2.13, the enforcer
# 2.13 or newer; bytewax (with its Kafka connector, the `kafka` extra) installs beside
# quixstreams on the same client. The enforcer's pure decision core is installed beside
# them without its dependencies (those the core needs are listed here), so the peers run
# the same Step.
# Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3.11}"
VENV=.venv-peers
QUIXSTREAMS="quixstreams==3.28.1"
BYTEWAX="bytewax[kafka]==0.21.1"
stamp="$VENV/.installed-$(cat pyproject.toml bench/setup-peers.sh | sha256sum | cut -c1-16)"
[[ -f "$stamp" ]] && exit 0
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
echo "setup: installing $QUIXSTREAMS and $BYTEWAX into $VENV (benchmark peers)" >&2
if ! { "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
         "$QUIXSTREAMS" "$BYTEWAX" "pydantic>=2.7,<3" "pydantic-settings>=2.3,<3" "PyYAML>=6,<7" \
         "orjson>=3.10,<4" "phonenumbers>=8.13,<10" "mypy-extensions>=1.0,<2" &&
       "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .; } \
     >"$VENV/pip-install.log" 2>&1; then
  tail -n 30 "$VENV/pip-install.log" >&2
  echo "setup: installing the benchmark peers failed (log: $VENV/pip-install.log)" >&2
  exit 1
fi
rm -f "$VENV"/.installed-*
touch "$stamp"
