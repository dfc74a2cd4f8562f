#!/usr/bin/env bash
# The one command that runs every test: installs what is missing, builds, runs CTest.
# Tests start their own redis-server processes on free loopback ports and use temporary SQLite
# files, so nothing needs to be running beforehand.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "${TEST_JOBS:-2}" "$@"
