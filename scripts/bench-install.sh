#!/usr/bin/env bash
# The install benchmark (docs/performance.md): aibox vs the floor pipeline, skopeo + umoci and
# the ORAS SDK, on a JDK from Debian's packages, registry on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
if [ ! -d /usr/lib/jvm/java-17-openjdk-amd64 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jdk-headless >/dev/null
fi
command -v /usr/bin/time >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
cargo build --release --locked --quiet --bin aibox
exec python3 bench/install_bench.py "$@"
