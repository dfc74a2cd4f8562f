#!/usr/bin/env bash
# Installs every Debian 12 package clustergov needs to build, test and run.
# Idempotent: packages already present are skipped; nothing is downloaded outside apt.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  protobuf-compiler libprotobuf-dev libgrpc++-dev protobuf-compiler-grpc grpc-proto
  golang-github-gogo-googleapis-dev
  libabsl-dev libhiredis-dev prometheus-cpp-dev libsqlite3-dev libjwt-dev libssl-dev
  libboost-dev libgtest-dev libgmock-dev libpq-dev
  redis-server postgresql-15 nghttp2-client prometheus wrk python3 curl iproute2
  clang libclang-rt-14-dev
  chromium fonts-noto-cjk
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js builds the web console (console/, npm ci + vite) and runs the OpenAPI validator in the
# gateway's tests and the console's browser tests (chromium and the CJK fonts above); Debian's own
# when none is installed (a machine may already carry another Node.js build, which is kept).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

# kubectl renders the Kubernetes overlays in the deployment tests (its built-in kustomize); a
# machine may carry a newer kubectl than Debian's kubernetes-client, which is kept.
if ! command -v kubectl >/dev/null 2>&1; then
  missing+=(kubernetes-client)
fi

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: missing ${missing[*]}; run this script as root, or install sudo" >&2
    exit 1
  fi
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The redis-server and prometheus packages start system instances (6379, 9090) where systemd
# runs; clustergov starts its own, so those just installed here are stopped and disabled.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
  for unit in redis-server prometheus; do
    if printf '%s\n' "${missing[@]}" | grep -qx "$unit"; then
      $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
    fi
  done
fi
