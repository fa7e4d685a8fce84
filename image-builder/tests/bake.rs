//! `aibox-image bake` end to end, against real peers (../shared/peers/README.md): Debian's
//! distribution registry, skopeo, umoci, podman with runc, debootstrap, and an independent
//! implementation of Cosign's formats (tests/peers/cosign_fixture.py).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::LazyLock;

use aibox_test_harness::{Registry, require};
use serde_json::Value;

/// One registry for every test of this binary.
static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::start);

/// Signed packs in `toolpacks`: hello@1 (packs/hello/1) and greet@1 (depends on hello@1).
static PACKS: LazyLock<Site> = LazyLock::new(|| {
    let site = Site::new();
    site.aibox(&["-q", "pack", "publish", workspace().join("packs/hello/1").to_str().unwrap(), "--to", &REGISTRY.store("toolpacks"), "--key", &site.key()]);
    let greet = site.dir.path().join("greet");
    std::fs::create_dir_all(greet.join("root/bin")).unwrap();
    std::fs::write(greet.join("pack.yaml"), "name: greet\nversion: 1.0.0\ndescription: greets through hello\nmaintainer: tests <t@example.com>\npath: [bin]\ndepends: [hello@1]\n").unwrap();
    write_exec(&greet.join("root/bin/greet"), "#!/bin/sh\necho greet; hello\n");
    site.aibox(&["-q", "pack", "publish", greet.to_str().unwrap(), "--to", &REGISTRY.store("toolpacks"), "--key", &site.key()]);
    site
});

/// Keys and files shared by the tests.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let site = Self { dir };
        site.aibox(&["key", "generate", "--output-key-prefix", site.dir.path().join("publisher").to_str().unwrap()]);
        site
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }


    fn key(&self) -> String {
        self.path().join("publisher.key").display().to_string()
    }

    fn public(&self) -> PathBuf {
        self.path().join("publisher.pub")
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(self.path())
            .env("HOME", self.path().join("home"))
            .env("COSIGN_PASSWORD", "test-password")
            .env("NO_COLOR", "1")
            .env("AIBOX_SYSTEM_CONFIG", self.path().join("no-system-config.yaml"))
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("AIBOX_IMAGE_SIGN_KEY")
            .env_remove("AIBOX_IMAGE_REVISION");
        c
    }

    fn aibox(&self, args: &[&str]) -> String {
        ok(self.command(&aibox_bin()).args(args).output().unwrap(), "aibox", args)
    }

    fn bake(&self, args: &[&str]) -> Output {
        self.command(Path::new(env!("CARGO_BIN_EXE_aibox-image"))).arg("bake").args(args).output().unwrap()
    }
}

/// The `aibox` binary of this build (beside `aibox-image`; `cargo test --workspace` builds it).
fn aibox_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_aibox-image")).with_file_name("aibox");
    assert!(bin.is_file(), "{} is missing: run the tests with `cargo test --workspace` (or `cargo build -p aibox-pkgmgr` first)", bin.display());
    bin
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

