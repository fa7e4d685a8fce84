#!/usr/bin/env python3
"""Load benchmark: N sandboxes installing the same packs from one registry at once.

A distribution registry on loopback holds two signed packs (`base`, and `tool` depending on it;
a generated tree each, deterministic content). For N = 1, 8, 32 it starts N `aibox install
tool` processes at once, each into its own toolpacks dir (N sandboxes, one registry), and, in
the same round, N floor pipelines (`curl blob | tee >(sha256sum) | zstd -d | tar -x` for both
layers: what any installer must at least do). It reports, by median of alternated runs:

  wall time, installs per second, MB/s of layers delivered, the ratio to the floor, and the
  registry requests per install (from the registry's own access log), split by kind: the
  /v2/ probes and token checks, manifests, blobs (fewer is better: no repeated token fetches,
  nothing fetched twice).

usage: bench/load_bench.py [--runs N] [--sizes 1,8,32] [--aibox PATH]
"""
import argparse
import base64
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from install_bench import ROOT, sh, start_registry  # noqa: E402


def make_tree(root, files, seed):
    """`files` files of 64 KiB: base64 of random bytes (compresses like code, about 3:4)."""
    rng = random.Random(seed)
    os.makedirs(os.path.join(root, "bin"), exist_ok=True)
    for i in range(files):
        d = os.path.join(root, "lib", f"d{i % 16}")
        os.makedirs(d, exist_ok=True)
        data = base64.b64encode(rng.randbytes(48 * 1024))
        with open(os.path.join(d, f"f{i}.txt"), "wb") as f:
            f.write(data)


def requests_by_kind(log_path, start_line):
    lines = open(log_path).read().splitlines()[start_line:]
    kinds = {"probe /v2/": 0, "manifests": 0, "blobs": 0, "other": 0}
    for line in lines:
        m = re.search(r'"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP', line)
        if not m:
            continue
        path = m.group(2)
        if path == "/v2/":
            kinds["probe /v2/"] += 1
        elif "/manifests/" in path:
            kinds["manifests"] += 1
        elif "/blobs/" in path:
            kinds["blobs"] += 1
        else:
            kinds["other"] += 1
    return kinds, len(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="1,8,32")
    ap.add_argument("--aibox", default=os.path.join(ROOT, "target/release/aibox"))
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    aibox = args.aibox
    work = tempfile.mkdtemp(prefix="aibox-load-")
    access = os.path.join(work, "access.log")
    proc, registry = start_registry(work, access)
    try:
        env = dict(os.environ, COSIGN_PASSWORD="bench", NO_COLOR="1", HOME=os.path.join(work, "home"))
        os.makedirs(env["HOME"], exist_ok=True)
        store = f"docker://{registry}/load"
        sh(f"{aibox} key generate --output-key-prefix {work}/k", env=env)
        for name, depends, seed in [("base", "", 1), ("tool", "depends: [base@1]\n", 2)]:
            d = os.path.join(work, "packs", name)
            make_tree(os.path.join(d, "root"), 160, seed)
            with open(os.path.join(d, "pack.yaml"), "w") as f:
                f.write(f"name: {name}\nversion: 1.0.0\ndescription: load benchmark\nmaintainer: bench\npath: [bin]\n{depends}")
            sh(f"{aibox} -q pack publish {d} --to {store} --key {work}/k.key", env=env)
        policy = os.path.join(work, "policy.yaml")
        with open(policy, "w") as f:
            f.write(f"trust:\n  - store: {store}\n    keys: [{work}/k.pub]\n")
        env.update(AIBOX_STORE=store, AIBOX_POLICY=policy)
        layers = []
        for name in ["base", "tool"]:
            raw = sh(f"skopeo inspect --raw --tls-verify=false docker://{registry}/load/{name}:1.0.0")
            layer = json.loads(raw)["layers"][0]
            layers.append((name, layer["digest"], layer["size"]))
        layer_bytes = sum(size for _, _, size in layers)
        tree_bytes = int(sh(f"du -sb {work}/packs/base/root {work}/packs/tool/root | awk '{{s+=$1}} END {{print s}}'").strip())

        def run_aibox(n, round_no):
            dirs = [os.path.join(work, f"tp-{n}-{round_no}-{i}") for i in range(n)]
            before = len(open(access).read().splitlines())
            start = time.perf_counter()
            procs = [subprocess.Popen([aibox, "-q", "install", "tool"], env=dict(env, AIBOX_TOOLPACKS_DIR=d),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for d in dirs]
            failed = [p.stderr.read().decode() for p in procs if p.wait() != 0]
            wall = time.perf_counter() - start
            if failed:
                raise SystemExit(f"{len(failed)} of {n} installs failed: {failed[0]}")
            time.sleep(0.2)  # the access log is written after the answer
            kinds, _ = requests_by_kind(access, before)
            for d in dirs:
                shutil.rmtree(d)
            return wall, kinds

        def run_floor(n, round_no):
            dirs = [os.path.join(work, f"fl-{n}-{round_no}-{i}") for i in range(n)]
            script = " & ".join(
                "(" + " && ".join(
                    f"mkdir -p {d}/{name} && curl -s http://{registry}/v2/load/{name}/blobs/{digest} | tee >(sha256sum >/dev/null) | zstd -dc | tar -x -C {d}/{name}"
                    for name, digest, _ in layers) + ")"
                for d in dirs) + " & wait"
            start = time.perf_counter()
            subprocess.run(["bash", "-c", script], check=True)
            wall = time.perf_counter() - start
            for d in dirs:
                shutil.rmtree(d, ignore_errors=True)
            return wall

        results = {}
        for n in sizes:
            aibox_walls, floor_walls, kinds_seen = [], [], []
            for r in range(args.runs):
                floor_walls.append(run_floor(n, r))
                wall, kinds = run_aibox(n, r)
                aibox_walls.append(wall)
                kinds_seen.append(kinds)
            results[n] = (statistics.median(aibox_walls), statistics.median(floor_walls), kinds_seen[-1])

        print(f"\nTwo packs per install (tool + its dependency base): trees {tree_bytes / 1e6:.1f} MB, "
              f"zstd layers {layer_bytes / 1e6:.1f} MB; registry on loopback; each install into its own "
              f"toolpacks dir; median of {args.runs} alternated runs; {os.cpu_count()} cores.\n")
        print("| N at once | aibox wall | installs/s | layer MB/s | floor wall | vs floor | requests per install | of which /v2/ probes, manifests, blobs |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for n, (wall, floor, kinds) in results.items():
            total = sum(kinds.values())
            print(f"| {n} | {wall:.2f} s | {n / wall:.1f} | {n * layer_bytes / wall / 1e6:.0f} | {floor:.2f} s | {wall / floor:.2f}x | "
                  f"{total / n:.1f} | {kinds['probe /v2/'] / n:.1f}, {kinds['manifests'] / n:.1f}, {kinds['blobs'] / n:.1f} |")
        print("\nfloor: per install, `curl blob | tee >(sha256sum) | zstd -d | tar -x` of both layers "
              "(2 requests, no tag listing, no signature, no policy).")
    finally:
        proc.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
