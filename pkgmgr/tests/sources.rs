//! Pack sources at build time: `url` downloads through a source mirror (a real HTTP server,
//! Python's `http.server`), every archive kind unpacked with `strip_components`, sha256 pins
//! enforced before use, and the download cache.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{Site, run};

/// `python3 -m http.server` serving `dir`; killed on drop.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    fn start(dir: &Path) -> Self {
        aibox_test_harness::require("python3");
        let port = aibox_test_harness::free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self { child, port };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        panic!("http.server did not start");
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(path: &Path) -> String {
    run("sha256sum", &[path.to_str().unwrap()]).split_whitespace().next().unwrap().to_owned()
}

/// Archives of `tool-1.0/bin/<kind>-tool` in every format, in `dir`; returns (file, sha256) pairs.
fn archives(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (kind, file, create) in [
        ("gz", "tool-1.0.tar.gz", "tar -czf"),
        ("xz", "tool-1.0.tar.xz", "tar -cJf"),
        ("zst", "tool-1.0.tar.zst", "tar --zstd -cf"),
        ("zip", "tool-1.0.zip", "python3 -m zipfile -c"),
    ] {
        let tree = dir.join(format!("tree-{kind}"));
        std::fs::create_dir_all(tree.join("tool-1.0/bin")).unwrap();
        let bin = tree.join(format!("tool-1.0/bin/{kind}-tool"));
        std::fs::write(&bin, format!("#!/bin/sh\necho {kind} works\n")).unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        run("sh", &["-c", &format!("cd {} && {create} {}/{file} tool-1.0", tree.display(), dir.display())]);
        out.push((file.to_owned(), sha256(&dir.join(file))));
    }
    out
}

#[test]
fn url_sources_through_a_mirror_every_archive_kind() {
    let site = Site::layout();
    let served = site.env.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let files = archives(&served);
    let server = HttpServer::start(&served);
    let mut yaml = String::from("sources:\n");
    for (file, sha) in &files {
        yaml.push_str(&format!("  - url: https://downloads.example.invalid/{file}\n    sha256: {sha}\n    strip_components: 1\n"));
    }
    let dir = site.env.path().join("src/tool");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pack.yaml"), format!("name: tool\nversion: 1.0.0\ndescription: d\nmaintainer: m\npath: [bin]\n{yaml}")).unwrap();

    let mirror = format!("https://downloads.example.invalid/=http://127.0.0.1:{}/", server.port);
    let cache = site.env.path().join("cache");
    let publish = |extra_env: &[(&str, &str)]| {
        let mut c = site.aibox();
        c.env("AIBOX_SOURCE_MIRRORS", &mirror).env("XDG_CACHE_HOME", &cache);
        for (k, v) in extra_env {
            c.env(k, v);
        }
        c
    };
    common::ok(publish(&[]), &["-q", "pack", "publish", dir.to_str().unwrap(), "--to", &site.store, "--key", &site.key]);
    site.ok(&["install", "tool@1"]);
    for kind in ["gz", "xz", "zst", "zip"] {
        let out = run(site.toolpacks.join(format!("tool/current/bin/{kind}-tool")).to_str().unwrap(), &[]);
        assert_eq!(out.trim(), format!("{kind} works"));
    }
    // Downloads are cached by sha256: a rebuild with the server gone works, and is identical.
    drop(server);
    let out = common::ok(publish(&[]), &["--json", "pack", "build", dir.to_str().unwrap(), "-o", &format!("oci:{}", site.env.path().join("again").display())]);
    let first = common::ok(site.aibox(), &["--json", "pack", "inspect", &format!("{}:tool:1.0.0", site.store)]);
    assert_eq!(common::json(&out)["digest"], common::json(&first)["digest"], "same sources, same pack");
}

#[test]
fn a_wrong_pin_names_both_hashes_and_builds_nothing() {
    let site = Site::layout();
    let served = site.env.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let files = archives(&served);
    let server = HttpServer::start(&served);
    let (file, real) = &files[0];
    let wrong = "0".repeat(64);
    let dir = site.env.path().join("src/bad");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pack.yaml"), format!("name: bad\nversion: 1.0.0\ndescription: d\nmaintainer: m\nsources:\n  - url: https://downloads.example.invalid/{file}\n    sha256: {wrong}\n")).unwrap();
    let mut c = site.aibox();
    c.env("AIBOX_SOURCE_MIRRORS", format!("https://downloads.example.invalid/=http://127.0.0.1:{}/", server.port)).env("XDG_CACHE_HOME", site.env.path().join("cache"));
    let stderr = common::fails(c, &["pack", "publish", dir.to_str().unwrap(), "--to", &site.store, "--key", &site.key]);
    assert!(stderr.contains(real) && stderr.contains(&wrong) && stderr.contains("fetched from http://127.0.0.1"), "{stderr}");
    assert!(!site.env.path().join("store/index.json").exists() || !std::fs::read_to_string(site.env.path().join("store/index.json")).unwrap().contains("bad"));
    // A mirror that is not a prefix rewrite is a clear error.
    let mut c = site.aibox();
    c.env("AIBOX_SOURCE_MIRRORS", "nexus.internal");
    let stderr = common::fails(c, &["pack", "build", dir.to_str().unwrap(), "-o", "oci:./out"]);
    assert!(stderr.contains("UPSTREAM_PREFIX=MIRROR_PREFIX"), "{stderr}");
}

