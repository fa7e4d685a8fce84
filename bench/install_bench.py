#!/usr/bin/env python3
"""Install benchmark: aibox against its peers and the hardware floor, in one run.

A real ~260-300 MB tree (a JDK from Debian's packages) is published as a pack to a distribution
registry on loopback, then installed, by median of several alternated runs, with:

  aibox cold        `aibox install jdk` with an empty toolpacks dir and cache
  aibox cached      `aibox install jdk` after `aibox uninstall jdk` (the blob is in the cache)
  floor             curl blob | tee >(sha256sum) | zstd -d | tar -x   (the same zstd blob)
  skopeo + umoci    skopeo copy (image with the same tree, gzip layer) to a layout + umoci raw unpack
  oras              ORAS Python SDK pull + zstd -d | tar -x
  3 packs at once   `aibox install jdk1 jdk2 jdk3` vs three cold installs one after another

It prints a Markdown table with ratios to the floor and aibox's peak RSS (GNU time).

usage: bench/install_bench.py [--runs N] [--jdk DIR] [--aibox PATH]
"""
import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, text=True, capture_output=True, **kw).stdout


def timed(cmd, env=None):
    """Wall time of a shell command, and its peak RSS in KiB (GNU time)."""
    rss_file = tempfile.mktemp()
    start = time.perf_counter()
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file, "bash", "-c", cmd], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    rss = int(open(rss_file).read().strip().splitlines()[-1])
    os.unlink(rss_file)
    return wall, rss


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_registry(work, access_log=None):
    """A distribution registry on loopback; its access log (a line per request) goes to the
    file `access_log` when given."""
    port = free_port()
    cfg = os.path.join(work, "registry.yml")
    with open(cfg, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {work}/registry\n"
                f"http:\n  addr: 127.0.0.1:{port}\n")
    out = open(access_log, "w") if access_log else subprocess.DEVNULL
    proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=out, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            if "200" in sh(f"curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}/v2/"):
                return proc, f"127.0.0.1:{port}"
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.1)
    raise SystemExit("registry did not start")


def make_pack(work, name, jdk):
    d = os.path.join(work, "packs", name)
    os.makedirs(d, exist_ok=True)
    # Debian's JDK links into /etc: copy what the links point at, skip dangling ones.
    shutil.copytree(jdk, os.path.join(d, "root"), symlinks=False, ignore_dangling_symlinks=True)
    with open(os.path.join(d, "pack.yaml"), "w") as f:
        f.write(f"name: {name}\nversion: 17.0.0\ndescription: benchmark JDK\nmaintainer: bench\npath: [bin]\n"
                "env:\n  JAVA_HOME: ${PACK_ROOT}\n")
    return d


