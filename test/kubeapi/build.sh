#!/usr/bin/env bash
# Builds the kube-apiserver that weft's Kubernetes tests run against (package
# test/kubeapi), from the Go module proxy at a pinned version, into
# ${WEFT_KUBE_DIR:-$HOME/.cache/weft-kube/<version>}/kube-apiserver. A second
# run with the binary in place does nothing. etcd is Debian's etcd-server
# (.ci/run installs it), found on PATH by the tests.
#
# Usage: bash test/kubeapi/build.sh
set -euo pipefail

K8S_VERSION=v1.37.2
# The version of the k8s.io staging modules (k8s.io/api, apiserver, ...) that
# k8s.io/kubernetes's go.mod points at ./staging.
STAGING_VERSION=v0.37.2

dest="${WEFT_KUBE_DIR:-$HOME/.cache/weft-kube/$K8S_VERSION}"
bin="$dest/kube-apiserver"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qx "Kubernetes $K8S_VERSION"; then
  echo "kube-apiserver $K8S_VERSION already built: $bin"
  exit 0
fi
mkdir -p "$dest"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS=-mod=mod GOWORK=off
go mod init weft-kube-build >/dev/null 2>&1

# k8s.io/kubernetes replaces its staging modules by ./staging/...; a module
# that requires it must replace them by their published versions instead.
modfile=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
if [ -z "$modfile" ] || [ ! -f "$modfile" ]; then
  echo "build.sh: cannot download k8s.io/kubernetes@$K8S_VERSION's go.mod" >&2
  exit 1
fi
{
  echo "require k8s.io/kubernetes $K8S_VERSION"
  sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#replace \1 => \1 '"$STAGING_VERSION"'#p' "$modfile"
} >>go.mod
if ! grep -q '^replace ' go.mod; then
  echo "build.sh: no ./staging replace found in $modfile" >&2
  exit 1
fi

ver=k8s.io/component-base/version
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}
ldflags="-s -w -X $ver.gitVersion=$K8S_VERSION -X $ver.gitMajor=1 -X $ver.gitMinor=$minor -X $ver.gitTreeState=clean -X $ver.buildDate=1970-01-01T00:00:00Z"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
start=$(date +%s)
go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin.tmp" k8s.io/kubernetes/cmd/kube-apiserver
mv "$bin.tmp" "$bin"
echo "built $("$bin" --version) in $(( $(date +%s) - start )) s: $bin"
