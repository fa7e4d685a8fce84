#!/usr/bin/env python3
"""Rewrite an OCI archive (an aibox bundle) with one part tampered, as an attacker with the
media in hand could.

  tamper_bundle.py IN OUT flip-blob HEX           flip one byte in the middle of blobs/sha256/HEX
  tamper_bundle.py IN OUT remove-signatures        drop every signature tag from index.json
  tamper_bundle.py IN OUT swap NAME:TAG OTHER:TAG  point NAME:TAG at OTHER:TAG's manifest
"""
import io
import json
import sys
import tarfile


def main():
    src, dst, case, *args = sys.argv[1:]
    members = []
    with tarfile.open(src) as tar:
        for m in tar.getmembers():
            data = tar.extractfile(m).read() if m.isfile() else None
            members.append((m, data))
    out = []
    for m, data in members:
        name = m.name.lstrip("./")
        if case == "flip-blob" and name == f"blobs/sha256/{args[0]}":
            b = bytearray(data)
            b[len(b) // 2] ^= 0xFF
            data = bytes(b)
        if name == "index.json":
            index = json.loads(data)
            refs = lambda e: (e.get("annotations") or {}).get("org.opencontainers.image.ref.name", "")
            if case == "remove-signatures":
                index["manifests"] = [e for e in index["manifests"] if not refs(e).endswith(".sig")]
            if case == "swap":
                target = next(e for e in index["manifests"] if refs(e) == args[1])
                for e in index["manifests"]:
                    if refs(e) == args[0]:
                        e["digest"], e["size"] = target["digest"], target["size"]
            data = json.dumps(index).encode()
        out.append((m, data))
    with tarfile.open(dst, "w") as tar:
        for m, data in out:
            if data is not None:
                m.size = len(data)
                tar.addfile(m, io.BytesIO(data))
            else:
                tar.addfile(m)


if __name__ == "__main__":
    main()
