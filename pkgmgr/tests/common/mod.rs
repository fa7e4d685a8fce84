//! Shared by the end-to-end tests: run the real `aibox` binary in an isolated environment,
//! make pack folders and keys, and share one registry per test binary.

#![allow(dead_code, clippy::missing_panics_doc)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::LazyLock;

pub use aibox_test_harness::Registry;

/// One plain-HTTP registry for all tests of this binary.
pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::start);

/// An isolated HOME / DOCKER_CONFIG / temp area for one test.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home/.docker")).unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `aibox ARGS` with HOME and DOCKER_CONFIG inside this env and COSIGN_PASSWORD set.
    pub fn aibox(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_aibox"));
        c.current_dir(self.path())
            .env("HOME", self.path().join("home"))
            .env("DOCKER_CONFIG", self.path().join("home/.docker"))
            .env("COSIGN_PASSWORD", "test-password")
            .env("NO_COLOR", "1")
            .env_remove("SSL_CERT_FILE")
            .env_remove("AIBOX_REGISTRY_USERNAME")
            .env_remove("AIBOX_REGISTRY_PASSWORD")
            .env_remove("AIBOX_INSECURE_REGISTRIES")
            .env_remove("SOURCE_DATE_EPOCH");
        c
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.aibox().args(args).output().unwrap();
        assert_success(&out, args);
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run and require exit 1; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.aibox().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "aibox {args:?} should exit 1\nstdout: {}\nstderr: {stderr}", String::from_utf8_lossy(&out.stdout));
        stderr
    }

    /// Generate a key pair `NAME.key` / `NAME.pub` in this env; returns (private, public).
    pub fn keys(&self, name: &str) -> (String, String) {
        let prefix = self.path().join(name);
        self.ok(&["key", "generate", "--output-key-prefix", prefix.to_str().unwrap()]);
        (format!("{}.key", prefix.display()), format!("{}.pub", prefix.display()))
    }

    /// A pack folder `packs/NAME` with pack.yaml and root/bin/NAME; returns its path.
    pub fn pack(&self, name: &str, version: &str) -> PathBuf {
        let dir = self.path().join("packs").join(name).join(version);
        std::fs::create_dir_all(dir.join("root/bin")).unwrap();
        std::fs::write(
            dir.join("pack.yaml"),
            format!("name: {name}\nversion: {version}\ndescription: test pack {name}\nmaintainer: tests <t@example.com>\npath: [bin]\n"),
        )
        .unwrap();
        let bin = dir.join("root/bin").join(name);
        std::fs::write(&bin, format!("#!/bin/sh\necho {name} {version}\n")).unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        dir
    }
}

pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "aibox {args:?} failed ({:?})\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Parse a `--json` document.
pub fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Run a program, require success, return stdout.
pub fn run(program: &str, args: &[&str]) -> String {
    aibox_test_harness::require(program);
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}
