#!/usr/bin/env bash
# Installs the Debian 12 packages hookguard needs to build, test and run (idempotent).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libpistache-dev libpqxx-dev libhiredis-dev libssl-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev libcurl4-openssl-dev nlohmann-json3-dev
  libspdlog-dev libcli11-dev libexpected-dev libjemalloc-dev
  postgresql redis-server curl python3 clang-format clang libclang-rt-14-dev
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  # dpkg -s succeeds for packages that were removed but not purged; check the status line.
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: not root and no sudo" >&2; exit 1; }
  SUDO=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "${missing[@]}"
echo "install-deps: done"
