#!/usr/bin/env bash
# README's test command: installs Debian dependencies, builds, and runs every test suite:
#   1. unit tests (doctest)                     build/
#   2. unit tests under ASan + UBSan            build-asan/
#      and the threaded ones (handshake threads, worker inbox, loop calls) under ThreadSanitizer
#                                                                             build-tsan/
#   3. namespace integration tests, run against the real binaries (as root); then many_ues.sh
#      and worker_loop_stalled.sh once more with a ThreadSanitizer portholed on two event loops
#   4. the privileged netlink/nftables self-test in a throw-away namespace
#   5. fuzz smoke: each libFuzzer target for FUZZ_SECONDS (default 15)
#   6. Debian packages: build both (scripts/package.sh, lintian errors fail), install them, start
#      the installed portholed as its service would in a namespace, purge (tests/package/)
# Usage: sudo scripts/test.sh          (CI runs exactly this through .ci/run)
# Environment: FUZZ_SECONDS=0 skips fuzzing; PACKAGES=0 skips the packages; JOBS=N build parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
PACKAGES=${PACKAGES:-1}

stage() { printf '\n=== %s (%s UTC)\n' "$*" "$(date -u +%T)"; }
passed=0
failed=0
failures=()
record() {  # name, exit code
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

stage "dependencies"
bash scripts/install-deps.sh

stage "build (RelWithDebInfo, -Wall -Wextra, warnings are errors)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS=-Werror >/dev/null
cmake --build build -j "$JOBS"

stage "unit tests"
set +e
(cd build && ctest -L unit --output-on-failure)
record unit $?
set -e

stage "build with AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPORTHOLE_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$JOBS"

stage "unit tests under ASan + UBSan"
set +e
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest -L unit --output-on-failure)
record unit-asan $?
set -e

stage "threaded unit tests under ThreadSanitizer (clang)"
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_FLAGS="-fsanitize=thread -O1" \
  -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread >/dev/null
cmake --build build-tsan -j "$JOBS" --target unit_tests
set +e
TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/unit_tests -tc="handshake pool*,worker inbox*,loop call*"
record unit-tsan $?
set -e

stage "integration tests (network namespaces; real porthole and portholed)"
set +e
(cd build && ctest -L integration --output-on-failure)
record integration $?
set -e

stage "portholed under ThreadSanitizer: 200 UEs over 2 event loops, a held loop (many_ues.sh, worker_loop_stalled.sh)"
cmake --build build-tsan -j "$JOBS" --target portholed
set +e
# halt_on_error: a race report stops portholed, and the test fails on its exit.
tsan_rc=0
for t in many_ues worker_loop_stalled; do
  TSAN_OPTIONS=halt_on_error=1 PORTHOLED_WORKERS=2 PORTHOLED_BIN=$ROOT/build-tsan/src/cli/portholed \
    PORTHOLE_BIN=$ROOT/build/src/cli/porthole PORTHOLECTL_BIN=$ROOT/build/src/cli/portholectl \
    UESIM_BIN=$ROOT/build/src/sim/porthole-uesim SCRIPTS_DIR=$ROOT/scripts T_TIMEOUT=300 \
    bash "tests/integration/$t.sh" || tsan_rc=1
done
record integration-tsan $tsan_rc
set -e

if [ "$FUZZ_SECONDS" != 0 ] && [ -x scripts/fuzz.sh ]; then
  stage "fuzz smoke (${FUZZ_SECONDS}s per target)"
  set +e
  FUZZ_SECONDS=$FUZZ_SECONDS bash scripts/fuzz.sh
  record fuzz $?
  set -e
fi

if [ "$PACKAGES" != 0 ]; then
  stage "Debian packages: build, lintian, install, start in a namespace, purge"
  set +e
  JOBS=$JOBS bash scripts/package.sh build-deb && bash tests/package/install_purge.sh build-deb
  record packages $?
  set -e
fi

stage "summary"
[ ${#failures[@]} -gt 0 ] && echo "failed suites: ${failures[*]}"
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
