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
}

impl Settings {
    /// Resolve settings: `overrides`, then the user's and the system's configuration files,
    /// then defaults. A configuration file that does not parse is an error naming it.
    pub fn resolve(overrides: Overrides) -> Result<Self> {
        let mut merged = ConfigFile::default();
        let mut config_files = Vec::new();
        for path in std::iter::once(system_config_path()).chain(user_config_path()) {
            if let Some(file) = read_config(&path)? {
                merged.store = file.store.or(merged.store);
                merged.toolpacks_dir = file.toolpacks_dir.or(merged.toolpacks_dir);
                merged.policy = file.policy.or(merged.policy);
                merged.offline = file.offline.or(merged.offline);
                merged.insecure_registries.extend(file.insecure_registries);
                // The user's mirrors before the system's: the first matching prefix wins ties.
                merged.source_mirrors.splice(0..0, file.source_mirrors);
                config_files.push(path);
            }
        }
        let mut registry = RegistryConfig::from_env();
        registry.insecure_registries.extend(merged.insecure_registries);
        Ok(Self {
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

fn system_config_path() -> PathBuf {
    std::env::var_os("AIBOX_SYSTEM_CONFIG").map_or_else(|| PathBuf::from(SYSTEM_CONFIG), PathBuf::from)
}

/// `AIBOX_CONFIG`, else `$XDG_CONFIG_HOME/aibox/config.yaml`, else `~/.config/aibox/config.yaml`.
fn user_config_path() -> Option<PathBuf> {
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
    serde_saphyr::from_str(&text).map(Some).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        Error::Config { path: path.to_owned(), message: format!("line {line}, column {column}: {}", e.to_string().lines().next().unwrap_or_default()) }
    })
}
