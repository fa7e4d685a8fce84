//! Settings, resolved in one place: command-line flags, then `AIBOX_*` environment variables
//! (both arrive as [`Overrides`]), then the user's `~/.config/aibox/config.yaml`, then the
//! system's `/etc/aibox/config.yaml`, then built-in defaults.
//!
//! ```yaml
//! store: docker://harbor.internal/toolpacks
//! toolpacks_dir: /opt/toolpacks
//! policy: /etc/aibox/policy.yaml
//! offline: false
//! insecure_registries: [registry.test:5000]
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::RegistryConfig;

/// The built-in default store: an OCI layout, no server needed.
pub const DEFAULT_STORE: &str = "oci:/srv/aibox/layout";
/// The built-in default toolpacks directory.
pub const DEFAULT_TOOLPACKS_DIR: &str = "/opt/toolpacks";
/// The built-in default policy.
pub const DEFAULT_POLICY: &str = "/etc/aibox/policy.yaml";
/// The system configuration file (`AIBOX_SYSTEM_CONFIG` moves it).
pub const SYSTEM_CONFIG: &str = "/etc/aibox/config.yaml";

/// One configuration key: what `aibox config get | set` accept and docs/configuration.md lists
/// (generated from this table, so the two cannot drift).
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The key in config.yaml.
    pub name: &'static str,
    /// Its type.
    pub kind: KeyKind,
    /// Built-in default.
    pub default: &'static str,
    /// The flag and environment variable that override it.
    pub overridden_by: &'static str,
    /// What it is.
    pub doc: &'static str,
}

/// The type of a [`Key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A store location.
    Store,
    /// An absolute path.
    Path,
    /// `true` / `false`.
    Bool,
    /// A list of strings (`set` takes them comma-separated).
    List,
    /// A whole number (for durations: seconds).
    Number,
}

/// Every configuration key.
pub const KEYS: &[Key] = &[
    Key { name: "store", kind: KeyKind::Store, default: DEFAULT_STORE, overridden_by: "`--store` / `AIBOX_STORE`", doc: "where packs come from: `docker://HOST/NS`, `oci:DIR`, `oci-archive:FILE`" },
    Key { name: "toolpacks_dir", kind: KeyKind::Path, default: DEFAULT_TOOLPACKS_DIR, overridden_by: "`--toolpacks-dir` / `AIBOX_TOOLPACKS_DIR`", doc: "where packs are installed" },
    Key { name: "policy", kind: KeyKind::Path, default: DEFAULT_POLICY, overridden_by: "`--policy` / `AIBOX_POLICY`", doc: "the org policy (team layers: `policy.d/` beside it)" },
    Key { name: "offline", kind: KeyKind::Bool, default: "false", overridden_by: "`--offline` / `AIBOX_OFFLINE`", doc: "use no network (installs from the cache and local stores only)" },
    Key { name: "insecure_registries", kind: KeyKind::List, default: "[]", overridden_by: "`AIBOX_INSECURE_REGISTRIES` (comma-separated, added)", doc: "`host` or `host:port` that may speak plain HTTP or unverified TLS" },
    Key { name: "registry_retries", kind: KeyKind::Number, default: "5", overridden_by: "`AIBOX_REGISTRY_RETRIES`", doc: "tries per registry request (server errors, 429, broken connections), with capped exponential backoff and jitter or the registry's `Retry-After`; 1: no retries" },
    Key { name: "registry_connect_timeout", kind: KeyKind::Number, default: "15", overridden_by: "`AIBOX_REGISTRY_CONNECT_TIMEOUT`", doc: "seconds to wait for a connection to a registry" },
    Key { name: "registry_read_timeout", kind: KeyKind::Number, default: "60", overridden_by: "`AIBOX_REGISTRY_READ_TIMEOUT`", doc: "seconds to wait for the next bytes of an answer; a stalled download is then resumed with `Range`" },
    Key { name: "source_mirrors", kind: KeyKind::List, default: "[]", overridden_by: "`AIBOX_SOURCE_MIRRORS` (comma-separated, tried first)", doc: "`UPSTREAM_PREFIX=MIRROR_PREFIX` rewrites of pack source URLs" },
];

