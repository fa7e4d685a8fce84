#!/usr/bin/env bash
# The load benchmark (docs/reliability.md): N concurrent installs (N = 1, 8, 32) of the same packs
# from one registry on loopback, against the floor pipeline; throughput and registry requests per
# install.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo build --release --locked --quiet --bin aibox
exec python3 bench/load_bench.py "$@"
