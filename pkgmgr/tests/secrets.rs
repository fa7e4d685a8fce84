//! Secrets stay secret: registry credentials, key passwords and MCP tokens never appear in
//! output (human or `--json`), error messages, logs, state files or what is pushed to the
//! registry, also when a command fails; the files that must hold one are private (0600).
//!
//! Against the real registry with TLS and basic auth (Harbor with a robot account), with
//! distinctive secret values, then a sweep of every file the test's HOME, XDG directories,
//! toolpacks directory and the registry's storage hold.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use base64::Engine as _;
use common::{Env, Registry, json};

const USER: &str = "robot";
const REGISTRY_PASSWORD: &str = "S3cr3t-Registry-Pa55";
const WRONG_REGISTRY_PASSWORD: &str = "S3cr3t-Wrong-Registry-Pa55";
const KEY_PASSWORD: &str = "S3cr3t-Key-Pa55";
const WRONG_KEY_PASSWORD: &str = "S3cr3t-Wrong-Key-Pa55";
/// The MCP server's token: in the environment of every aibox run, never in what aibox writes.
const MCP_TOKEN: &str = "S3cr3t-Mcp-Token";
/// A token the user keeps in their own agent config: aibox keeps it there and nowhere else.
const USER_TOKEN: &str = "S3cr3t-User-Token";

static SECURE: LazyLock<Registry> = LazyLock::new(|| Registry::start_tls_auth(USER, REGISTRY_PASSWORD));