def push_image(work, registry, tree):
    """The same tree as a plain OCI image with a gzip layer, for skopeo + umoci."""
    layout = os.path.join(work, "image-layout")
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)
    tar_path = os.path.join(work, "image.tar")
    with tarfile.open(tar_path, "w") as t:
        t.add(tree, arcname="opt/jdk")
    diff_id = "sha256:" + sh(f"sha256sum {tar_path}").split()[0]
    sh(f"gzip -1 -n -c {tar_path} > {tar_path}.gz")
    os.unlink(tar_path)

    def put(path_or_bytes):
        if isinstance(path_or_bytes, bytes):
            data_hex = hashlib.sha256(path_or_bytes).hexdigest()
            open(os.path.join(blobs, data_hex), "wb").write(path_or_bytes)
            return "sha256:" + data_hex, len(path_or_bytes)
        data_hex = sh(f"sha256sum {path_or_bytes}").split()[0]
        size = os.path.getsize(path_or_bytes)
        shutil.move(path_or_bytes, os.path.join(blobs, data_hex))
        return "sha256:" + data_hex, size

    layer, layer_size = put(f"{tar_path}.gz")
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                         "config": {}}).encode()
    cfg, cfg_size = put(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": cfg_size},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layer_size}]}).encode()
    m, m_size = put(manifest)
    open(os.path.join(layout, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m, "size": m_size,
                                                  "annotations": {"org.opencontainers.image.ref.name": "jdk"}}]},
              open(os.path.join(layout, "index.json"), "w"))
    sh(f"skopeo copy --dest-tls-verify=false oci:{layout}:jdk docker://{registry}/bench/jdk-image:1")
    return layer_size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jdk", default="/usr/lib/jvm/java-17-openjdk-amd64")
    ap.add_argument("--aibox", default=os.path.join(ROOT, "target/release/aibox"))
    args = ap.parse_args()
    aibox = args.aibox
    work = tempfile.mkdtemp(prefix="aibox-bench-")
    proc, registry = start_registry(work)
    try:
        env = dict(os.environ, COSIGN_PASSWORD="bench", NO_COLOR="1")
        sh(f"{aibox} -q key generate --output-key-prefix {work}/k", env=env)
        store = f"docker://{registry}/bench"
        packs = {}
        for name in ["jdk", "jdk1", "jdk2", "jdk3"]:
            d = make_pack(work, name, args.jdk)
            out = json.loads(sh(f"{aibox} -q --json pack publish {d} --to {store} --key {work}/k.key", env=env))
            packs[name] = out["published"]["digest"]
            if name == "jdk":
                tree = os.path.join(d, "root")
        inspect = json.loads(sh(f"{aibox} --json pack inspect {store}/jdk:17.0.0", env=env))
        layer = inspect["layers"][0]["digest"]
        layer_size = inspect["layers"][0]["size"]
        tree_size = int(sh(f"du -sb {tree}").split()[0])
        files = int(sh(f"find {tree} -type f | wc -l"))
        gzip_size = push_image(work, registry, tree)
        bundle = f"{work}/jdk-bundle.tar"
        sh(f"{aibox} -q bundle create jdk --from {store} -o {bundle}", env=env)
        with open(f"{work}/policy.yaml", "w") as f:
            f.write(f"trust:\n  - store: {store}\n    keys: [{work}/k.pub]\n  - store: oci-archive:{bundle}\n    keys: [{work}/k.pub]\n")
        tp = f"{work}/toolpacks"
        aenv = dict(env, AIBOX_STORE=store, AIBOX_POLICY=f"{work}/policy.yaml", AIBOX_TOOLPACKS_DIR=tp)
        out = f"{work}/out"

        def fresh():
            shutil.rmtree(tp, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)

        counter = iter(range(1_000_000))
        ns = {"next": 0}

        def fresh_namespace():
            fresh()
            ns["next"] = next(counter)
            # skopeo remembers which repositories hold a blob and mounts from them instead of
            # sending it; forget that, so both tools send the same bytes.
            for cache in ["/var/lib/containers/cache/blob-info-cache-v1.boltdb",
                          os.path.expanduser("~/.local/share/containers/cache/blob-info-cache-v1.boltdb")]:
                if os.path.exists(cache):
                    os.unlink(cache)

        cases = {
            "aibox cold": (fresh, f"{aibox} -q install jdk"),
            "aibox cached": (lambda: (fresh(), subprocess.run(f"{aibox} -q install jdk && {aibox} -q uninstall jdk", shell=True, check=True, env=aenv)),
                             f"{aibox} -q install jdk"),
            "floor: curl | sha256sum | zstd -d | tar -x": (fresh, f"curl -s http://{registry}/v2/bench/jdk/blobs/{layer} | tee >(sha256sum >/dev/null) | zstd -dc | tar -x -C {out}"),
            "skopeo copy + umoci raw unpack (gzip)": (lambda: (fresh(), shutil.rmtree(f"{work}/sk", ignore_errors=True)),
                                                     f"skopeo copy -q --src-tls-verify=false docker://{registry}/bench/jdk-image:1 oci:{work}/sk:jdk && umoci raw unpack --rootless --image {work}/sk:jdk {out}/rootfs"),
            "ORAS Python SDK pull + zstd -d | tar -x": (lambda: (fresh(), shutil.rmtree(f"{work}/oras", ignore_errors=True)),
                                                       f"python3 -c \"import oras.client; oras.client.OrasClient(insecure=True).pull(target='{registry}/bench/jdk:17.0.0', outdir='{work}/oras')\" && zstd -dc {work}/oras/{layer} | tar -x -C {out}"),
            "aibox install from a bundle (oci-archive, --offline)": (fresh, f"{aibox} -q --offline --store oci-archive:{bundle} install jdk"),
            "aibox bundle push (to an empty registry namespace)": (fresh_namespace, lambda: f"{aibox} -q bundle push {bundle} --to docker://{registry}/ab{ns['next']}"),
            "skopeo copy oci-archive: to docker:// (same pack)": (fresh_namespace, lambda: f"skopeo copy -q --dest-tls-verify=false oci-archive:{bundle}:jdk:17.0.0 docker://{registry}/sk{ns['next']}/jdk:17.0.0"),
            "aibox 3 packs at once": (fresh, f"{aibox} -q install jdk1 jdk2 jdk3"),
            "aibox 3 packs one after another": (fresh, f"{aibox} -q install jdk1 && {aibox} -q install jdk2 && {aibox} -q install jdk3"),
        }
        results = {k: [] for k in cases}
        rss = {k: [] for k in cases}
        for _ in range(args.runs):
            for name, (prepare, cmd) in cases.items():  # alternated: one run of each per round
                prepare()
                wall, peak = timed(cmd() if callable(cmd) else cmd, env=aenv)
                results[name].append(wall)
                rss[name].append(peak)
        med = {k: statistics.median(v) for k, v in results.items()}
        floor = med["floor: curl | sha256sum | zstd -d | tar -x"]
        print(f"Tree: {tree_size / 1e6:.0f} MB, {files} files; zstd layer {layer_size / 1e6:.0f} MB (gzip {gzip_size / 1e6:.0f} MB); "
              f"registry on loopback; median of {args.runs} alternated runs; {os.cpu_count()} cores.\n")
        print("| pipeline | median wall | vs floor | peak RSS |")
        print("| --- | --- | --- | --- |")
        for name in cases:
            peak = max(rss[name]) / 1024
            cell = name.replace("|", "\\|")
            print(f"| {cell} | {med[name]:.2f} s | {med[name] / floor:.2f}x | {peak:.0f} MiB |")
        print()
        print(f"aibox peak RSS (cold install): {max(rss['aibox cold']) / 1024:.1f} MiB")
        print(f"3 packs at once / one after another: {med['aibox 3 packs at once'] / med['aibox 3 packs one after another']:.2f}")
        push, sk = med["aibox bundle push (to an empty registry namespace)"], med["skopeo copy oci-archive: to docker:// (same pack)"]
        print(f"bundle push / skopeo copy: {push / sk:.2f}")
    finally:
        proc.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