/// Every environment variable aibox and aibox-image read, and what it does (docs list these;
/// a test fails when the code reads one that is not here).
pub const ENV_VARS: &[(&str, &str)] = &[
    ("AIBOX_STORE", "the `store` key"),
    ("AIBOX_TOOLPACKS_DIR", "the `toolpacks_dir` key"),
    ("AIBOX_POLICY", "the `policy` key"),
    ("AIBOX_OFFLINE", "the `offline` key"),
    ("AIBOX_INSECURE_REGISTRIES", "added to `insecure_registries`"),
    ("AIBOX_SOURCE_MIRRORS", "tried before `source_mirrors`"),
    ("AIBOX_REGISTRY_RETRIES", "the `registry_retries` key"),
    ("AIBOX_REGISTRY_CONNECT_TIMEOUT", "the `registry_connect_timeout` key"),
    ("AIBOX_REGISTRY_READ_TIMEOUT", "the `registry_read_timeout` key"),
    ("AIBOX_CONFIG", "the user's configuration file"),
    ("AIBOX_SYSTEM_CONFIG", "the system's configuration file (default `/etc/aibox/config.yaml`)"),
    ("AIBOX_MAX_PACK_BYTES", "extraction limit of `aibox install`: bytes of content per pack"),
    ("AIBOX_MAX_PACK_ENTRIES", "extraction limit of `aibox install`: entries per pack"),
    ("AIBOX_MAX_PATH_LENGTH", "extraction limit of `aibox install`: bytes per path"),
    ("AIBOX_CERTS_DIR", "per-registry CA directory (default `/etc/docker/certs.d`)"),
    ("AIBOX_REGISTRY_USERNAME", "registry user when Docker's config has none"),
    ("AIBOX_REGISTRY_PASSWORD", "registry password when Docker's config has none"),
    ("AIBOX_WORKSPACE", "`${WORKSPACE}` of MCP servers (default: the project directory)"),
    ("AIBOX_LLM_PROXY", "read by packs' env (`ai-tools`), not by aibox"),
    ("AIBOX_IMAGE_SIGN_KEY", "`aibox-image bake --sign-key`"),
    ("AIBOX_IMAGE_REVISION", "`aibox-image bake --revision`"),
    ("AIBOX_UPDATE_SCHEMA", "tests: rewrite generated files (schema, docs) instead of failing"),
    ("SSL_CERT_FILE", "extra trusted CA bundle"),
    ("DOCKER_CONFIG", "directory of Docker's `config.json` (registry credentials)"),
    ("COSIGN_PASSWORD", "password of a signing key (empty allowed)"),
    ("SOURCE_DATE_EPOCH", "mtime of every entry in built layers and images (default 0)"),
    ("XDG_CONFIG_HOME", "where the user's configuration and agent configs live (default `~/.config`)"),
    ("XDG_CACHE_HOME", "where download caches live (default `~/.cache`)"),
    ("CODEX_HOME", "Codex's config directory"),
    ("CLAUDE_CONFIG_DIR", "Claude Code's config directory"),
    ("CLINE_DIR", "Cline's config directory"),
    ("NO_COLOR", "no colours in human output"),
];

/// The key named `name`.
pub fn key(name: &str) -> Result<&'static Key> {
    KEYS.iter().find(|k| k.name == name).ok_or_else(|| Error::Config {
        path: PathBuf::from(name),
        message: format!("no configuration key `{name}` (keys: {})", KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")),
    })
}

