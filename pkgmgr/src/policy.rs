//! The sandbox policy: which stores are trusted with which keys, which network endpoints and
//! install methods packs may declare.
//!
//! Minimal form (DESIGN.md, an interface):
//!
//! ```yaml
//! trust:
//!   - store: docker://harbor.internal/toolpacks   # prefix match on the store
//!     keys: [/etc/aibox/keys/toolpacks.pub]        # PEM paths or inline PEM
//! network:
//!   allow: ["nexus.internal:443", "*.internal:443"]
//! install_methods: [docker-layer]
//! ```
//!
//! With no key covering a store, nothing from it installs. A missing `network` section allows no
//! endpoints; a missing `install_methods` allows `docker-layer` only.

use std::path::{Path, PathBuf};

use aibox_schema::{InstallMethod, PackManifest};
use serde::Deserialize;

use crate::cosign::PublicKey;
use crate::error::{Error, Result};
use crate::store::StoreLocation;

/// The policy file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Trusted stores and their keys.
    #[serde(default)]
    pub trust: Vec<TrustEntry>,
    /// Network endpoints packs may declare.
    #[serde(default)]
    pub network: Option<NetworkRules>,
    /// Filesystem paths packs and MCP servers may use.
    #[serde(default)]
    pub filesystem: Option<FilesystemRules>,
    /// Install methods allowed.
    #[serde(default)]
    pub install_methods: Option<Vec<InstallMethod>>,
}

/// One `trust` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustEntry {
    /// Store prefix, e.g. `docker://harbor.internal/toolpacks` or `oci:/srv/aibox/layout`.
    pub store: String,
    /// Public keys: PEM file paths (relative to the policy file) or inline PEM.
    pub keys: Vec<String>,
}

/// `network`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkRules {
    /// `host:port` or `*.domain:port`.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// `filesystem`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemRules {
    /// Path prefixes.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// A loaded policy and where it came from.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The file (for messages).
    pub path: PathBuf,
    /// Whether the file existed.
    pub exists: bool,
    /// Its content.
    pub file: PolicyFile,
    /// The filesystem root absolute key paths are read under: `/`, or the staged root of an
    /// image being baked (whose policy names `/etc/aibox/keys/...`).
    pub root: PathBuf,
}

impl Policy {
    /// Load the policy at `path`; a missing file is an empty policy (which trusts nothing).
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self { path: path.to_owned(), exists: false, file: PolicyFile::default(), root: PathBuf::from("/") });
            }
            Err(e) => return Err(Error::io("cannot read policy", path)(e)),
        };
        let file: PolicyFile = serde_saphyr::from_str(&text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            Error::Policy { path: path.to_owned(), message: format!("line {line}, column {column}: {}", e.to_string().lines().next().unwrap_or_default()) }
        })?;
        Ok(Self { path: path.to_owned(), exists: true, file, root: PathBuf::from("/") })
    }

    /// The keys trusted for `store` (every entry whose `store` is a prefix of it).
    pub fn keys_for(&self, store: &StoreLocation) -> Result<Vec<PublicKey>> {
        let store_text = store.to_string();
        let mut keys = Vec::new();
        for entry in &self.file.trust {
            if !store_matches(&entry.store, &store_text) {
                continue;
            }
            for key in &entry.keys {
                if key.contains("-----BEGIN") {
                    keys.push(PublicKey::from_pem(key.as_bytes(), &format!("inline key in {}", self.path.display())).map_err(|m| Error::Policy { path: self.path.clone(), message: m })?);
                } else {
                    let p = self.path.parent().unwrap_or(Path::new("/")).join(key);
                    let p = match p.strip_prefix("/") {
                        Ok(rel) if !p.starts_with(&self.root) => self.root.join(rel),
                        _ => p,
                    };
                    keys.push(PublicKey::from_file(&p)?);
                }
            }
        }
        if keys.is_empty() {
            return Err(Error::Untrusted { store: store_text, policy: self.path.clone(), exists: self.exists });
        }
        Ok(keys)
    }

    /// Check a pack's declared endpoints and install method against the policy.
    pub fn check_pack(&self, pack: &PackManifest) -> Result<()> {
        let allowed_methods = self.file.install_methods.clone().unwrap_or_else(|| vec![InstallMethod::DockerLayer]);
        if !allowed_methods.contains(&pack.install.method) {
            return Err(Error::PolicyRefused {
                pack: format!("{}@{}", pack.name, pack.version),
                what: format!("install method `{}`", pack.install.method),
                rule: "install_methods".into(),
                policy: self.path.clone(),
            });
        }
        let allow = self.file.network.as_ref().map(|n| n.allow.as_slice()).unwrap_or_default();
        for endpoint in pack.network.endpoints.iter().chain(&pack.network_requires) {
            if !allow.iter().any(|rule| endpoint_allowed(rule, endpoint)) {
                return Err(Error::PolicyRefused {
                    pack: format!("{}@{}", pack.name, pack.version),
                    what: format!("network endpoint `{endpoint}`"),
                    rule: "network.allow".into(),
                    policy: self.path.clone(),
                });
            }
        }
        Ok(())
    }

    /// Check an MCP server's `filesystem_requires` (already resolved to absolute paths) against
    /// `filesystem.allow`, whose entries are path prefixes that may use `${WORKSPACE}` and
    /// `${HOME}`. With no `filesystem` section, `${WORKSPACE}` and `${HOME}` are allowed.
    pub fn check_paths(&self, pack: &str, paths: &[String], expand: impl Fn(&str) -> String) -> Result<()> {
        let defaults = ["${WORKSPACE}".to_owned(), "${HOME}".to_owned()];
        let allow = self.file.filesystem.as_ref().map_or(&defaults[..], |f| f.allow.as_slice());
        for path in paths {
            if !allow.iter().any(|rule| path_within(&expand(rule), path)) {
                return Err(Error::PolicyRefused {
                    pack: pack.to_owned(),
                    what: format!("filesystem path `{path}`"),
                    rule: "filesystem.allow".into(),
                    policy: self.path.clone(),
                });
            }
        }
        Ok(())
    }
}

