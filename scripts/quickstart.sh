#!/usr/bin/env bash
# The main job on the embedded default (no server needed): generate a Cosign key, publish the
# sample pack packs/hello/1 signed into an OCI layout (oci:), verify its signature, inspect it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --quiet --bin aibox
aibox="$PWD/target/debug/aibox"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export COSIGN_PASSWORD="${COSIGN_PASSWORD-quickstart}"

"$aibox" key generate --output-key-prefix "$work/cosign"
"$aibox" pack lint packs/hello/1
"$aibox" pack publish packs/hello/1 --to "oci:$work/store" --key "$work/cosign.key"
"$aibox" pack verify "oci:$work/store:hello:1.0.0" --key "$work/cosign.pub"
"$aibox" pack inspect "oci:$work/store:hello:1.0.0" --key "$work/cosign.pub"
