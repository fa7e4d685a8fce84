#!/usr/bin/env bash
# Run every test: install the test peers if missing, then the whole workspace's tests
# (unit tests, and end-to-end tests against a real registry, skopeo, ORAS and a cosign-format
# implementation). One build, one target dir.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo test --workspace --locked "$@"
