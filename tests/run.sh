#!/usr/bin/env bash
#  Builds ketenpost and runs every test twice: once as built for use, once
#  under AddressSanitizer + UndefinedBehaviorSanitizer. Warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/deps.sh
jobs=$(nproc)

cmake -S . -B build -DKP_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j2

cmake -S . -B build-asan -DKP_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
      -DKP_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j"$jobs"
ctest --test-dir build-asan --output-on-failure -j2

echo "run.sh: all tests passed, plain and under ASan+UBSan"
