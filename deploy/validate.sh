#!/usr/bin/env bash
# Renders every deploy overlay and runs Istio's own validator and analyzer
# on it, offline: no cluster, no kubectl, no kubeconfig.
#   bash deploy/validate.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# istioctl from the Go module proxy, pinned. Installed only when missing or
# another version, so later runs reuse the binary and the module cache.
istio_module=istio.io/istio
istio_version=v0.0.0-20260827124520-eed52ebb66ad
gobin=$(go env GOBIN)
istioctl=${gobin:-$(go env GOPATH)/bin}/istioctl
installed=""
if [[ -x $istioctl ]]; then
  installed=$(go version -m "$istioctl" | awk -v m="$istio_module" '$1 == "mod" && $2 == m { print $3 }')
fi
if [[ $installed != "$istio_version" ]]; then
  echo "validate: installing istioctl $istio_version (was: ${installed:-none})"
  go install "$istio_module/istioctl/cmd/istioctl@$istio_version"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

mapfile -t files < <(go run ./deploy/cmd/render -root deploy -out "$out")
if [[ ${#files[@]} -eq 0 ]]; then
  echo "validate: no overlay rendered" >&2
  exit 1
fi

# No kubeconfig: istioctl checks the files on their own and must not reach
# for a cluster. validate checks each Istio object's schema and rules;
# analyze (--use-kube=false) checks the objects of one overlay against each
# other (a VirtualService's gateway, a DestinationRule's host, ...) and
# fails on a warning too.
export KUBECONFIG=/dev/null
for f in "${files[@]}"; do
  echo "validate: $(basename "$f" .yaml)"
  "$istioctl" validate -f "$f"
  "$istioctl" analyze --use-kube=false --failure-threshold Warning "$f"
done
echo "validate: ${#files[@]} overlays passed istioctl validate and analyze"
