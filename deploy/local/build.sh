#!/usr/bin/env bash
# Configures and builds hookguard into <repo>/build (or $HOOKGUARD_BUILD_DIR).
# usage: deploy/local/build.sh [cmake --build arguments, e.g. --target hookguard]
# env:   HOOKGUARD_BUILD_TYPE (RelWithDebInfo), HOOKGUARD_JOBS (2), HOOKGUARD_CMAKE_ARGS
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${HOOKGUARD_BUILD_DIR:-$repo/build}"
# shellcheck disable=SC2086
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE="${HOOKGUARD_BUILD_TYPE:-RelWithDebInfo}" \
  ${HOOKGUARD_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"${HOOKGUARD_JOBS:-2}" "$@"
