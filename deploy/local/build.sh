#!/usr/bin/env bash
# Configures and builds hookguard into <repo>/build (or $HOOKGUARD_BUILD_DIR).
# usage: deploy/local/build.sh [extra cmake -D options...]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${HOOKGUARD_BUILD_DIR:-$repo/build}"
jobs="${HOOKGUARD_JOBS:-2}"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE="${HOOKGUARD_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$build" -j"$jobs"
