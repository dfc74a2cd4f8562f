#!/usr/bin/env bash
# Configures and builds clustergov into build/ (Release, Ninja, ccache when present), then the web
# console (console/: npm ci when the lockfile changed, vite build) into build/console/, which the
# gateway serves with --console_dir. CLUSTERGOV_CONSOLE=0 leaves the console out.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD_DIR" -j "$JOBS"

if [[ ${CLUSTERGOV_CONSOLE:-1} != 0 ]]; then
  out=$(cd "$BUILD_DIR" && pwd)/console
  # npm ci only when node_modules is missing or older than the lockfile (npm ci starts from scratch).
  stamp=console/node_modules/.package-lock.json
  if [[ ! -f $stamp || console/package-lock.json -nt $stamp ]]; then
    (cd console && npm ci --no-audit --no-fund)
  fi
  (cd console && npx --no-install vite build --outDir "$out" --emptyOutDir --logLevel warn)
  echo "console built into $out"
fi
