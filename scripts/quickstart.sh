#!/usr/bin/env bash
# The main job on the embedded default (an oci: layout store, no server needed):
#   1. as a pack author: generate a Cosign key, publish the sample pack packs/hello/1 signed
#      into an OCI layout;
#   2. as the platform team: write a policy that trusts that store with that key;
#   3. as a developer: `aibox install hello@1` into a toolpacks dir, source env.sh, run `hello`.
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

cat > "$work/policy.yaml" <<POLICY
trust:
  - store: oci:$work/store
    keys: [$work/cosign.pub]
install_methods: [docker-layer]
POLICY

export AIBOX_STORE="oci:$work/store" AIBOX_POLICY="$work/policy.yaml" AIBOX_TOOLPACKS_DIR="$work/toolpacks"
"$aibox" install hello@1
"$aibox" status
. "$work/toolpacks/env.sh"
hello
