#!/usr/bin/env bash
# Builds dist/portico_VERSION_ARCH.deb: a static (CGO off) portico binary,
# its systemd unit and a default config, packaged by nfpm, which runs from
# its own module in packaging/tools (the server's go.mod stays lean).
#   bash packaging/build-deb.sh [OUTDIR]      (default: dist/)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# A release sets VERSION; otherwise a Debian-sortable development version.
export VERSION=${VERSION:-0.1.0~git$(git rev-parse --short HEAD 2>/dev/null || echo 0)}
export ARCH=${ARCH:-$(go env GOARCH)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export BINARY=$work/portico

CGO_ENABLED=0 GOARCH=$ARCH go build -trimpath -o "$BINARY" \
  -ldflags "-s -w -X portico/internal/cli.Version=$VERSION -X portico/internal/cli.Commit=$commit -X portico/internal/cli.BuildDate=$date" \
  ./cmd/portico
(cd packaging/tools && go build -o "$work/nfpm" github.com/goreleaser/nfpm/v2/cmd/nfpm)
# nfpm expands the environment in version and arch, not in file sources.
sed "s|\${BINARY}|$BINARY|" packaging/nfpm.yaml >"$work/nfpm.yaml"
"$work/nfpm" pkg --config "$work/nfpm.yaml" --packager deb --target "$out/" >&2
ls "$out"/portico_*"${ARCH}".deb | tail -1
