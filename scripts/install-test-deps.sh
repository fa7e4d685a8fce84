#!/usr/bin/env bash
# Install the real peers the tests run against (../shared/peers/README.md): Debian's
# distribution registry, skopeo, umoci, openssl, htpasswd, zstd; podman with runc, debootstrap
# and busybox (the image builder's tests run what it bakes); nix-bin (the nix install method); git and npm (the MCP packs are
# built from npm and PyPI, git-mcp needs git); and the Python clients (ORAS, the MCP SDK, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(docker-registry skopeo umoci apache2-utils openssl zstd podman runc debootstrap busybox-static nix-bin)
command -v git >/dev/null || packages+=(git)
command -v npm >/dev/null || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# This sandbox refuses setrlimit: podman must not set default ulimits (peers/README.md).
conf=/etc/containers/containers.conf
if [ ! -e "$conf" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = []\n' | $sudo tee "$conf" >/dev/null
elif ! grep -qs '^default_ulimits' "$conf"; then
  echo "note: $conf has no default_ulimits = [] under [containers]; podman may fail to start containers here" >&2
fi
python3 -m pip install -q --disable-pip-version-check -r tests/peers/requirements.txt 2>&1 | grep -v "Running pip as the 'root' user" || true