/// Set (`Some`) or remove (`None`) `name` in the configuration file at `path`, keeping its
/// comments and the rest of it; the value is checked for the key's type first.
pub fn set_key(path: &Path, name: &str, value: Option<&str>) -> Result<()> {
    use crate::mcp::agents::Container;
    let key = key(name)?;
    let invalid = |message: String| Error::Config { path: path.to_owned(), message };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io("cannot read configuration", path)(e)),
    };
    let mut doc = crate::mcp::document::Document::parse(crate::mcp::agents::Format::Yaml, &text).map_err(|e| invalid(format!("line {}, column {}: {}", e.line, e.column, e.message)))?;
    match value {
        Some(v) => {
            let value = match key.kind {
                KeyKind::Store => {
                    crate::store::StoreLocation::parse(v)?;
                    serde_json::json!(v)
                }
                KeyKind::Path if !v.starts_with('/') => return Err(invalid(format!("`{name}` must be an absolute path, not `{v}`"))),
                KeyKind::Path => serde_json::json!(v),
                KeyKind::Bool => serde_json::json!(v.parse::<bool>().map_err(|_| invalid(format!("`{name}` is true or false, not `{v}`")))?),
                KeyKind::List => serde_json::json!(v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>()),
                KeyKind::Number => serde_json::json!(v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| invalid(format!("`{name}` is a whole number above 0, not `{v}`")))?),
            };
            doc.set_top_level(name, &value).map_err(invalid)?;
        }
        None => {
            doc.remove(Container::Map(&[]), name).map_err(invalid)?;
        }
    }
    let new = doc.text();
    // What is written must read back as a valid configuration.
    serde_saphyr::from_str::<ConfigFile>(&new).map_err(|e| invalid(format!("the edit would not parse: {e}")))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("cannot create", dir))?;
    }
    crate::atomic::write_atomic(path, new.as_bytes())
}

/// The configuration files, system first then the user's (whether or not they exist).
pub fn config_files() -> Vec<PathBuf> {
    std::iter::once(system_config_path()).chain(user_config_path()).collect()
}

/// One configuration file as written. Unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where packs come from.
    #[serde(default)]
    pub store: Option<String>,
    /// Where packs are installed.
    #[serde(default)]
    pub toolpacks_dir: Option<PathBuf>,
    /// The policy file.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// Use no network.
    #[serde(default)]
    pub offline: Option<bool>,
    /// Registries that may use plain HTTP or unverified TLS.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// URL prefix rewrites for pack sources: `UPSTREAM_PREFIX=MIRROR_PREFIX`.
    #[serde(default)]
    pub source_mirrors: Vec<String>,
    /// Tries per registry request.
    #[serde(default)]
    pub registry_retries: Option<u32>,
    /// Seconds to wait for a registry connection.
    #[serde(default)]
    pub registry_connect_timeout: Option<u32>,
    /// Seconds to wait for the next bytes of a registry answer.
    #[serde(default)]
    pub registry_read_timeout: Option<u32>,
}

/// What flags and environment variables set (`None`: not set there).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--store` / `AIBOX_STORE`.
    pub store: Option<String>,
    /// `--toolpacks-dir` / `AIBOX_TOOLPACKS_DIR`.
    pub toolpacks_dir: Option<PathBuf>,
    /// `--policy` / `AIBOX_POLICY`.
    pub policy: Option<PathBuf>,
    /// `--offline` / `AIBOX_OFFLINE`.
    pub offline: bool,
}

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where packs come from.
    pub store: String,
    /// Where packs are installed.
    pub toolpacks_dir: PathBuf,
    /// The policy file.
    pub policy: PathBuf,
    /// Use no network.
    pub offline: bool,
    /// How to reach registries.
    pub registry: RegistryConfig,
    /// The configuration files read, system first.
    pub config_files: Vec<PathBuf>,
    /// Source mirrors: `AIBOX_SOURCE_MIRRORS` (comma-separated) first, then the user's and the
    /// system's `source_mirrors`.
    pub source_mirrors: Vec<String>,
    /// Where each key's value came from (`flag or environment`, a file, `default`).
    pub sources: std::collections::BTreeMap<&'static str, String>,
}

impl Settings {
    /// The value of `name` as in force, as YAML-ish text.
    pub fn value(&self, name: &str) -> Result<String> {
        Ok(match key(name)?.name {
            "store" => self.store.clone(),
            "toolpacks_dir" => self.toolpacks_dir.display().to_string(),
            "policy" => self.policy.display().to_string(),
            "offline" => self.offline.to_string(),
            "insecure_registries" => format!("[{}]", self.registry.insecure_registries.join(", ")),
            "source_mirrors" => format!("[{}]", self.source_mirrors.join(", ")),
            "registry_retries" => self.registry.retry.attempts.to_string(),
            "registry_connect_timeout" => self.registry.connect_timeout.as_secs().to_string(),
            "registry_read_timeout" => self.registry.read_timeout.as_secs().to_string(),
            other => unreachable!("key {other} has no value"),
        })
    }
}

