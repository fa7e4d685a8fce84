#!/usr/bin/env bash
# Run every test: install the test peers if missing, then the whole workspace's tests
# (unit tests, and end-to-end tests against a real registry, skopeo, ORAS and a cosign-format
# implementation; fault injection, disk full, SIGKILL crashes, concurrency), then a bounded
# fuzz run of every cargo-fuzz target (FUZZ_SECONDS each, default 20; FUZZ_SECONDS=0 skips it).
# One build, one target dir (the fuzz build has its own, fuzz/target: other compiler flags).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo test --workspace --locked "$@"
if [[ "${FUZZ_SECONDS:-20}" != 0 ]]; then
    bash scripts/fuzz.sh --seconds "${FUZZ_SECONDS:-20}"
fi
