#!/usr/bin/env python3
"""An independent implementation of Cosign's documented key and signature formats, used to
prove aibox interoperates with cosign in both directions without the cosign binary.

  make-key PREFIX PASSWORD          PREFIX.key (ENCRYPTED COSIGN PRIVATE KEY: scrypt N=32768 r=8
                                    p=1 + nacl/secretbox over PKCS#8), PREFIX.pub, PREFIX.raw.pem
  sign REGISTRY REPO DIGEST RAWPEM  push a cosign signature (simple-signing payload layer with the
                                    dev.cosignproject.cosign/signature annotation, tag
                                    sha256-<hex>.sig) for manifest DIGEST
  verify REGISTRY REPO DIGEST PUB   check the signatures on DIGEST as `cosign verify --key` does

Formats: github.com/sigstore/cosign pkg/cosign/keys.go, pkg/oci/static, specs/SIGNATURE_SPEC.md.
"""
import base64
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

import nacl.secret
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIG_ANNOTATION = "dev.cosignproject.cosign/signature"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"


def pem(label: str, data: bytes) -> str:
    b64 = base64.b64encode(data).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def make_key(prefix: str, password: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    salt = os.urandom(32)
    box_key = hashlib.scrypt(password.encode(), salt=salt, n=32768, r=8, p=1, dklen=32, maxmem=64 * 1024 * 1024)
    nonce = os.urandom(24)
    ciphertext = nacl.secret.SecretBox(box_key).encrypt(der, nonce).ciphertext
    doc = {
        "kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    open(prefix + ".key", "w").write(pem("ENCRYPTED COSIGN PRIVATE KEY", json.dumps(doc).encode()))
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    open(prefix + ".pub", "wb").write(pub)
    raw = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    open(prefix + ".raw.pem", "wb").write(raw)


def http(method: str, url: str, data: bytes = None, headers: dict = None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req) as resp:
        return resp.status, dict(resp.headers), resp.read()


def push_blob(registry: str, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _, headers, _ = http("POST", f"http://{registry}/v2/{repo}/blobs/uploads/")
    location = headers["Location"]
    if location.startswith("/"):
        location = f"http://{registry}{location}"
    sep = "&" if "?" in location else "?"
    http("PUT", f"{location}{sep}digest={digest}", data, {"Content-Type": "application/octet-stream"})
    return digest


def sign(registry: str, repo: str, digest: str, raw_pem: str) -> None:
    key = serialization.load_pem_private_key(open(raw_pem, "rb").read(), password=None)
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": f"{registry}/{repo}"},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    payload_digest = push_blob(registry, repo, payload)
    config = json.dumps(
        {
            "architecture": "",
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [payload_digest]},
            "config": {},
        },
        separators=(",", ":"),
    ).encode()
    config_digest = push_blob(registry, repo, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config), "digest": config_digest},
        "layers": [
            {"mediaType": SIMPLE_SIGNING, "size": len(payload), "digest": payload_digest, "annotations": {SIG_ANNOTATION: signature}}
        ],
    }
    tag = digest.replace(":", "-") + ".sig"
    http(
        "PUT",
        f"http://{registry}/v2/{repo}/manifests/{tag}",
        json.dumps(manifest).encode(),
        {"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )


def verify(registry: str, repo: str, digest: str, pub_path: str) -> int:
    pub = serialization.load_pem_public_key(open(pub_path, "rb").read())
    tag = digest.replace(":", "-") + ".sig"
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    try:
        _, _, body = http("GET", f"http://{registry}/v2/{repo}/manifests/{tag}", headers={"Accept": accept})
    except urllib.error.HTTPError as e:
        print(f"no signature manifest {tag}: {e}", file=sys.stderr)
        return 1
    for layer in json.loads(body)["layers"]:
        if layer["mediaType"] != SIMPLE_SIGNING:
            continue
        _, _, payload = http("GET", f"http://{registry}/v2/{repo}/blobs/{layer['digest']}")
        if "sha256:" + hashlib.sha256(payload).hexdigest() != layer["digest"]:
            continue
        signature = base64.b64decode(layer["annotations"][SIG_ANNOTATION])
        try:
            pub.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        doc = json.loads(payload)
        if doc["critical"]["image"]["docker-manifest-digest"] == digest and doc["critical"]["type"] == "cosign container image signature":
            print(f"verified: {doc['critical']['identity']['docker-reference']}")
            return 0
    print("no signature verifies", file=sys.stderr)
    return 1


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make-key":
        make_key(*args)
    elif cmd == "sign":
        sign(*args)
    elif cmd == "verify":
        sys.exit(verify(*args))
    else:
        sys.exit(f"unknown command {cmd}")
