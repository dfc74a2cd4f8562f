#!/usr/bin/env bash
# Renders every kustomize directory under deploy/k8s with `kubectl kustomize` and validates the
# output offline with validate_manifests.mjs: Kubernetes schemas (kubernetes-models), then the
# semantic checks (selectors, ports, probes, security, references, NetworkPolicies, PDB/HPA,
# Ingress, ServiceMonitor, the clustergov binaries' real flags, each service's store — PostgreSQL
# from a Secret, as each environment requires — and replicated workloads' budgets, spread over
# nodes and rollouts). Then runs the validator's self-test, which breaks copies of the renders
# and requires every break to be reported.
#
# Usage: manifests_test.sh <repo root> <build dir>
#   KUBECTL: kubectl to render with (default: kubectl). Its kustomize must know the fields the
#   manifests use (Debian 12's kubernetes-client 1.20 bundles kustomize v2.0.3).
# The npm packages are installed once into <build dir>/deploy-validator.
set -uo pipefail
ROOT=${1:?usage: manifests_test.sh <repo root> <build dir>}
BUILD=${2:?usage: manifests_test.sh <repo root> <build dir>}
KUBECTL=${KUBECTL:-kubectl}
K8S="$ROOT/deploy/k8s"
HERE="$(cd "$(dirname "$0")" && pwd)"
NPM_DIR="$BUILD/deploy-validator"
RENDERS="$NPM_DIR/renders"
source "$HERE/lib/validator_packages.sh"

die() { echo "FAIL: $*"; exit 1; }

command -v node >/dev/null || die "node is not installed (scripts/install-deps.sh)"
command -v "$KUBECTL" >/dev/null || die "kubectl ($KUBECTL) is not installed; set KUBECTL to one"
[[ -d "$K8S" ]] || die "no $K8S"

# Every directory holding a kustomization, relative to deploy/k8s, sorted (base first).
kustomize_dirs() {
  (cd "$K8S" && find . -name kustomization.yaml -o -name kustomization.yml -o -name Kustomization) |
    xargs -r -n1 dirname | sed 's|^\./||; s|^\.$|.|' | sort -u
}

install_validator_packages "$NPM_DIR" || die "npm install ${VALIDATOR_PACKAGES[*]} failed"
echo "kubectl: $("$KUBECTL" version --client 2>&1 | tr '\n' ' ')"
rm -rf "$RENDERS" && mkdir -p "$RENDERS"
render_args=()
render_failures=0
while IFS= read -r dir; do
  out="$RENDERS/${dir//\//_}.yaml"
  if "$KUBECTL" kustomize "$K8S/$dir" >"$out" 2>"$out.err"; then
    echo "rendered $dir -> $out"
    [[ -s "$out.err" ]] && sed 's/^/    kubectl: /' "$out.err"
    render_args+=(--render "$dir" "$out")
  else
    echo "FAIL: $KUBECTL kustomize deploy/k8s/$dir: $(cat "$out.err")"
    render_failures=$((render_failures + 1))
  fi
done < <(kustomize_dirs)

validator=(node "$HERE/validate_manifests.mjs" --modules "$NPM_DIR/node_modules" --build-dir "$BUILD" --k8s-root "$K8S" --source-root "$ROOT")
"${validator[@]}" "${render_args[@]}"
validate_status=$?
"${validator[@]}" --self-test "${render_args[@]}"
self_test_status=$?

echo "deploy manifests: render failures $render_failures, validation exit $validate_status, self-test exit $self_test_status"
((render_failures == 0 && validate_status == 0 && self_test_status == 0))