/// Every secret, in every form it could be copied in (Docker's `auth` is base64 of `user:password`).
fn secrets() -> Vec<String> {
    let mut all: Vec<String> = [REGISTRY_PASSWORD, WRONG_REGISTRY_PASSWORD, KEY_PASSWORD, WRONG_KEY_PASSWORD, MCP_TOKEN, USER_TOKEN].map(String::from).to_vec();
    all.extend([REGISTRY_PASSWORD, WRONG_REGISTRY_PASSWORD].map(|p| base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{p}"))));
    all
}

/// The secrets `text` contains.
fn found_in(text: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(text);
    secrets().into_iter().filter(|s| text.contains(s.as_str())).collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Write a file only its owner reads, as `docker login` and editors write credential files.
fn write_private(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Ok,
    Fails,
    /// `doctor`: 0 or 1, depending on what it finds.
    Either,
}

/// A sandbox on its own namespace of the secure registry: Docker credentials, a signing key
/// with a password, a policy trusting it, its own HOME, XDG directories and toolpacks.
struct Sandbox {
    env: Env,
    store: String,
    key: String,
    public: String,
    policy: PathBuf,
    toolpacks: PathBuf,
}

impl Sandbox {
    fn new(namespace: &str) -> Self {
        let env = Env::new();
        let store = SECURE.store(namespace);
        let policy = env.path().join("policy.yaml");
        let toolpacks = env.path().join("toolpacks");
        std::fs::create_dir_all(env.path().join("workspace")).unwrap();
        let mut s = Self { env, store, key: String::new(), public: String::new(), policy, toolpacks };
        s.docker_config(&auths(REGISTRY_PASSWORD));
        let prefix = s.path("publisher");
        check(|| s.aibox(), &["key", "generate", "--force", "--output-key-prefix", prefix.to_str().unwrap()], Expect::Ok);
        (s.key, s.public) = (format!("{}.key", prefix.display()), format!("{}.pub", prefix.display()));
        s.write_policy("");
        s
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.env.path().join(rel)
    }

    fn home(&self, rel: &str) -> PathBuf {
        self.path("home").join(rel)
    }

    fn docker_config(&self, body: &str) {
        write_private(&self.home(".docker/config.json"), body);
    }

    fn write_policy(&self, extra: &str) {
        std::fs::write(&self.policy, format!("trust:\n  - store: {}\n    keys: [{}]\n{extra}", self.store, self.public)).unwrap();
    }

    /// `aibox` with the sandbox's settings, the registry's CA, the key password and the MCP
    /// token in its environment.
    fn aibox(&self) -> Command {
        let mut c = self.env.aibox();
        c.env("SSL_CERT_FILE", SECURE.ca_cert.as_ref().unwrap())
            .env("COSIGN_PASSWORD", KEY_PASSWORD)
            .env("API_TOKEN", MCP_TOKEN)
            .env("AIBOX_STORE", &self.store)
            .env("AIBOX_POLICY", &self.policy)
            .env("AIBOX_TOOLPACKS_DIR", &self.toolpacks)
            .env("AIBOX_WORKSPACE", self.path("workspace"))
            .env("XDG_CONFIG_HOME", self.path("xdg-config"))
            .env("XDG_CACHE_HOME", self.path("xdg-cache"));
        for var in ["CODEX_HOME", "CLAUDE_CONFIG_DIR", "CLINE_DIR"] {
            c.env_remove(var);
        }
        c
    }

    /// [`Sandbox::aibox`] with more variables set.
    fn aibox_with(&self, vars: &[(&str, &str)]) -> Command {
        let mut c = self.aibox();
        c.envs(vars.iter().copied());
        c
    }

    /// A tool pack folder `src/NAME/VERSION` with `extra` pack.yaml lines and `bin/NAME`.
    fn pack(&self, name: &str, version: &str, extra: &str) -> String {
        let dir = self.path("src").join(name).join(version);
        std::fs::create_dir_all(dir.join("root/bin")).unwrap();
        std::fs::write(dir.join("pack.yaml"), format!("name: {name}\nversion: {version}\ndescription: d\nmaintainer: m\npath: [bin]\n{extra}")).unwrap();
        let bin = dir.join("root/bin").join(name);
        std::fs::write(&bin, format!("#!/bin/sh\necho {name} {version}\n")).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir.display().to_string()
    }

    /// Every file under the sandbox that holds a secret, except `allowed` (which must be
    /// private), must be none; plus nothing pushed to the registry holds one.
    fn sweep(&self, allowed: &[PathBuf]) {
        let mut holders = Vec::new();
        for root in [self.env.path(), SECURE.storage().as_path()] {
            for entry in walkdir::WalkDir::new(root).into_iter().flatten().filter(|e| e.file_type().is_file()) {
                let leaked = std::fs::read(entry.path()).map(|b| found_in(&b)).unwrap_or_default();
                if !leaked.is_empty() {
                    holders.push((entry.path().to_owned(), leaked));
                }
            }
        }
        let unexpected: Vec<_> = holders.iter().filter(|(p, _)| !allowed.contains(p)).collect();
        assert!(unexpected.is_empty(), "secrets in files that must not hold them: {unexpected:#?}");
        for path in allowed {
            assert_eq!(mode(path) & 0o077, 0, "{} holds a secret and others can read it ({:o})", path.display(), mode(path));
        }
    }
}

/// Run `aibox ARGS` as people read it and with `--json`, require `expect` of both, and
/// require that neither stdout nor stderr shows a secret. Returns the human run's stderr
/// and the `--json` run's stdout.
fn check(command: impl Fn() -> Command, args: &[&str], expect: Expect) -> (String, String) {
    let mut outputs = Vec::new();
    for json_mode in [false, true] {
        let mut c = command();
        if json_mode {
            c.arg("--json");
        }
        let out = c.args(args).output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        let shown = format!("aibox {}{args:?} ({:?})\nstdout: {stdout}\nstderr: {stderr}", if json_mode { "--json " } else { "" }, out.status.code());
        match expect {
            Expect::Ok => assert!(out.status.success(), "{shown}"),
            Expect::Fails => assert_eq!(out.status.code(), Some(1), "{shown}"),
            Expect::Either => assert!(matches!(out.status.code(), Some(0 | 1)), "{shown}"),
        }
        let leaked = found_in(format!("{stdout}{stderr}").as_bytes());
        assert!(leaked.is_empty(), "{leaked:?} leaked into the output of {shown}");
        if json_mode && !stdout.is_empty() {
            json(&stdout);
        }
        outputs.push((stderr, stdout));
    }
    (outputs[0].0.clone(), outputs[1].1.clone())
}

fn auths(password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
    format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, SECURE.addr)
}

#[test]
fn registry_credentials_and_key_passwords_never_show() {
    let s = Sandbox::new("secrets-registry");
    assert_eq!(mode(Path::new(&s.key)), 0o600, "the encrypted private key is private");
    let aibox = || s.aibox();

    // Everything working, each command as people read it and as JSON.
    let tool = s.pack("sekrit-tool", "1.0.0", "");
    check(aibox, &["pack", "publish", &tool, "--to", &s.store, "--key", &s.key], Expect::Ok);
    check(aibox, &["install", "sekrit-tool@1"], Expect::Ok);
    let reference = format!("{}/sekrit-tool:1.0.0", s.store);
    for args in [
        &["status"][..],
        &["list", "packs"],
        &["info", "sekrit-tool"],
        &["verify-installed"],
        &["update"],
        &["config", "get"],
        &["config", "get", "store"],
        &["policy", "explain"],
        &["pack", "verify", &reference, "--key", &s.public],
        &["pack", "inspect", &reference, "--key", &s.public],
        &["pack", "sign", &reference, "--key", &s.key],
    ] {
        check(aibox, args, Expect::Ok);
    }
    check(aibox, &["doctor"], Expect::Either);

    // A script pack's log: its script sees none of aibox's secrets (it dumps its environment).
    let script = s.pack("sekrit-script", "1.0.0", "install:\n  method: script\n  script: install.sh\n");
    std::fs::write(Path::new(&script).join("root/install.sh"), "set -e\nenv\nenv > \"$PACK_ROOT/env-seen\"\n").unwrap();
    let (_, out) = check(aibox, &["pack", "publish", &script, "--to", &s.store, "--key", &s.key], Expect::Ok);
    let digest = json(&out)["published"]["digest"].as_str().unwrap().to_owned();
    s.write_policy(&format!("install_methods: [docker-layer, script]\nscripts:\n  - pack: sekrit-script\n    digest: {digest}\n"));
    common::ok(s.aibox_with(&[("AIBOX_REGISTRY_USERNAME", USER), ("AIBOX_REGISTRY_PASSWORD", REGISTRY_PASSWORD)]), &["install", "sekrit-script"]);
    let log = std::fs::read_to_string(s.toolpacks.join(".aibox/logs/sekrit-script-1.0.0.log")).unwrap();
    assert!(log.contains("PACK_NAME=sekrit-script"), "the script ran: {log}");

    // The wrong registry password, from Docker's config: refused, naming the user, never the password.
    s.docker_config(&auths(WRONG_REGISTRY_PASSWORD));
    let other = s.pack("sekrit-other", "1.0.0", "");
    let (err, _) = check(aibox, &["pack", "publish", &other, "--to", &s.store, "--key", &s.key], Expect::Fails);
    assert!(err.contains("refused access") && err.contains("user robot"), "{err}");
    for args in [&["install", "sekrit-other"][..], &["update"], &["list", "packs"], &["info", "sekrit-tool"]] {
        let (err, _) = check(aibox, args, Expect::Fails);
        assert!(err.contains("refused access"), "{args:?}: {err}");
    }
    let (_, doc) = check(aibox, &["doctor"], Expect::Fails);
    assert!(doc.contains("refused access"), "{doc}");

    // The same from the environment.
    s.docker_config("{}");
    let wrong_env = || s.aibox_with(&[("AIBOX_REGISTRY_USERNAME", USER), ("AIBOX_REGISTRY_PASSWORD", WRONG_REGISTRY_PASSWORD)]);
    let (err, _) = check(wrong_env, &["list", "packs"], Expect::Fails);
    assert!(err.contains("refused access") && err.contains("AIBOX_REGISTRY_USERNAME (user robot)"), "{err}");
    check(|| s.aibox_with(&[("AIBOX_REGISTRY_USERNAME", USER), ("AIBOX_REGISTRY_PASSWORD", REGISTRY_PASSWORD)]), &["list", "packs"], Expect::Ok);

    // From a credential helper (only its owner may run or read it).
    let helper = s.path("bin/docker-credential-sekrit");
    std::fs::create_dir_all(helper.parent().unwrap()).unwrap();
    std::fs::write(&helper, format!("#!/bin/sh\nread server\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{REGISTRY_PASSWORD}\"}}' \"$server\"\n")).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o700)).unwrap();
    s.docker_config(&format!(r#"{{"credHelpers": {{"{}": "sekrit"}}}}"#, SECURE.addr));
    let path = format!("{}:{}", helper.parent().unwrap().display(), std::env::var("PATH").unwrap());
    let with_helper = || s.aibox_with(&[("PATH", &path)]);
    check(with_helper, &["list", "packs"], Expect::Ok);
    check(with_helper, &["doctor"], Expect::Either);

    // A wrong key password: refused before anything is pushed, the password never shown.
    s.docker_config(&auths(REGISTRY_PASSWORD));
    let wrong_key = || s.aibox_with(&[("COSIGN_PASSWORD", WRONG_KEY_PASSWORD)]);
    let (err, _) = check(wrong_key, &["pack", "publish", &other, "--to", &s.store, "--key", &s.key], Expect::Fails);
    assert!(err.contains("wrong password"), "{err}");
    let (err, _) = check(wrong_key, &["pack", "sign", &reference, "--key", &s.key], Expect::Fails);
    assert!(err.contains("wrong password"), "{err}");

    // Credentials written into a location: never echoed back.
    let with_userinfo = format!("https://{USER}:{REGISTRY_PASSWORD}@{}/secrets-registry", SECURE.addr);
    let (err, _) = check(aibox, &["--store", &with_userinfo, "list", "packs"], Expect::Fails);
    assert!(err.contains("unknown store") && err.contains("***@"), "{err}");
    let mirror = format!("https://github.com/=https://{USER}:{REGISTRY_PASSWORD}@{}/mirror/", SECURE.addr);
    let with_mirror = || s.aibox_with(&[("AIBOX_SOURCE_MIRRORS", &mirror)]);
    let (_, doc) = check(with_mirror, &["config", "get", "source_mirrors"], Expect::Ok);
    assert!(doc.contains("***@"), "{doc}");
    let fetched = s.pack("sekrit-source", "1.0.0", &format!("sources:\n  - url: https://github.com/o/r/tool.tar.gz\n    sha256: {}\n", "0".repeat(64)));
    let (err, _) = check(with_mirror, &["pack", "build", &fetched, "-o", &format!("oci:{}", s.path("out").display())], Expect::Fails);
    assert!(err.contains("***@"), "{err}");
    // A `--source` URL with a token is published without it.
    let (_, out) = check(aibox, &["pack", "publish", &other, "--to", &s.store, "--key", &s.key, "--source", &format!("https://x-access-token:{MCP_TOKEN}@git.test/o/r")], Expect::Ok);
    assert!(out.contains("\"published\""), "{out}");
    let (_, inspected) = check(aibox, &["pack", "inspect", &format!("{}/sekrit-other:1.0.0", s.store)], Expect::Ok);
    assert_eq!(json(&inspected)["annotations"]["org.opencontainers.image.source"], "https://git.test/o/r");

    s.sweep(&[s.home(".docker/config.json"), helper]);
}

/// An MCP pack whose server takes its token from the environment, as the docs tell authors to.
fn token_mcp(s: &Sandbox) {
    let dir = s.pack("token-mcp", "1.0.0", "command: bin/token-mcp\nargs: [\"--root\", \"${WORKSPACE}\"]\nenv:\n  API_TOKEN: \"${env:API_TOKEN}\"\n  MODE: read-only\n");
    check(|| s.aibox(), &["pack", "publish", &dir, "--to", &s.store, "--key", &s.key], Expect::Ok);
}

#[test]
fn mcp_tokens_stay_references_and_agent_configs_stay_private() {
    let s = Sandbox::new("secrets-mcp");
    token_mcp(&s);
    let aibox = || s.aibox();
    let xdg = |rel: &str| s.path("xdg-config").join(rel);
    // The user's own Claude Code config, with their own server's token in it.
    let claude = s.home(".claude.json");
    write_private(&claude, &format!("{{\n  \"mcpServers\": {{\n    \"mine\": {{\"command\": \"my-server\", \"env\": {{\"MY_TOKEN\": \"{USER_TOKEN}\"}}}}\n  }}\n}}\n"));

    // Each agent gets a reference in its own syntax; the token itself is written nowhere.
    let expected: [(&str, PathBuf, &str); 10] = [
        ("aibox", xdg("aibox/mcp.json"), "\"${env:API_TOKEN}\""),
        ("claude-code", claude.clone(), "\"${API_TOKEN}\""),
        ("codex", s.home(".codex/config.toml"), "env_vars = [\"API_TOKEN\"]"),
        ("cursor", s.home(".cursor/mcp.json"), "\"${env:API_TOKEN}\""),
        ("vscode", xdg("Code/User/mcp.json"), "\"${env:API_TOKEN}\""),
        ("continue", s.home(".continue/config.yaml"), "${{ secrets.API_TOKEN }}"),
        ("gemini", s.home(".gemini/settings.json"), "\"${API_TOKEN}\""),
        ("goose", xdg("goose/config.yaml"), "API_TOKEN"),
        ("opencode", xdg("opencode/opencode.json"), "\"{env:API_TOKEN}\""),
        ("windsurf", s.home(".codeium/windsurf/mcp_config.json"), "\"${env:API_TOKEN}\""),
    ];
    let mut enable = vec!["mcp", "enable", "token-mcp"];
    for (id, _, _) in expected.iter().skip(1) {
        enable.extend(["--agent", id]);
    }
    check(aibox, &enable, Expect::Ok);
    for (id, file, reference) in &expected {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{id}: {}: {e}", file.display()));
        assert!(text.contains(reference) && text.contains("token-mcp"), "{id}: no `{reference}` in {}:\n{text}", file.display());
        assert_eq!(mode(file), 0o600, "{id}: {} is not private", file.display());
    }
    let text = std::fs::read_to_string(&claude).unwrap();
    assert!(text.contains(USER_TOKEN) && text.contains("\"mine\""), "the user's own server and token are kept:\n{text}");
    for args in [&["mcp", "list"][..], &["mcp", "agents"], &["mcp", "regenerate"], &["status"], &["info", "token-mcp"], &["env"]] {
        check(aibox, args, Expect::Ok);
    }
    check(aibox, &["doctor"], Expect::Either);

    // An agent that cannot take a value from the environment is refused by name, not given the value.
    let (err, _) = check(aibox, &["mcp", "enable", "token-mcp", "--agent", "zed"], Expect::Fails);
    assert!(err.contains("Zed cannot take a value from the environment"), "{err}");
    let zed = xdg("zed/settings.json");
    assert!(std::fs::read_to_string(&zed).map_or(true, |t| !t.contains("token-mcp")), "zed got the server");

    // Broken agent configs with the user's token next to the error: named and left alone, the
    // token not quoted back.
    let broken: [(PathBuf, String); 5] = [
        (s.home(".cursor/mcp.json"), format!("{{\"mcpServers\": {{\"mine\": {{\"env\": {{\"TOKEN\": {USER_TOKEN}}}}}}}}}\n")),
        (xdg("Code/User/mcp.json"), format!("{{\n  // mine\n  \"servers\": {{\"mine\": {{\"env\": {{\"TOKEN\" \"{USER_TOKEN}\"}}}}}}\n}}\n")),
        (s.home(".codex/config.toml"), format!("[mcp_servers.mine]\nenv = {{ TOKEN = {USER_TOKEN} }}\n")),
        (xdg("goose/config.yaml"), format!("extensions:\n  mine:\n    envs: {{TOKEN: \"{USER_TOKEN}}}\n")),
        (s.home(".continue/config.yaml"), format!("mcpServers:\n  - name: mine\n    env:\n      TOKEN: {USER_TOKEN}\n     bad: [\n")),
    ];
    for (file, text) in &broken {
        write_private(file, text);
    }
    let (err, _) = check(aibox, &["mcp", "enable", "token-mcp"], Expect::Fails);
    let (regen, _) = check(aibox, &["mcp", "regenerate"], Expect::Fails);
    for (file, text) in &broken {
        assert!(err.contains(&format!("{}:", file.display())) && regen.contains(&format!("{}:", file.display())), "{} not named: {err}", file.display());
        assert_eq!(&std::fs::read_to_string(file).unwrap(), text, "{} was touched", file.display());
    }
    let (_, list) = check(aibox, &["mcp", "list"], Expect::Ok);
    assert!(list.contains("unreadable"), "{list}");
    check(aibox, &["doctor"], Expect::Fails);
    check(aibox, &["mcp", "disable", "token-mcp"], Expect::Either);

    let mut allowed: Vec<PathBuf> = broken.into_iter().map(|(f, _)| f).collect();
    allowed.extend([claude, s.home(".docker/config.json")]);
    s.sweep(&allowed);
}

/// `docker://robot:TOKEN@harbor/ns` works today by accident (the HTTP client turns the userinfo
/// into basic auth), and the install records the store, token and all, in state.json (0644) and
/// aibox.lock. A store location must refuse credentials instead (they belong in Docker's
/// config.json or AIBOX_REGISTRY_USERNAME/_PASSWORD).
#[test]
fn store_locations_with_credentials_are_refused() {
    let s = Sandbox::new("secrets-userinfo");
    let dir = s.pack("userinfo-tool", "1.0.0", "");
    check(|| s.aibox(), &["pack", "publish", &dir, "--to", &s.store, "--key", &s.key], Expect::Ok);
    let store = format!("docker://{USER}:{REGISTRY_PASSWORD}@{}/secrets-userinfo", SECURE.addr);
    std::fs::write(&s.policy, format!("trust:\n  - store: docker://{}/secrets-userinfo\n    keys: [{}]\n  - store: {store}\n    keys: [{}]\n", SECURE.addr, s.public, s.public)).unwrap();
    s.docker_config("{}");
    let other = s.pack("userinfo-other", "1.0.0", "");
    for args in [&["--store", &store, "install", "userinfo-tool"][..], &["pack", "publish", &other, "--to", &store, "--key", &s.key], &["--store", &store, "list", "packs"]] {
        check(|| s.aibox(), args, Expect::Fails);
    }
    std::fs::write(s.path("workspace/aibox.yaml"), "packs: [userinfo-tool@1]\n").unwrap();
    check(|| { let mut c = s.aibox(); c.current_dir(s.path("workspace")); c }, &["--store", &store, "lock"], Expect::Fails);
    std::fs::write(&s.policy, format!("trust:\n  - store: docker://{}/secrets-userinfo\n    keys: [{}]\n", SECURE.addr, s.public)).unwrap();
    s.sweep(&[s.home(".docker/config.json")]);
}
