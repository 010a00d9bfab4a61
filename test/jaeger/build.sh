#!/usr/bin/env bash
# Builds the Jaeger that weft's tracing tests send spans to (package
# test/jaeger; test/e2e/jaeger_test.go), from the Go module proxy at a pinned
# version, into ${WEFT_JAEGER_DIR:-$HOME/.cache/weft-jaeger/<version>}/jaeger.
# It builds in a throw-away module so that Jaeger's dependencies stay out of
# weft's go.mod. A second run with the binary in place does nothing.
#
# Usage: bash test/jaeger/build.sh
set -euo pipefail

JAEGER_VERSION=v1.75.0

dest="${WEFT_JAEGER_DIR:-$HOME/.cache/weft-jaeger/$JAEGER_VERSION}"
bin="$dest/jaeger"
# Jaeger's version command prints JSON with "gitVersion":"v1.75.0".
if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "\"gitVersion\":\"$JAEGER_VERSION\""; then
  echo "jaeger $JAEGER_VERSION already built: $bin"
  exit 0
fi
mkdir -p "$dest"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS=-mod=mod GOWORK=off
go mod init weft-jaeger-build >/dev/null 2>&1

ver=github.com/jaegertracing/jaeger/internal/version
ldflags="-s -w -X $ver.commitSHA=none -X $ver.latestVersion=$JAEGER_VERSION -X $ver.date=1970-01-01T00:00:00Z"
start=$(date +%s)
go get "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
mv "$bin.tmp" "$bin"
echo "built jaeger $JAEGER_VERSION in $(( $(date +%s) - start )) s: $bin"
