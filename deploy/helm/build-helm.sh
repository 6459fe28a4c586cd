#!/usr/bin/env bash
# Build the helm CLI from its Go module (the Go module proxy ships helm's source, not its
# release binaries) into a cache beside this script, outside git, like the Kafka jars.
# The chart's tests (tests/unit/test_helm.py) run `helm lint` and `helm template` with it.
#
#   build-helm.sh          build once (skipped when the cached binary is this version);
#                          prints the binary's path
#
# Go is found on PATH, else at /usr/local/go/bin/go (GO=/path/to/go overrides both).
# A cold build downloads ~550 MB of modules and compiles them: several minutes on two
# cores, once per machine; later builds reuse Go's own module and build caches.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HELM_VERSION="${HELM_VERSION:-v4.3.2}"
HELM_BIN_DIR="${HELM_BIN_DIR:-$HERE/bin-$HELM_VERSION}"
HELM="$HELM_BIN_DIR/helm"

die() {
  echo "build-helm.sh: $*" >&2
  exit 1
}

if [[ -x "$HELM" && "$(cat "$HELM_BIN_DIR/.built" 2>/dev/null)" == "$HELM_VERSION" ]]; then
  echo "$HELM"
  exit 0
fi

if [[ -n "${GO:-}" ]]; then
  [[ -x "$GO" ]] || die "GO=$GO is not an executable Go"
elif command -v go >/dev/null 2>&1; then
  GO="$(command -v go)"
elif [[ -x /usr/local/go/bin/go ]]; then
  GO=/usr/local/go/bin/go
else
  die "Go is needed to build helm $HELM_VERSION (not on PATH, not at /usr/local/go/bin/go; set GO=/path/to/go)"
fi

echo "build-helm.sh: building helm $HELM_VERSION with $("$GO" version | cut -d' ' -f3) into $HELM_BIN_DIR (minutes on a fresh machine, seconds once Go's caches hold it)" >&2
tmp="$HELM_BIN_DIR.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
# No cgo (a static binary, no C compiler needed); -trimpath and -s -w as helm's own
# Makefile builds it (smaller, no local paths); the -X sets what `helm version` prints.
# GOTOOLCHAIN=local: never fetch another Go toolchain behind the caller's back.
if ! GOBIN="$tmp" CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -buildvcs=false -trimpath" \
    "$GO" install \
    -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2; then
  rm -rf "$tmp"
  die "go install helm.sh/helm/v4/cmd/helm@$HELM_VERSION failed"
fi
echo "$HELM_VERSION" >"$tmp/.built"
rm -rf "$HELM_BIN_DIR"
mv "$tmp" "$HELM_BIN_DIR"
echo "$HELM"
