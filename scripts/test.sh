#!/usr/bin/env bash
# The one command that runs every test: installs what is missing, builds, runs CTest, then builds
# the fuzz targets (clang, into build-fuzz/) and fuzzes each for a bounded time (scripts/fuzz.sh
# --test). Tests start what they need on free loopback ports — redis-server, PostgreSQL 15 (as
# `nobody` when run as root), the services, and the whole platform through run-local.sh for the
# end-to-end and headless-chromium console tests — with temporary files, so nothing needs to be
# running beforehand. Arguments go to the first CTest run
# (e.g. -R gateway_test); CLUSTERGOV_FUZZ_TESTS=0 leaves the fuzzing out.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j "${TEST_JOBS:-2}" "$@")
if [[ ${CLUSTERGOV_FUZZ_TESTS:-1} != 0 ]]; then
  ./scripts/fuzz.sh --test
fi
