# The npm packages the deployment checks read manifests with, installed once into
# <build dir>/deploy-validator. Sourced by manifests_test.sh and dev_postgres_test.sh (ctest runs
# them one at a time: RESOURCE_LOCK deploy-validator).
VALIDATOR_PACKAGES=(kubernetes-models@5 @kubernetes-models/prometheus-operator@6 yaml@2)

# install_validator_packages <dir>: returns non-zero when npm fails.
install_validator_packages() {
  local dir=$1 missing=0 pkg
  for pkg in "${VALIDATOR_PACKAGES[@]}"; do
    [[ -f "$dir/node_modules/${pkg%@*}/package.json" ]] || missing=1
  done
  ((missing)) || return 0
  echo "installing ${VALIDATOR_PACKAGES[*]} into $dir"
  mkdir -p "$dir" && (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "${VALIDATOR_PACKAGES[@]}")
}