impl Settings {
    /// Resolve settings: `overrides`, then the user's and the system's configuration files,
    /// then defaults. A configuration file that does not parse is an error naming it.
    pub fn resolve(overrides: Overrides) -> Result<Self> {
        let mut merged = ConfigFile::default();
        let mut config_files = Vec::new();
        let mut sources: std::collections::BTreeMap<&'static str, String> = KEYS.iter().map(|k| (k.name, "default".to_owned())).collect();
        for path in std::iter::once(system_config_path()).chain(user_config_path()) {
            if let Some(file) = read_config(&path)? {
                let shown = path.display().to_string();
                for (name, set) in [("store", file.store.is_some()), ("toolpacks_dir", file.toolpacks_dir.is_some()), ("policy", file.policy.is_some()), ("offline", file.offline.is_some()), ("insecure_registries", !file.insecure_registries.is_empty()), ("source_mirrors", !file.source_mirrors.is_empty()), ("registry_retries", file.registry_retries.is_some()), ("registry_connect_timeout", file.registry_connect_timeout.is_some()), ("registry_read_timeout", file.registry_read_timeout.is_some())] {
                    if set {
                        sources.insert(name, shown.clone());
                    }
                }
                merged.store = file.store.or(merged.store);
                merged.toolpacks_dir = file.toolpacks_dir.or(merged.toolpacks_dir);
                merged.policy = file.policy.or(merged.policy);
                merged.offline = file.offline.or(merged.offline);
                merged.insecure_registries.extend(file.insecure_registries);
                merged.registry_retries = file.registry_retries.or(merged.registry_retries);
                merged.registry_connect_timeout = file.registry_connect_timeout.or(merged.registry_connect_timeout);
                merged.registry_read_timeout = file.registry_read_timeout.or(merged.registry_read_timeout);
                // The user's mirrors before the system's: the first matching prefix wins ties.
                merged.source_mirrors.splice(0..0, file.source_mirrors);
                config_files.push(path);
            }
        }
        let mut registry = RegistryConfig::from_env();
        registry.insecure_registries.extend(merged.insecure_registries);
        for (name, var, file_value) in [("registry_retries", "AIBOX_REGISTRY_RETRIES", merged.registry_retries), ("registry_connect_timeout", "AIBOX_REGISTRY_CONNECT_TIMEOUT", merged.registry_connect_timeout), ("registry_read_timeout", "AIBOX_REGISTRY_READ_TIMEOUT", merged.registry_read_timeout)] {
            let from_env = match std::env::var(var) {
                Ok(v) => Some(v.trim().parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| Error::Config { path: PathBuf::from(var), message: format!("{var} is a whole number above 0, not `{v}`") })?),
                Err(_) => None,
            };
            if from_env.is_some() {
                sources.insert(name, "flag or environment".into());
            }
            let Some(n) = from_env.or(file_value) else { continue };
            match name {
                "registry_retries" => registry.retry.attempts = n,
                "registry_connect_timeout" => registry.connect_timeout = std::time::Duration::from_secs(n.into()),
                _ => registry.read_timeout = std::time::Duration::from_secs(n.into()),
            }
        }
        for (name, set) in [("store", overrides.store.is_some()), ("toolpacks_dir", overrides.toolpacks_dir.is_some()), ("policy", overrides.policy.is_some()), ("offline", overrides.offline)] {
            if set {
                sources.insert(name, "flag or environment".into());
            }
        }
        Ok(Self {
            sources,
            store: overrides.store.or(merged.store).unwrap_or_else(|| DEFAULT_STORE.to_owned()),
            toolpacks_dir: overrides.toolpacks_dir.or(merged.toolpacks_dir).unwrap_or_else(|| DEFAULT_TOOLPACKS_DIR.into()),
            policy: overrides.policy.or(merged.policy).unwrap_or_else(|| DEFAULT_POLICY.into()),
            offline: overrides.offline || merged.offline.unwrap_or(false),
            registry,
            config_files,
            source_mirrors: std::env::var("AIBOX_SOURCE_MIRRORS")
                .ok()
                .into_iter()
                .flat_map(|v| v.split(',').map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned).collect::<Vec<_>>())
                .chain(merged.source_mirrors)
                .collect(),
        })
    }
}

