#!/usr/bin/env bash
# Run the unit tests on every supported Python (3.11-3.13) that this machine has (on
# PATH, or built by pyenv) or can install from Debian's packages: one virtualenv per
# version in .venv-pyX.Y, built from the project's own pyproject.toml. Versions that
# cannot be had are reported and skipped; the run fails if a version that ran failed,
# or if none ran.
#   bash scripts/test-python-versions.sh            # 3.11 3.12 3.13
#   PYTHON_VERSIONS="3.13" bash scripts/test-python-versions.sh -x
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
versions=${PYTHON_VERSIONS:-"3.11 3.12 3.13"}
passed=() failed=() missing=()

find_python() {
  # A python3.X that runs; pyenv's shims exist for versions it is not set to, so try them.
  if "python$1" -c pass >/dev/null 2>&1; then
    command -v "python$1"
    return
  fi
  command -v pyenv >/dev/null || return 1
  local built
  built=$(pyenv versions --bare 2>/dev/null | grep -E "^$1\.[0-9]+$" | sort -V | tail -n 1)
  [[ -n "$built" && -x "$(pyenv root)/versions/$built/bin/python$1" ]] || return 1
  echo "$(pyenv root)/versions/$built/bin/python$1"
}

install_python() {
  # Debian names them python3.X and python3.X-venv (bookworm has 3.11 only; trixie 3.13).
  [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null || return 1
  apt-cache show "python$1-venv" >/dev/null 2>&1 || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$1" "python$1-venv" >/dev/null 2>&1
}

for version in $versions; do
  python=$(find_python "$version" || { install_python "$version" && find_python "$version"; })
  if [[ -z "$python" ]]; then
    echo "python-versions: python$version is not installed and not installable here: skipped" >&2
    missing+=("$version")
    continue
  fi
  venv=".venv-py$version"
  echo "python-versions: unit tests on $($python --version) in $venv" >&2
  if ! { [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"; } ||
     ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]' \
       >"$venv.pip.log" 2>&1; then
    echo "python-versions: installing into $venv failed (log: $venv.pip.log)" >&2
    failed+=("$version")
    continue
  fi
  if "$venv/bin/python" -m pytest tests/unit -q -p no:cacheprovider "$@"; then
    passed+=("$version")
  else
    failed+=("$version")
  fi
done

echo "python-versions: passed: ${passed[*]:-none}; failed: ${failed[*]:-none}; not available: ${missing[*]:-none}"
[[ ${#failed[@]} -eq 0 && ${#passed[@]} -gt 0 ]]