fn ok(out: Output, program: &str, args: &[&str]) -> String {
    assert!(out.status.success(), "{program} {args:?} failed ({:?})\nstdout: {}\nstderr: {}", out.status.code(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn run(program: &str, args: &[&str]) -> String {
    require(program);
    ok(Command::new(program).args(args).output().unwrap(), program, args)
}

/// `aibox-image --json bake ARGS` that must succeed; its report.
fn bake_ok(site: &Site, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = site.command(Path::new(env!("CARGO_BIN_EXE_aibox-image"))).args(["--json", "bake"]).args(args).output().unwrap();
    serde_json::from_str(&ok(out, "aibox-image bake", &all)).unwrap()
}

/// `aibox-image bake ARGS` that must fail with exit 1; its stderr.
fn bake_fails(site: &Site, args: &[&str]) -> String {
    let out = site.bake(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "bake {args:?} should fail\nstdout: {}\nstderr: {stderr}", String::from_utf8_lossy(&out.stdout));
    stderr
}

/// A tiny root filesystem tarball: busybox (static) as sh and friends, root in /etc/passwd.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    require("busybox");
    let root = dir.join("busybox-root");
    for d in ["bin", "etc", "tmp", "root"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| Path::new(p).is_file()).expect("busybox-static is installed");
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for tool in ["sh", "ls", "cat", "id", "stat", "echo", "env", "touch", "rm"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(tool)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    let tar = dir.join("busybox-rootfs.tar");
    run("tar", &["--numeric-owner", "-C", root.to_str().unwrap(), "-cf", tar.to_str().unwrap(), "."]);
    tar
}

/// An images.yaml in `dir` for `namespace` of the shared registry.
fn images_yaml(dir: &Path, namespace: &str, base: &str, variants: &str) -> PathBuf {
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, format!("trust:\n  - store: {}\n    keys: [/etc/aibox/keys/publisher.pub]\n", REGISTRY.store("toolpacks"))).unwrap();
    let path = dir.join("images.yaml");
    std::fs::write(
        &path,
        format!("registry: {}\nstore: {}\nsource: https://git.example/aibox\nbase:\n{base}  policy: ./policy.yaml\n  keys: [{}]\nvariants:\n{variants}", REGISTRY.store(namespace), REGISTRY.store("toolpacks"), PACKS.public().display()),
    )
    .unwrap();
    path
}

fn podman(args: &[&str]) -> String {
    require("podman");
    let mut all = vec!["--runtime", "runc", "run", "--rm", "--pull=always", "--tls-verify=false", "--network", "host"];
    all.extend_from_slice(args);
    run("podman", &all)
}

fn image_ref(namespace: &str, name: &str, tag: &str) -> String {
    format!("{}/{namespace}/{name}:{tag}", REGISTRY.addr)
}

fn inspect(reference: &str, raw: bool) -> Value {
    let mut args = vec!["inspect", "--tls-verify=false"];
    if raw {
        args.push("--raw");
    }
    let reference = format!("docker://{reference}");
    args.push(&reference);
    serde_json::from_str(&run("skopeo", &args)).unwrap()
}

fn blob(repo: &str, digest: &str) -> Vec<u8> {
    let url = format!("http://{}/v2/{repo}/blobs/{digest}", REGISTRY.addr);
    reqwest_get(&url)
}

fn reqwest_get(url: &str) -> Vec<u8> {
    let out = Command::new("python3").args(["-c", "import sys,urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())", url]).output().unwrap();
    assert!(out.status.success(), "GET {url}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn bakes_signed_reproducible_variants_that_podman_runs() {
    let site = &*PACKS;
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    let images = images_yaml(
        dir.path(),
        "tiny",
        &format!("  name: tiny-base\n  tag: \"1\"\n  rootfs: {}\n  aibox: {}\n", rootfs.display(), aibox_bin().display()),
        "  - name: tiny-greet\n    tag: 1-test\n    packs: [greet@1]\n",
    );
    let images = images.to_str().unwrap();
    let report = bake_ok(site, &[images, "--sign-key", &site.key(), "--date", "20261123", "--revision", "abc123"]);
    let variant = &report["images"][1];
    assert_eq!(variant["name"], "tiny-greet");
    assert_eq!(variant["tags"], serde_json::json!(["1-test", "1-test-20261123"]));
    let packs: Vec<&str> = variant["packs"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(packs, ["hello", "greet"], "dependencies are baked too, first");

    // skopeo reads it; the pack layers are the published blobs, unchanged.
    let config = inspect(&image_ref("tiny", "tiny-greet", "1-test"), false);
    assert_eq!(config["Digest"], variant["digest"]);
    assert_eq!(config["Labels"]["org.opencontainers.image.created"], "2026-11-23T00:00:00Z");
    let raw_config: Value = serde_json::from_slice(&blob("tiny/tiny-greet", inspect(&image_ref("tiny", "tiny-greet", "1-test"), true)["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(raw_config["config"]["User"], "1000:1000");
    assert_eq!(raw_config["config"]["WorkingDir"], "/home/dev");
    assert_eq!(config["Labels"]["org.opencontainers.image.revision"], "abc123");
    assert_eq!(config["Labels"]["org.opencontainers.image.source"], "https://git.example/aibox");
    let env: Vec<&str> = config["Env"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    // As env.sh: packs in name order, each putting its dirs first.
    assert!(env[0].starts_with("PATH=/opt/toolpacks/hello/current/bin:/opt/toolpacks/greet/current/bin:"), "{env:?}");
    assert!(env.contains(&"HELLO_HOME=/opt/toolpacks/hello/current"), "{env:?}");
    let layers: Vec<&str> = config["Layers"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(layers.len(), 5, "rootfs, aibox, hello, greet, state: {layers:?}");
    for pack in ["hello", "greet"] {
        let published = inspect(&format!("{}/toolpacks/{pack}:1.0.0", REGISTRY.addr), true);
        assert!(layers.contains(&published["layers"][0]["digest"].as_str().unwrap()), "{pack}'s layer blob is in the image as published");
    }
    let date_tagged = inspect(&image_ref("tiny", "tiny-greet", "1-test-20261123"), false);
    assert_eq!(date_tagged["Digest"], variant["digest"]);

    // Signed: an independent implementation of cosign's verification accepts it.
    for image in report["images"].as_array().unwrap() {
        let repo = format!("tiny/{}", image["name"].as_str().unwrap());
        let out = run("python3", &[workspace().join("tests/peers/cosign_fixture.py").to_str().unwrap(), "verify", &REGISTRY.addr, &repo, image["digest"].as_str().unwrap(), site.public().to_str().unwrap()]);
        assert!(out.contains(&format!("{}/{repo}", REGISTRY.addr)), "{out}");
    }

    // The SBOM lists the base and every pack by name, version and digest.
    let digest = variant["digest"].as_str().unwrap();
    let attachment = inspect(&format!("{}/tiny/tiny-greet:{}.sbom", REGISTRY.addr, digest.replace(':', "-")), true);
    assert_eq!(attachment["subject"]["digest"], digest);
    assert_eq!(attachment["layers"][0]["mediaType"], "spdx+json", "the media type cosign gives SPDX JSON");
    let sbom: Value = serde_json::from_slice(&blob("tiny/tiny-greet", attachment["layers"][0]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
    let listed: Vec<(String, String, String)> = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["versionInfo"].as_str().unwrap().to_owned(), p["checksums"][0]["checksumValue"].as_str().unwrap().to_owned()))
        .collect();
    for p in variant["packs"].as_array().unwrap() {
        let hex = p["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
        assert!(listed.contains(&(p["name"].as_str().unwrap().to_owned(), "1.0.0".to_owned(), hex)), "{listed:?}");
    }
    assert!(listed.iter().any(|(n, v, _)| n == "tiny-base" && v == "1"), "{listed:?}");

    // umoci unpacks it (it reads gzip only: skopeo recompresses the copy it takes).
    let oci = dir.path().join("oci");
    run("skopeo", &["copy", "-q", "--src-tls-verify=false", "--dest-compress", "--dest-compress-format", "gzip", &format!("docker://{}", image_ref("tiny", "tiny-greet", "1-test")), &format!("oci:{}:v", oci.display())]);
    let unpacked = dir.path().join("unpacked");
    let mut umoci = vec!["raw", "unpack"];
    let root = nix_is_root();
    if !root {
        umoci.push("--rootless");
    }
    let image_arg = format!("{}:v", oci.display());
    umoci.extend(["--image", &image_arg, unpacked.to_str().unwrap()]);
    run("umoci", &umoci);
    assert!(std::fs::read_to_string(unpacked.join("etc/passwd")).unwrap().contains("dev:x:1000:1000::/home/dev:/bin/sh"));
    let state: Value = serde_json::from_slice(&std::fs::read(unpacked.join("opt/toolpacks/.aibox/state.json")).unwrap()).unwrap();
    assert_eq!(state["packs"]["greet"]["requested"], "greet@1");
    assert_eq!(state["packs"]["hello"]["requested"], Value::Null, "a dependency");
    assert_eq!(std::fs::read_link(unpacked.join("opt/toolpacks/hello/current")).unwrap(), Path::new("1.0.0"));
    assert!(unpacked.join("opt/toolpacks/hello/1.0.0/bin/hello").is_file());
    assert_eq!(std::fs::read(unpacked.join("usr/local/bin/aibox")).unwrap(), std::fs::read(aibox_bin()).unwrap());
    if root {
        use std::os::unix::fs::MetadataExt;
        for owned in ["opt/toolpacks", "opt/toolpacks/hello", "opt/toolpacks/hello/1.0.0", "opt/toolpacks/hello/1.0.0/bin", "home/dev"] {
            assert_eq!(std::fs::symlink_metadata(unpacked.join(owned)).unwrap().uid(), 1000, "{owned} belongs to dev");
        }
        assert_eq!(std::fs::metadata(unpacked.join("opt/toolpacks/hello/1.0.0/bin/hello")).unwrap().uid(), 0, "pack files stay as published");
    }

    // podman runs it: the tools work with no setup, as the image's user, and it can remove them.
    let out = podman(&[&image_ref("tiny", "tiny-greet", "1-test"), "sh", "-c", "id -u; greet; echo $HELLO_HOME; rm -r /opt/toolpacks/hello/1.0.0 && echo removable"]);
    assert_eq!(out, "1000\ngreet\nHello from aibox (pack root: /opt/toolpacks/hello/current)\n/opt/toolpacks/hello/current\nremovable\n");
    let out = podman(&[&image_ref("tiny", "tiny-greet", "1-test"), "sh", "-lc", "cat /etc/profile.d/aibox.sh >/dev/null && . /opt/toolpacks/env.sh && hello"]);
    assert!(out.contains("Hello from aibox"), "{out}");

    // Same inputs, same digests; and nothing is sent again.
    let again = bake_ok(site, &[images, "--sign-key", &site.key(), "--date", "20261123", "--revision", "abc123"]);
    for (a, b) in report["images"].as_array().unwrap().iter().zip(again["images"].as_array().unwrap()) {
        assert_eq!(a["digest"], b["digest"], "{} is reproducible", a["name"]);
        assert_eq!(b["upload"]["blobs_uploaded"], 0, "{b}");
    }
    let dry = bake_ok(site, &[images, "--date", "20261123", "--revision", "abc123", "--dry-run"]);
    assert_eq!(dry["images"][1]["digest"], variant["digest"], "a dry run computes the digest a push gives");

    // Another day: new date tags, config and state layer (its install times); the same other layers.
    let next = bake_ok(site, &[images, "--sign-key", &site.key(), "--date", "20261124", "--revision", "abc123", "--only", "tiny-greet"]);
    assert_eq!(next["images"].as_array().unwrap().len(), 1, "--only bakes only that image");
    assert_ne!(next["images"][0]["digest"], variant["digest"]);
    assert_eq!(next["images"][0]["upload"]["blobs_uploaded"], 2, "config and state layer: {}", next["images"][0]["upload"]);
    let layers_next: Vec<&Value> = next["images"][0]["layers"].as_array().unwrap().iter().map(|l| &l["digest"]).collect();
    let layers_then: Vec<&Value> = variant["layers"].as_array().unwrap().iter().map(|l| &l["digest"]).collect();
    assert_eq!(layers_next[..4], layers_then[..4]);
}

/// A variant whose base and packs are already in the registry costs manifests and a config.
#[test]
fn a_new_variant_uploads_only_manifests_and_config() {
    let site = &*PACKS;
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    let base = format!("  name: up-base\n  tag: \"1\"\n  rootfs: {}\n  aibox: {}\n", rootfs.display(), aibox_bin().display());
    let images = images_yaml(dir.path(), "uploads", &base, "  - name: up-hello\n    tag: \"1\"\n    packs: [hello@1]\n");
    let first = bake_ok(site, &[images.to_str().unwrap(), "--sign-key", &site.key(), "--date", "20261123"]);
    let base_upload = &first["images"][0]["upload"];
    assert_eq!(base_upload["blobs_uploaded"], 3, "rootfs, aibox layer, config: {base_upload}");
    let hello = &first["images"][1]["upload"];
    assert_eq!(hello["blobs_mounted"], 3, "base layers from the base repository, the pack layer from the pack store: {hello}");
    // A second variant: only its config and its state layer (a few hundred bytes) are new.
    let images = images_yaml(dir.path(), "uploads", &base, "  - name: up-hello\n    tag: \"1\"\n    packs: [hello@1]\n  - name: up-hello-too\n    tag: \"1\"\n    packs: [hello@1.0]\n");
    let second = bake_ok(site, &[images.to_str().unwrap(), "--sign-key", &site.key(), "--date", "20261123", "--only", "up-hello-too"]);
    let up = &second["images"][0]["upload"];
    assert_eq!(up["blobs_mounted"], 3, "base layers and the pack layer: {up}");
    assert_eq!(up["blobs_uploaded"], 2, "config and state layer: {up}");
    assert!(up["bytes_uploaded"].as_u64().unwrap() < 4096, "{up}");
}

/// A base from an existing image reuses its layers; the aibox layer edits its accounts.
#[test]
fn builds_on_an_existing_image() {
    let site = &*PACKS;
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    // The "upstream" image: the rootfs as it is, nothing of aibox.
    let upstream = dir.path().join("upstream.yaml");
    std::fs::write(&upstream, format!("registry: {}\nstore: {}\nbase:\n  name: busybox\n  tag: \"1\"\n  rootfs: {}\n  aibox: false\n", REGISTRY.store("library"), REGISTRY.store("toolpacks"), rootfs.display())).unwrap();
    let up = bake_ok(site, &[upstream.to_str().unwrap(), "--date", "20261123"]);
    let upstream_layer = up["images"][0]["layers"][0]["digest"].clone();
    let config = inspect(&image_ref("library", "busybox", "1"), false);
    assert!(config["Labels"].get("org.opencontainers.image.title").is_some());

    let images = images_yaml(
        dir.path(),
        "onimage",
        &format!("  name: on-base\n  tag: \"1\"\n  image: docker://{}\n  aibox: {}\n", image_ref("library", "busybox", "1"), aibox_bin().display()),
        "  - name: on-hello\n    tag: \"1\"\n    packs: [hello@1]\n",
    );
    let report = bake_ok(site, &[images.to_str().unwrap(), "--sign-key", &site.key(), "--date", "20261123"]);
    let base = &report["images"][0];
    assert_eq!(base["layers"][0]["digest"], upstream_layer, "the base image's layer is reused");
    assert_eq!(base["upload"]["blobs_mounted"], 1, "and mounted, not sent: {}", base["upload"]);
    let manifest = inspect(&image_ref("onimage", "on-base", "1"), true);
    assert_eq!(manifest["annotations"]["org.opencontainers.image.base.digest"], up["images"][0]["digest"]);
    let out = podman(&[&image_ref("onimage", "on-hello", "1"), "sh", "-c", "id -un; hello"]);
    assert_eq!(out, "dev\nHello from aibox (pack root: /opt/toolpacks/hello/current)\n");
}

#[test]
fn refuses_bad_inputs_and_pushes_nothing() {
    let site = &*PACKS;
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    let base = format!("  name: bad-base\n  tag: \"1\"\n  rootfs: {}\n  aibox: {}\n", rootfs.display(), aibox_bin().display());

    // A pack signed by a key the image's policy does not trust.
    let other = Site::new();
    let rogue = other.path().join("rogue");
    std::fs::create_dir_all(rogue.join("root/bin")).unwrap();
    std::fs::write(rogue.join("pack.yaml"), "name: rogue\nversion: 1.0.0\ndescription: d\nmaintainer: m\npath: [bin]\n").unwrap();
    write_exec(&rogue.join("root/bin/rogue"), "#!/bin/sh\n");
    other.aibox(&["-q", "pack", "publish", rogue.to_str().unwrap(), "--to", &REGISTRY.store("toolpacks"), "--key", &other.key()]);
    let images = images_yaml(dir.path(), "bad", &base, "  - name: bad-rogue\n    tag: \"1\"\n    packs: [rogue@1]\n");
    let err = bake_fails(site, &[images.to_str().unwrap(), "--sign-key", &site.key()]);
    assert!(err.contains("rogue") && err.contains("signature"), "{err}");

    // A pack the policy refuses (it declares a network endpoint the policy does not allow).
    let netpack = other.path().join("netpack");
    std::fs::create_dir_all(netpack.join("root/bin")).unwrap();
    std::fs::write(netpack.join("pack.yaml"), "name: netpack\nversion: 1.0.0\ndescription: d\nmaintainer: m\npath: [bin]\nnetwork:\n  endpoints: [\"evil.example:443\"]\n").unwrap();
    write_exec(&netpack.join("root/bin/netpack"), "#!/bin/sh\n");
    site.aibox(&["-q", "pack", "publish", netpack.to_str().unwrap(), "--to", &REGISTRY.store("toolpacks"), "--key", &site.key()]);
    let images = images_yaml(dir.path(), "bad", &base, "  - name: bad-net\n    tag: \"1\"\n    packs: [netpack@1]\n");
    let err = bake_fails(site, &[images.to_str().unwrap(), "--sign-key", &site.key()]);
    assert!(err.contains("evil.example:443"), "{err}");

    // A missing pack, a rootfs that is not a tar, a broken images.yaml, a wrong --only.
    let images = images_yaml(dir.path(), "bad", &base, "  - name: bad-missing\n    tag: \"1\"\n    packs: [nosuch@1]\n");
    assert!(bake_fails(site, &[images.to_str().unwrap()]).contains("nosuch"));
    std::fs::write(dir.path().join("junk.tar"), "this is not a tarball, just some text long enough to look like one").unwrap();
    let images = images_yaml(dir.path(), "bad", &base.replace(&rootfs.display().to_string(), "./junk.tar"), "  - name: bad-x\n    tag: \"1\"\n    packs: [hello@1]\n");
    let err = bake_fails(site, &[images.to_str().unwrap()]);
    assert!(err.contains("junk.tar") && err.contains("tar"), "{err}");
    std::fs::write(dir.path().join("broken.yaml"), "registry: [unclosed\n").unwrap();
    assert!(bake_fails(site, &[dir.path().join("broken.yaml").to_str().unwrap()]).contains("line"));
    let images = images_yaml(dir.path(), "bad", &base, "  - name: bad-x\n    tag: \"1\"\n    packs: [hello@1]\n");
    assert!(bake_fails(site, &[images.to_str().unwrap(), "--only", "nosuch"]).contains("no such image"));

    // Nothing of any of these reached the registry.
    let catalog: Value = serde_json::from_slice(&reqwest_get(&format!("http://{}/v2/_catalog", REGISTRY.addr))).unwrap();
    let repos: Vec<&str> = catalog["repositories"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert!(!repos.iter().any(|r| r.starts_with("bad/")), "{repos:?}");
}

/// A real Debian made with debootstrap, with aibox in it: `aibox install` works inside the
/// container against the registry, and in a variant `aibox` knows the baked packs.
#[test]
fn debian_base_runs_aibox_inside() {
    let site = &*PACKS;
    require("debootstrap");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("debian");
    let suite = std::fs::read_to_string("/etc/os-release").ok().and_then(|s| s.lines().find_map(|l| l.strip_prefix("VERSION_CODENAME=").map(str::to_owned))).unwrap_or_else(|| "bookworm".into());
    let mirror = std::env::var("AIBOX_TEST_DEBIAN_MIRROR").unwrap_or_else(|_| "http://deb.debian.org/debian".into());
    run("debootstrap", &["--variant=minbase", &suite, root.to_str().unwrap(), &mirror]);
    let tar = dir.path().join("debian.tar");
    run("tar", &["--numeric-owner", "-C", root.to_str().unwrap(), "-cf", tar.to_str().unwrap(), "."]);
    let images = images_yaml(
        dir.path(),
        "debian",
        &format!("  name: deb-base\n  tag: \"{suite}\"\n  rootfs: {}\n  aibox: {}\n", tar.display(), aibox_bin().display()),
        &format!("  - name: deb-greet\n    tag: \"1-{suite}\"\n    packs: [greet@1]\n"),
    );
    bake_ok(site, &[images.to_str().unwrap(), "--sign-key", &site.key(), "--date", "20261123"]);

    let base = image_ref("debian", "deb-base", &suite);
    let out = podman(&[&base, "bash", "-lc", "whoami && aibox install hello@1 && . /opt/toolpacks/env.sh && hello && aibox status"]);
    assert!(out.starts_with("dev\n") && out.contains("Hello from aibox") && out.contains("hello"), "{out}");

    let variant = image_ref("debian", "deb-greet", &format!("1-{suite}"));
    let out = podman(&[&variant, "bash", "-lc", "aibox --json status"]);
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["packs"]["greet"]["version"], "1.0.0", "{status}");
    let out = podman(&[&variant, "bash", "-lc", "aibox --json install greet@1 && greet && aibox uninstall greet && aibox --json status"]);
    assert!(out.contains("\"already-installed\"") && out.contains("Hello from aibox"), "{out}");
    assert!(!out.rsplit_once("\"packs\"").unwrap().1.contains("\"greet\""), "uninstalled as the image's user: {out}");
}

fn nix_is_root() -> bool {
    run("id", &["-u"]).trim() == "0"
}
