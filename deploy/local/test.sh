#!/usr/bin/env bash
# The whole test suite on this machine: installs missing Debian packages, starts PostgreSQL and
# Redis on loopback (deploy/local/start-services.sh), builds, and runs every ctest label
# (unit, integration, e2e). Extra arguments go to ctest, e.g. `-L unit` or `-R Forwarder`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${HOOKGUARD_BUILD_DIR:-$repo/build}"
"$repo/deploy/local/install-deps.sh"
"$repo/deploy/local/start-services.sh"
"$repo/deploy/local/build.sh"
# shellcheck disable=SC1091
source "${HOOKGUARD_LOCAL_DIR:-$repo/var/local}/env"
cd "$build"
ctest --output-on-failure -j"${HOOKGUARD_TEST_JOBS:-2}" --timeout 300 "$@"
