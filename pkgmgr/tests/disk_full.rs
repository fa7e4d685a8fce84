//! Disk full: the toolpacks dir on a small tmpfs the test mounts; an update whose layer does
//! not fit fails naming the path that ran out of space, removes its staging, and leaves the
//! previous version active and the state as it was. Once space is freed it completes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Site, json};

/// A tmpfs of `size` mounted on `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "aibox-test", dir.to_str().unwrap()]).output().expect("run mount");
        assert!(out.status.success(), "this test mounts a tmpfs and needs root (CI runs as root): {}", String::from_utf8_lossy(&out.stderr));
        Self(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Publish `name` `version` with `bytes` of incompressible data (so the layer is that big).
fn publish_sized(site: &Site, name: &str, version: &str, bytes: usize) {
    publish_from(site, name, version, bytes, "/dev/urandom");
}

fn publish_from(site: &Site, name: &str, version: &str, bytes: usize, source: &str) {
    let dir = site.env.path().join("src").join(format!("{name}-{version}"));
    std::fs::create_dir_all(dir.join("root/bin")).unwrap();
    std::fs::write(dir.join("pack.yaml"), format!("name: {name}\nversion: {version}\ndescription: d\nmaintainer: m\npath: [bin]\n")).unwrap();
    common::run("sh", &["-c", &format!("head -c {bytes} {source} > {}/root/data", dir.display())]);
    let bin = dir.join("root/bin").join(name);
    std::fs::write(&bin, format!("#!/bin/sh\necho {name} {version}\n")).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    site.env.ok(&["-q", "pack", "publish", dir.to_str().unwrap(), "--to", &site.store, "--key", &site.key]);
}

#[test]
fn a_full_disk_fails_cleanly_and_keeps_the_previous_version() {
    let site = Site::layout();
    publish_sized(&site, "tool", "1.0.0", 1 << 20);
    publish_sized(&site, "tool", "2.0.0", 12 << 20);
    // Zeros: a small layer (the cached download fits) whose extraction does not.
    publish_from(&site, "tool", "3.0.0", 12 << 20, "/dev/zero");
    let _fs = Tmpfs::mount(&site.toolpacks, "8m");
    site.ok(&["-q", "install", "tool@1"]);
    let state = std::fs::read(site.toolpacks.join(".aibox/state.json")).unwrap();
    let env_sh = std::fs::read(site.toolpacks.join("env.sh")).unwrap();

    let err = site.fails(&["install", "tool@3"]);
    assert!(err.contains("No space left on device") && err.contains(&format!("{}/.aibox/staging/", site.toolpacks.display())), "names the file being extracted: {err}");
    assert_eq!(site.staging_left(), 0, "staging left behind");
    assert_eq!(std::fs::read(site.toolpacks.join(".aibox/state.json")).unwrap(), state, "state changed");

    let err = site.fails(&["install", "tool@2"]);
    assert!(err.contains("No space left on device") || err.contains("out of space"), "{err}");
    assert!(err.contains(&site.toolpacks.display().to_string()), "the message names the path: {err}");
    assert!(err.contains("is full: free space there"), "the advice: {err}");
    // Nothing of 2.0.0, the staging gone, 1.0.0 still active, state and env.sh unchanged.
    assert_eq!(site.staging_left(), 0, "staging left behind");
    assert!(!site.toolpacks.join("tool/2.0.0").exists(), "a partial 2.0.0 is on disk");
    assert_eq!(std::fs::read(site.toolpacks.join(".aibox/state.json")).unwrap(), state, "state changed");
    assert_eq!(std::fs::read(site.toolpacks.join("env.sh")).unwrap(), env_sh, "env.sh changed");
    let status = json(&site.ok(&["--json", "status"]));
    assert_eq!(status["packs"]["tool"]["version"], "1.0.0", "{status}");
    site.ok(&["-q", "verify-installed"]);
    let out = Command::new(site.toolpacks.join("tool/current/bin/tool")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tool 1.0.0");
    let cached: Vec<_> = std::fs::read_dir(site.toolpacks.join(".aibox/cache/blobs/sha256")).unwrap().flatten().filter(|e| e.metadata().is_ok_and(|m| m.len() > 4 << 20)).collect();
    assert!(cached.is_empty(), "a partial download is cached: {cached:?}");

    // With room (the tmpfs grown), the same command completes.
    let grown = Command::new("mount").args(["-o", "remount,size=64m"]).arg(&site.toolpacks).status().unwrap();
    assert!(grown.success());
    site.ok(&["-q", "install", "tool@2"]);
    let status = json(&site.ok(&["--json", "status"]));
    assert_eq!(status["packs"]["tool"]["version"], "2.0.0", "{status}");
}