/// `path` is `prefix` or under it, by whole components (`/work` does not cover `/workspace`).
fn path_within(prefix: &str, path: &str) -> bool {
    let (prefix, path) = (Path::new(prefix), Path::new(path));
    prefix.is_absolute() && path.is_absolute() && !path.components().any(|c| matches!(c, std::path::Component::ParentDir)) && path.starts_with(prefix)
}

/// Prefix match on whole path segments: `docker://h/toolpacks` covers `docker://h/toolpacks`
/// and `docker://h/toolpacks/x`, not `docker://h/toolpacks-evil`.
fn store_matches(rule: &str, store: &str) -> bool {
    let rule = rule.trim_end_matches('/');
    let rule = if rule.contains("://") || rule.starts_with("oci:") || rule.starts_with("oci-archive:") { rule.to_owned() } else { format!("docker://{rule}") };
    store == rule || store.strip_prefix(&rule).is_some_and(|rest| rest.starts_with('/'))
}

/// `host:port` exact, or `*.domain:port` for any subdomain of `domain`.
pub fn endpoint_allowed(rule: &str, endpoint: &str) -> bool {
    let (Some((rule_host, rule_port)), Some((host, port))) = (rule.rsplit_once(':'), endpoint.rsplit_once(':')) else {
        return false;
    };
    if rule_port != port && rule_port != "*" {
        return false;
    }
    let (rule_host, host) = (rule_host.to_ascii_lowercase(), host.to_ascii_lowercase());
    match rule_host.strip_prefix("*.") {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => rule_host == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert!(endpoint_allowed("nexus.internal:443", "nexus.internal:443"));
        assert!(!endpoint_allowed("nexus.internal:443", "nexus.internal:80"));
        assert!(endpoint_allowed("*.internal:443", "nexus.internal:443"));
        assert!(endpoint_allowed("*.internal:443", "a.b.internal:443"));
        assert!(!endpoint_allowed("*.internal:443", "internal:443"));
        assert!(!endpoint_allowed("*.internal:443", "evilinternal:443"));
        assert!(!endpoint_allowed("*.internal:443", "nexus.internal.evil.com:443"));
    }

    #[test]
    fn paths() {
        assert!(path_within("/workspace", "/workspace"));
        assert!(path_within("/workspace", "/workspace/src"));
        assert!(!path_within("/work", "/workspace"));
        assert!(!path_within("/workspace", "/workspace/../etc"));
        let policy = Policy { path: "p.yaml".into(), exists: true, file: PolicyFile::default(), root: PathBuf::from("/") };
        let expand = |s: &str| s.replace("${WORKSPACE}", "/workspace").replace("${HOME}", "/home/dev");
        assert!(policy.check_paths("x", &["/workspace/a".into(), "/home/dev".into()], expand).is_ok());
        let err = policy.check_paths("x", &["/etc".into()], expand).unwrap_err();
        assert!(err.to_string().contains("/etc") && err.hint().unwrap().contains("filesystem.allow"), "{err}");
    }

    #[test]
    fn store_prefixes() {
        assert!(store_matches("docker://h/toolpacks", "docker://h/toolpacks"));
        assert!(store_matches("docker://h/toolpacks/", "docker://h/toolpacks/team"));
        assert!(store_matches("h/toolpacks", "docker://h/toolpacks"));
        assert!(!store_matches("docker://h/toolpacks", "docker://h/toolpacks-evil"));
        assert!(store_matches("oci:/srv/aibox/layout", "oci:/srv/aibox/layout"));
    }
}
