#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) into build-fuzz/ and runs each one for a
# bounded time, starting from tests/fuzz/corpus/<target>/. Exits non-zero when a target crashes;
# the crashing input is left in build-fuzz/artifacts/. Fix the bug, then add the input to the
# target's seed corpus so it stays a regression test.
#
# usage: tests/fuzz/run.sh [seconds per target, default 60] [target ...]
# Needs: clang, libclang-rt-14-dev (libFuzzer runtime), the project's build dependencies.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seconds="${1:-60}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(signature cidr source_ip config trigger_yaml trigger_json request_framing)

cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DHOOKGUARD_FUZZ=ON -DHOOKGUARD_BUILD_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target hookguard_fuzz

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p build-fuzz/artifacts
failed=()
for target in "${targets[@]}"; do
  echo "=== fuzz_$target (${seconds} s)"
  # New inputs go to a scratch corpus; the checked-in seeds are only read.
  work="build-fuzz/corpus/$target"
  mkdir -p "$work"
  if ! "build-fuzz/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/artifacts/$target-" "$work" "tests/fuzz/corpus/$target" \
    2>"build-fuzz/fuzz_$target.log"; then
    tail -n 60 "build-fuzz/fuzz_$target.log"
    failed+=("$target")
  else
    grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "build-fuzz/fuzz_$target.log" || true
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz targets that crashed: ${failed[*]} (inputs in build-fuzz/artifacts/)" >&2
  exit 1
fi
echo "all fuzz targets ran ${seconds} s without a crash"
