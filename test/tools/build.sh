#!/usr/bin/env bash
# Builds the real control-plane binaries used by e2e tests (test/kubeapi) into
# <repo>/bin, from the Go module proxy, ONLY when they are missing:
#   bin/etcd                     go.etcd.io/etcd/server/v3 v3.6.16   (./etcd/go.mod)
#   bin/kube-apiserver           k8s.io/kubernetes v1.37.2           (./go.mod)
#   bin/kube-controller-manager  k8s.io/kubernetes v1.37.2           (./go.mod)
# Cold build is ~12 min on 2 cores; later runs are no-ops.
# Env: TIDEGATE_BIN (default <repo>/bin), FORCE=1 to rebuild.
set -euo pipefail

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$TOOLS_DIR/../.." && pwd)"
BIN="${TIDEGATE_BIN:-$REPO/bin}"
K8S_VERSION=v1.37.2

export CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false
mkdir -p "$BIN"

need() { [[ "${FORCE:-}" == 1 || ! -x "$BIN/$1" ]]; }

# build <module dir> <ldflags> <name=pkg>...: builds the missing binaries of
# one module in a single `go build` (shared compile) and moves them into $BIN
# atomically, so an interrupted build never leaves a half-written binary.
build() {
	local dir="$1" ldflags="$2"; shift 2
	local names=() pkgs=() np
	for np in "$@"; do
		if need "${np%%=*}"; then names+=("${np%%=*}"); pkgs+=("${np#*=}"); fi
	done
	((${#names[@]})) || return 0
	local tmp; tmp="$(mktemp -d "$BIN/.build.XXXXXX")"
	trap 'rm -rf "$tmp"' RETURN
	local start=$SECONDS
	# A single package gets an explicit output name (go.etcd.io/etcd/server/v3
	# would otherwise be named "server"); several are written into $tmp/.
	local out="$tmp/"; ((${#pkgs[@]} == 1)) && out="$tmp/${names[0]}"
	(cd "$dir" && go build -trimpath -ldflags="$ldflags" -o "$out" "${pkgs[@]}")
	local n; for n in "${names[@]}"; do mv -f "$tmp/$n" "$BIN/$n"; done
	echo "built ${names[*]} in $((SECONDS - start))s"
}

if need etcd; then
	echo "building etcd (cold build ~2-3 min on 2 cores)…"
fi
build "$TOOLS_DIR/etcd" "-s -w" etcd=go.etcd.io/etcd/server/v3

if need kube-apiserver || need kube-controller-manager; then
	echo "building kube-apiserver + kube-controller-manager $K8S_VERSION (cold build ~12 min on 2 cores)…"
fi
V=k8s.io/component-base/version
build "$TOOLS_DIR" \
	"-s -w -X $V.gitVersion=$K8S_VERSION -X $V.gitMajor=1 -X $V.gitMinor=37 -X $V.gitTreeState=clean" \
	kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
	kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager

echo "control-plane binaries ready in $BIN"