/// `AIBOX_SYSTEM_CONFIG`, else `/etc/aibox/config.yaml`.
pub fn system_config_path() -> PathBuf {
    std::env::var_os("AIBOX_SYSTEM_CONFIG").map_or_else(|| PathBuf::from(SYSTEM_CONFIG), PathBuf::from)
}

/// `AIBOX_CONFIG`, else `$XDG_CONFIG_HOME/aibox/config.yaml`, else `~/.config/aibox/config.yaml`.
pub fn user_config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AIBOX_CONFIG") {
        return Some(p.into());
    }
    let base = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).or_else(|| std::env::home_dir().map(|h| h.join(".config")))?;
    Some(base.join("aibox/config.yaml"))
}

fn read_config(path: &Path) -> Result<Option<ConfigFile>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("cannot read configuration", path)(e)),
    };
    serde_saphyr::from_str(&text).map(Some).map_err(|e| Error::Config { path: path.to_owned(), message: crate::error::yaml_error(&e) })
}

#[cfg(test)]
mod docs {
    use super::{ENV_VARS, KEYS};

    fn generated() -> String {
        let mut out = String::from("<!-- generated from KEYS and ENV_VARS in pkgmgr/src/config.rs: AIBOX_UPDATE_SCHEMA=1 cargo test -p aibox-pkgmgr --lib config -->\n\n| key | type | default | overridden by | what |\n| --- | --- | --- | --- | --- |\n");
        for k in KEYS {
            let kind = match k.kind {
                super::KeyKind::Store => "store",
                super::KeyKind::Path => "absolute path",
                super::KeyKind::Bool => "bool",
                super::KeyKind::List => "list",
                super::KeyKind::Number => "number",
            };
            out.push_str(&format!("| `{}` | {kind} | `{}` | {} | {} |\n", k.name, k.default, k.overridden_by, k.doc));
        }
        out.push_str("\n### Environment variables\n\n| variable | meaning |\n| --- | --- |\n");
        for (name, doc) in ENV_VARS {
            out.push_str(&format!("| `{name}` | {doc} |\n"));
        }
        out
    }

    /// docs/configuration.md lists exactly the keys and variables of the code.
    #[test]
    fn configuration_doc_is_generated() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (start, end) = ("<!-- keys:start -->\n", "<!-- keys:end -->");
        let (head, rest) = doc.split_once(start).expect("docs/configuration.md has a keys:start marker");
        let (_, tail) = rest.split_once(end).expect("docs/configuration.md has a keys:end marker");
        let want = format!("{head}{start}{}{end}{tail}", generated());
        if std::env::var_os("AIBOX_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        assert!(doc == want, "docs/configuration.md is stale: run `AIBOX_UPDATE_SCHEMA=1 cargo test -p aibox-pkgmgr --lib config` and commit it");
    }

    /// Every environment variable the code names is in ENV_VARS.
    #[test]
    fn every_environment_variable_is_listed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for dir in ["pkgmgr/src", "image-builder/src", "registry-schema/src"] {
            for entry in walkdir::WalkDir::new(root.join(dir)).into_iter().flatten().filter(|e| e.path().extension().is_some_and(|x| x == "rs")) {
                let text = std::fs::read_to_string(entry.path()).unwrap();
                for (i, _) in text.match_indices("\"AIBOX_") {
                    let name: String = text[i + 1..].chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
                    if name == "AIBOX_" {
                        continue; // this test's own needle
                    }
                    assert!(ENV_VARS.iter().any(|(n, _)| *n == name), "{name} (in {}) is not in config::ENV_VARS", entry.path().display());
                }
            }
        }
    }
}
