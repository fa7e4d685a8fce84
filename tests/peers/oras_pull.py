#!/usr/bin/env python3
"""Pull a pack with the ORAS Python SDK (an independent OCI client) and list its layer.

usage: oras_pull.py HOST:PORT/REPO:TAG OUTDIR

Prints the tar listing of every pulled layer (after checking each blob's sha256), so a test
can assert what an independent client sees in an aibox-published artifact.
"""
import hashlib
import os
import subprocess
import sys

import oras.client


def main() -> int:
    target, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    client = oras.client.OrasClient(insecure=True)
    files = client.pull(target=target, outdir=outdir)
    if not files:
        print("no layers pulled", file=sys.stderr)
        return 1
    for path in files:
        name = os.path.basename(path)
        digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
        if name.startswith("sha256:") and name != f"sha256:{digest}":
            print(f"{path}: content digest sha256:{digest} does not match", file=sys.stderr)
            return 1
        listing = subprocess.run(
            f"zstd -dc '{path}' | tar -tf -", shell=True, check=True, capture_output=True, text=True
        ).stdout
        print(listing, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