#[test]
fn per_platform_sources_and_build_steps_without_network() {
    let site = Site::layout();
    let served = site.env.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    for arch in ["amd64", "arm64"] {
        std::fs::write(served.join(format!("tool-{arch}")), format!("#!/bin/sh\necho {arch}\n")).unwrap();
    }
    let server = HttpServer::start(&served);
    let dir = site.env.path().join("src/tool");
    std::fs::create_dir_all(&dir).unwrap();
    let mut yaml = String::from("name: tool\nversion: 1.0.0\ndescription: d\nmaintainer: m\nplatforms: [linux/amd64, linux/arm64]\npath: [bin]\nsources:\n");
    for arch in ["amd64", "arm64"] {
        yaml.push_str(&format!("  - url: https://dl.example.invalid/tool-{arch}\n    sha256: {}\n    platform: linux/{arch}\n    dest: bin\n", sha256(&served.join(format!("tool-{arch}")))));
    }
    yaml.push_str("build:\n  - cd \"$PACK_ROOT/bin\" && mv tool-* tool && echo \"$PACK_PLATFORM\" > \"$PACK_ROOT/platform\"\n");
    std::fs::write(dir.join("pack.yaml"), &yaml).unwrap();
    let aibox = || {
        let mut c = site.aibox();
        c.env("AIBOX_SOURCE_MIRRORS", format!("https://dl.example.invalid/=http://127.0.0.1:{}/", server.port)).env("XDG_CACHE_HOME", site.env.path().join("cache"));
        c
    };
    // Built for arm64 on this machine: the arm64 download, and the step saw the platform.
    common::ok(aibox(), &["-q", "pack", "publish", dir.to_str().unwrap(), "--platform", "linux/arm64", "--to", &site.store, "--key", &site.key]);
    site.ok(&["install", "tool"]);
    assert_eq!(run(site.toolpacks.join("tool/current/bin/tool").to_str().unwrap(), &[]).trim(), "arm64");
    assert_eq!(std::fs::read_to_string(site.toolpacks.join("tool/current/platform")).unwrap().trim(), "linux/arm64");
    // The step above ran; one that reaches for the network fails unless the recipe declares it.
    let fetch = format!("python3 -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{}/tool-amd64', timeout=5)\"", server.port);
    std::fs::write(dir.join("pack.yaml"), format!("{yaml}  - {fetch}\n")).unwrap();
    let stderr = common::fails(aibox(), &["pack", "build", dir.to_str().unwrap(), "-o", "oci:./out-net"]);
    assert!(stderr.contains("build steps have no network") && stderr.contains("build_network"), "{stderr}");
    std::fs::write(dir.join("pack.yaml"), format!("{yaml}  - {fetch}\nbuild_network: true\n")).unwrap();
    common::ok(aibox(), &["pack", "build", dir.to_str().unwrap(), "-o", "oci:./out-net"]);
}

#[test]
fn deb_sources_extract_a_debian_package() {
    aibox_test_harness::require("apt-get");
    let candidate = || run("apt-cache", &["policy", "hello"]).lines().find_map(|l| l.trim().strip_prefix("Candidate: ").map(str::to_owned)).filter(|c| c != "(none)");
    let version = candidate().or_else(|| {
        run("apt-get", &["update", "-qq"]);
        candidate()
    });
    let version = version.expect("Debian's `hello` package is in the archive");
    let site = Site::layout();
    let dir = site.env.path().join("src/hello-deb");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pack.yaml"), format!("name: hello-deb\nversion: 1.0.0\ndescription: d\nmaintainer: m\npath: [bin]\nsources:\n  - deb: hello={version}\n    strip_components: 1\n")).unwrap();
    site.env.ok(&["-q", "pack", "publish", dir.to_str().unwrap(), "--to", &site.store, "--key", &site.key]);
    site.ok(&["install", "hello-deb"]);
    let out = run(site.toolpacks.join("hello-deb/current/bin/hello").to_str().unwrap(), &[]);
    assert_eq!(out.trim(), "Hello, world!");
    // A wrong pin is refused with both hashes.
    std::fs::write(dir.join("pack.yaml"), format!("name: hello-deb\nversion: 1.0.1\ndescription: d\nmaintainer: m\nsources:\n  - deb: hello={version}\n    sha256: {}\n", "1".repeat(64))).unwrap();
    let stderr = site.env.fails(&["pack", "build", dir.to_str().unwrap(), "-o", "oci:./out"]);
    assert!(stderr.contains(&"1".repeat(64)) && stderr.contains("has sha256"), "{stderr}");
}
