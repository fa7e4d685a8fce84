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
            .env_remove("SOURCE_DATE_EPOCH")
            // Isolated from the machine's and the runner's configuration.
            .env("AIBOX_SYSTEM_CONFIG", self.path().join("etc-aibox-config.yaml"))
            .env_remove("AIBOX_CONFIG")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("AIBOX_STORE")
            .env_remove("AIBOX_POLICY")
            .env_remove("AIBOX_TOOLPACKS_DIR")
            .env_remove("AIBOX_OFFLINE");
        c
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(self.aibox(), args)
    }

    /// Run and require exit 1; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        fails(self.aibox(), args)
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

/// Run `command` with `args`, require success, return stdout.
pub fn ok(mut command: Command, args: &[&str]) -> String {
    let out = command.args(args).output().unwrap();
    assert_success(&out, args);
    String::from_utf8(out.stdout).unwrap()
}

/// Run `command` with `args`, require exit 1 (refused or failed), return stderr.
pub fn fails(mut command: Command, args: &[&str]) -> String {
    let out = command.args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "aibox {args:?} should exit 1\nstdout: {}\nstderr: {stderr}", String::from_utf8_lossy(&out.stdout));
    stderr
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

/// A sandbox to install into: a store, a signing key, a policy trusting it, a toolpacks dir.
pub struct Site {
    pub env: Env,
    pub store: String,
    pub key: String,
    pub public: String,
    pub policy: PathBuf,
    pub toolpacks: PathBuf,
}

impl Site {
    /// A site whose store is `store(env)` (trusted with a fresh key).
    pub fn new(store: impl FnOnce(&Env) -> String) -> Self {
        let env = Env::new();
        let store = store(&env);
        let (key, public) = env.keys("publisher");
        let policy = env.path().join("policy.yaml");
        std::fs::write(&policy, format!("trust:\n  - store: {store}\n    keys: [{public}]\n")).unwrap();
        let toolpacks = env.path().join("toolpacks");
        Self { env, store, key, public, policy, toolpacks }
    }

    /// A site on a fresh OCI layout in its own directory.
    pub fn layout() -> Self {
        Self::new(|env| format!("oci:{}", env.path().join("store").display()))
    }

    /// A site on its own namespace of the shared registry.
    pub fn registry(namespace: &str) -> Self {
        Self::new(|_| REGISTRY.store(namespace))
    }

    /// `aibox` with store, policy and toolpacks dir set through the environment.
    pub fn aibox(&self) -> Command {
        let mut c = self.env.aibox();
        c.env("AIBOX_STORE", &self.store).env("AIBOX_POLICY", &self.policy).env("AIBOX_TOOLPACKS_DIR", &self.toolpacks);
        c
    }

    pub fn ok(&self, args: &[&str]) -> String {
        ok(self.aibox(), args)
    }

    pub fn fails(&self, args: &[&str]) -> String {
        fails(self.aibox(), args)
    }

    /// Write a pack folder with extra pack.yaml lines, publish it signed; returns its folder.
    pub fn publish(&self, name: &str, version: &str, extra_yaml: &str) -> PathBuf {
        let dir = self.env.path().join("src").join(name).join(version);
        std::fs::create_dir_all(dir.join("root/bin")).unwrap();
        std::fs::write(
            dir.join("pack.yaml"),
            format!("name: {name}\nversion: {version}\ndescription: test pack {name}\nmaintainer: tests <t@example.com>\npath: [bin]\nenv:\n  {}_HOME: ${{PACK_ROOT}}\n{extra_yaml}", name.to_uppercase().replace('-', "_")),
        )
        .unwrap();
        let bin = dir.join("root/bin").join(name);
        std::fs::write(&bin, format!("#!/bin/sh\necho {name} {version}\n")).unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        self.env.ok(&["-q", "pack", "publish", dir.to_str().unwrap(), "--to", &self.store, "--key", &self.key]);
        dir
    }

    /// Publish pack `name` 1.0.0 holding `bytes` random bytes and a `bin/NAME` that echoes its
    /// name (to make packs of a size); returns its name.
    pub fn publish_random(&self, name: &str, bytes: usize) -> String {
        let dir = self.env.path().join("src").join(name);
        std::fs::create_dir_all(dir.join("root/bin")).unwrap();
        std::fs::write(dir.join("pack.yaml"), format!("name: {name}\nversion: 1.0.0\ndescription: d\nmaintainer: m\npath: [bin]\n")).unwrap();
        run("sh", &["-c", &format!("head -c {bytes} /dev/urandom > {}/root/data", dir.display())]);
        let bin = dir.join("root/bin").join(name);
        std::fs::write(&bin, format!("#!/bin/sh\necho {name}\n")).unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        self.env.ok(&["-q", "pack", "publish", dir.to_str().unwrap(), "--to", &self.store, "--key", &self.key]);
        name.to_owned()
    }

    /// The parsed state.json.
    pub fn state(&self) -> serde_json::Value {
        match std::fs::read_to_string(self.toolpacks.join(".aibox/state.json")) {
            Ok(s) => json(&s),
            Err(_) => serde_json::json!({"packs": {}}),
        }
    }

    /// Names of the pack directories in the toolpacks dir.
    pub fn pack_dirs(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.toolpacks)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| !n.starts_with('.') && n != "env.sh").collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Staging directories left behind.
    pub fn staging_left(&self) -> usize {
        std::fs::read_dir(self.toolpacks.join(".aibox/staging")).map_or(0, std::iter::Iterator::count)
    }
}
