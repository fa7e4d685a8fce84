#!/usr/bin/env python3
"""Write a hostile pack into an OCI image layout: a valid aibox manifest whose gzip tar layer
breaks one extraction rule. The tests sign it with aibox (a signed pack can still be wrong)
and check that `aibox install` refuses or neutralises it.

usage: malicious_pack.py LAYOUT CASE        (the pack is named evil-CASE, version 1.0.0)

CASE: absolute, dotdot, symlink-escape, symlink-chain, write-through-symlink, hardlink-escape, device, fifo,
      setuid, entry-bomb, size-bomb, outside-prefix
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

CASES = [
    "absolute", "dotdot", "symlink-escape", "symlink-chain", "write-through-symlink", "hardlink-escape",
    "device", "fifo", "setuid", "entry-bomb", "size-bomb", "outside-prefix",
]


class Zeros(io.RawIOBase):
    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def add(tar, name, kind=tarfile.REGTYPE, data=b"", mode=0o644, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def layer(case, root):
    raw = io.BytesIO()
    gz = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0)
    with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, root + "/", tarfile.DIRTYPE, mode=0o755)
        add(tar, root + "/bin/ok", data=b"#!/bin/sh\necho ok\n", mode=0o755)
        if case == "absolute":
            add(tar, "/tmp/aibox-evil-absolute", data=b"pwned")
        elif case == "dotdot":
            add(tar, root + "/../../../../tmp/aibox-evil-dotdot", data=b"pwned")
        elif case == "symlink-escape":
            add(tar, root + "/etc-link", tarfile.SYMTYPE, link="../../../../../etc")
        elif case == "symlink-chain":
            # Each link looks inside on its own; followed together they reach the host's /.
            add(tar, root + "/a/b/c/", tarfile.DIRTYPE, mode=0o755)
            add(tar, root + "/a/b/c/up", tarfile.SYMTYPE, link="../../..")
            add(tar, root + "/esc", tarfile.SYMTYPE, link="a/b/c/up/../../../..")
        elif case == "write-through-symlink":
            add(tar, root + "/inner", tarfile.SYMTYPE, link="bin")
            add(tar, root + "/inner/x", data=b"through a link")
        elif case == "hardlink-escape":
            add(tar, root + "/passwd", tarfile.LNKTYPE, link="etc/passwd")
        elif case == "device":
            info = tarfile.TarInfo(root + "/null")
            info.type = tarfile.CHRTYPE
            info.devmajor, info.devminor = 1, 3
            tar.addfile(info)
        elif case == "fifo":
            add(tar, root + "/pipe", tarfile.FIFOTYPE)
        elif case == "setuid":
            add(tar, root + "/bin/suid", data=b"#!/bin/sh\nid\n", mode=0o4755)
            add(tar, root + "/open/", tarfile.DIRTYPE, mode=0o777)
            add(tar, root + "/open/anyone-writes", data=b"x", mode=0o666)
        elif case == "entry-bomb":
            for i in range(3000):
                add(tar, f"{root}/many/{i}")
        elif case == "size-bomb":
            info = tarfile.TarInfo(root + "/zeros")
            info.size = 64 * 1024 * 1024
            tar.addfile(info, Zeros(info.size))
        elif case == "outside-prefix":
            add(tar, "opt/toolpacks/other/1.0.0/bin/x", data=b"into another pack")
    gz.close()
    return raw.getvalue()


def put_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest


def main():
    layout, case = sys.argv[1], sys.argv[2]
    assert case in CASES, case
    name = "evil-" + case
    root = f"opt/toolpacks/{name}/1.0.0"
    layer_bytes = layer(case, root)
    config = json.dumps(
        {"name": name, "version": "1.0.0", "description": f"hostile pack: {case}", "maintainer": "tests", "path": ["bin"]},
        separators=(",", ":"), sort_keys=True,
    ).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.aibox.toolpack.v1",
        "config": {"mediaType": "application/vnd.aibox.toolpack.config.v1+json", "digest": put_blob(layout, config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put_blob(layout, layer_bytes), "size": len(layer_bytes)}],
    }).encode()
    digest = put_blob(layout, manifest)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    index_path = os.path.join(layout, "index.json")
    index = json.load(open(index_path)) if os.path.exists(index_path) else {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
    index["manifests"].append({
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": f"{name}:1.0.0"},
    })
    with open(index_path, "w") as f:
        json.dump(index, f)
    print(digest)


if __name__ == "__main__":
    main()
