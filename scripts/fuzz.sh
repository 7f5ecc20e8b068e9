#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-DPORTHOLE_FUZZ=ON) into build-fuzz and runs each one
# for N seconds (default 20). Exits non-zero if any target crashes; the reproducer is left in
# build-fuzz/fuzz-artifacts/<target>/.
#   scripts/fuzz.sh [seconds] [target...]      (seconds also from FUZZ_SECONDS)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${FUZZ_SECONDS:-20}"
if [[ ${1:-} =~ ^[0-9]+$ ]]; then
  secs=$1
  shift
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(envelope_decoder_fuzz control_message_fuzz server_session_fuzz ip_packet_fuzz
           offload_fuzz record_reader_fuzz)
fi
build="$root/build-fuzz"

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DPORTHOLE_FUZZ=ON -DPORTHOLE_TESTS=ON \
  >/dev/null
cmake --build "$build" --target "${targets[@]}"

failed=()
for t in "${targets[@]}"; do
  work="$build/fuzz-corpus/$t"     # new inputs go here, never into the seeds in the repo
  artifacts="$build/fuzz-artifacts/$t"
  mkdir -p "$work" "$artifacts"
  seeds="$root/tests/fuzz/corpus/$t"
  [ -d "$seeds" ] || seeds=""
  echo "== $t: ${secs}s"
  if ! "$build/tests/fuzz/$t" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
       -artifact_prefix="$artifacts/" "$work" ${seeds:+"$seeds"} 2>"$build/fuzz-$t.log"; then
    failed+=("$t")
    tail -n 40 "$build/fuzz-$t.log"
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/fuzz-$t.log" | sed "s/^/   /"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "CRASHED: ${failed[*]} (reproducers in $build/fuzz-artifacts/)" >&2
  exit 1
fi
echo "all fuzz targets ran ${secs}s without a crash"
