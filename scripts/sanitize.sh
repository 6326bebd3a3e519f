#!/usr/bin/env bash
# The unit tests and a short integration subset under AddressSanitizer + UndefinedBehaviorSanitizer:
# builds build-asan/ (gcc, -fsanitize=address,undefined, any report aborts), runs every unit
# test, then the integration tests of the record/replay path, hostile inputs, outputs, slow
# callbacks and tasks against build-asan/loopspy. A sanitizer report fails the run; loopspy's
# own leaks are reported too (LeakSanitizer).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -DLOOPSPY_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-asan --target loopspy unit_tests -j"$(nproc)"
export ASAN_OPTIONS="abort_on_error=0:halt_on_error=1:exitcode=86:detect_leaks=1:log_path=$PWD/build-asan/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=86:log_path=$PWD/build-asan/ubsan"
rm -f build-asan/asan.* build-asan/ubsan.*
status=0
build-asan/unit_tests || status=$?
LOOPSPY_BIN=build-asan/loopspy /usr/bin/python3 -m pytest -q -ra -p no:cacheprovider \
    tests/integration/test_record_replay.py tests/integration/test_hardening.py \
    "tests/integration/test_slow_callbacks.py" "tests/integration/test_tasks.py::test_dump_prints_threads_and_the_task_tree" \
    -k "not 100_khz" || status=$?
# A report from any run, loopspy's children included, is a failure even where the test passed.
if compgen -G "build-asan/asan.*" >/dev/null || compgen -G "build-asan/ubsan.*" >/dev/null; then
    cat build-asan/asan.* build-asan/ubsan.* 2>/dev/null | head -200 >&2
    echo "scripts/sanitize.sh: sanitizer reports above" >&2
    status=1
fi
exit $status
