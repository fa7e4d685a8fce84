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
//! endpoints; a missing `install_methods` allows `docker-layer` only; a missing `packs` section
//! allows every pack.
//!
//! Policies come in layers (see [`layers`]): the org baseline, team files in `policy.d/`, and a
//! project's `aibox.yaml`; each lower layer may only tighten.

pub mod layers;

use std::path::{Path, PathBuf};

use aibox_schema::{InstallMethod, PackManifest};
use serde::Deserialize;

use crate::cosign::PublicKey;
use crate::error::{Error, Result};
use crate::store::StoreLocation;

/// The policy file as written.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
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
    /// Which packs may be installed, by name (globs).
    #[serde(default)]
    pub packs: Option<PackRules>,
    /// `script` packs allowed to run their script, by name and manifest digest.
    #[serde(default)]
    pub scripts: Option<Vec<ScriptRule>>,
    /// How much verification installs need.
    #[serde(default)]
    pub verification: Option<Verification>,
}

/// `verification`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// `required` (default): every pack must carry a signature a trusted key verifies.
    /// `optional`: an unsigned pack, or one from a store no key covers, installs (recorded as
    /// signer `unsigned`); a signature that is present but does not verify still refuses.
    #[serde(default)]
    pub signatures: Signatures,
}

/// `verification.signatures`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signatures {
    /// Every pack verified.
    #[default]
    Required,
    /// Unsigned packs allowed.
    Optional,
}

/// `packs`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PackRules {
    /// Globs of pack names that may be installed (`java`, `node-*`); absent: every pack.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// Globs of pack names that may never be installed; every layer's denials apply.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// One `scripts` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptRule {
    /// Pack name.
    pub pack: String,
    /// Manifest digest of the release whose script may run.
    pub digest: String,
}

/// Whether pack `name` matches glob `pattern` (`*`, `?`, `[...]`).
pub fn pack_matches(pattern: &str, name: &str) -> bool {
    glob::Pattern::new(pattern).is_ok_and(|p| p.matches(name))
}

/// One `trust` entry.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrustEntry {
    /// Store prefix, e.g. `docker://harbor.internal/toolpacks` or `oci:/srv/aibox/layout`.
    pub store: String,
    /// Public keys: PEM file paths (relative to the policy file) or inline PEM.
    pub keys: Vec<String>,
}

/// `network`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkRules {
    /// `host:port` or `*.domain:port`.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// `filesystem`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
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
    /// For a layered policy: the file each rule (`network.allow`, `packs.deny`, ...) came from.
    pub sources: std::collections::BTreeMap<String, PathBuf>,
}

impl Policy {
    /// Load the policy at `path`; a missing file is an empty policy (which trusts nothing).
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self { path: path.to_owned(), exists: false, file: PolicyFile::default(), root: PathBuf::from("/"), sources: std::collections::BTreeMap::new() });
            }
            Err(e) => return Err(Error::io("cannot read policy", path)(e)),
        };
        Ok(Self::of_file(path, parse(path, &text)?))
    }

    /// Whether every pack must carry a verified signature (the default).
    pub fn signatures_required(&self) -> bool {
        self.file.verification.as_ref().is_none_or(|v| v.signatures == Signatures::Required)
    }

    /// The rules `file` read from `path`, as a policy of their own (keys relative to `path`).
    pub fn of_file(path: &Path, file: PolicyFile) -> Self {
        Self { path: path.to_owned(), exists: true, file, root: PathBuf::from("/"), sources: std::collections::BTreeMap::new() }
    }

    /// The file rule `rule` came from (the policy file itself unless layered).
    pub fn source(&self, rule: &str) -> PathBuf {
        self.sources.get(rule).cloned().unwrap_or_else(|| self.path.clone())
    }

    /// The keys of one `trust` entry (inline PEM, or files relative to the policy file).
    pub fn entry_keys(&self, entry: &TrustEntry) -> Result<Vec<PublicKey>> {
        let mut keys = Vec::new();
        for key in &entry.keys {
            if key.contains("-----BEGIN") {
                keys.push(PublicKey::from_pem(key.as_bytes(), &format!("inline key in {}", self.source("trust").display())).map_err(|m| Error::Policy { path: self.source("trust"), message: m })?);
            } else {
                let p = self.path.parent().unwrap_or(Path::new("/")).join(key);
                let p = match p.strip_prefix("/") {
                    Ok(rel) if !p.starts_with(&self.root) => self.root.join(rel),
                    _ => p,
                };
                keys.push(PublicKey::from_file(&p)?);
            }
        }
        Ok(keys)
    }

    /// The keys trusted for `store` (every entry whose `store` is a prefix of it).
    pub fn keys_for(&self, store: &StoreLocation) -> Result<Vec<PublicKey>> {
        let store_text = store.to_string();
        let mut keys = Vec::new();
        for entry in &self.file.trust {
            if !store_matches(&entry.store, &store_text) {
                continue;
            }
            keys.extend(self.entry_keys(entry)?);
        }
        if keys.is_empty() {
            return Err(Error::Untrusted { store: store_text, policy: self.source("trust"), exists: self.exists });
        }
        Ok(keys)
    }

    /// Check a pack's declared endpoints and install method against the policy.
    pub fn check_pack(&self, pack: &PackManifest) -> Result<()> {
        let refuse = |what: String, rule: &str| Error::PolicyRefused { pack: format!("{}@{}", pack.name, pack.version), what, rule: rule.into(), policy: self.source(rule) };
        if let Some(rules) = &self.file.packs {
            if let Some(glob) = rules.deny.iter().find(|g| pack_matches(g, pack.name.as_str())) {
                return Err(refuse(format!("the pack (denied by `{glob}`)"), "packs.deny"));
            }
            if let Some(allow) = &rules.allow
                && !allow.iter().any(|g| pack_matches(g, pack.name.as_str()))
            {
                return Err(refuse("the pack".into(), "packs.allow"));
            }
        }
        let allowed_methods = self.file.install_methods.clone().unwrap_or_else(|| vec![InstallMethod::DockerLayer]);
        if !allowed_methods.contains(&pack.install.method) {
            return Err(Error::PolicyRefused {
                pack: format!("{}@{}", pack.name, pack.version),
                what: format!("install method `{}`", pack.install.method),
                rule: "install_methods".into(),
                policy: self.source("install_methods"),
            });
        }
        let allow = self.file.network.as_ref().map(|n| n.allow.as_slice()).unwrap_or_default();
        for endpoint in pack.network.endpoints.iter().chain(&pack.network_requires) {
            if !allow.iter().any(|rule| endpoint_allowed(rule, endpoint)) {
                return Err(Error::PolicyRefused {
                    pack: format!("{}@{}", pack.name, pack.version),
                    what: format!("network endpoint `{endpoint}`"),
                    rule: "network.allow".into(),
                    policy: self.source("network.allow"),
                });
            }
        }
        Ok(())
    }

    /// A `script` or `nix` pack installs only when `scripts` lists this release (name and
    /// manifest digest): both run the pack's code on install, so they are allowed release by
    /// release.
    pub fn check_script(&self, pack: &PackManifest, digest: &crate::digest::Digest) -> Result<()> {
        if pack.install.method == InstallMethod::DockerLayer {
            return Ok(());
        }
        let allowed = self.file.scripts.iter().flatten().any(|s| s.pack == pack.name.as_str() && s.digest == digest.as_str());
        if allowed {
            return Ok(());
        }
        Err(Error::PolicyRefused {
            pack: format!("{}@{}", pack.name, pack.version),
            what: format!("its install {} (release {digest})", if pack.install.method == InstallMethod::Nix { "expression" } else { "script" }),
            rule: "scripts".into(),
            policy: self.source("scripts"),
        })
    }

    /// Check an MCP server's `filesystem_requires` (already resolved to absolute paths) against
    /// `filesystem.allow`, whose entries are path prefixes that may use `${WORKSPACE}` and
    /// `${HOME}`. With no `filesystem` section, `${WORKSPACE}` and `${HOME}` are allowed.
    pub fn check_paths(&self, pack: &str, paths: &[String], expand: impl Fn(&str) -> String) -> Result<()> {
        let defaults = ["${WORKSPACE}".to_owned(), "${HOME}".to_owned()];
        let allow = self.file.filesystem.as_ref().map_or(&defaults[..], |f| f.allow.as_slice());
        // A rule that expands to `/` (HOME=/ for a user without a passwd entry) or to nothing
        // would allow everything: it allows nothing.
        let rules: Vec<String> = allow.iter().map(|r| expand(r)).filter(|r| Path::new(r).is_absolute() && Path::new(r) != Path::new("/")).collect();
        for path in paths {
            if !rules.iter().any(|rule| path_within(rule, path)) {
                return Err(Error::PolicyRefused {
                    pack: pack.to_owned(),
                    what: format!("filesystem path `{path}`"),
                    rule: "filesystem.allow".into(),
                    policy: self.source("filesystem.allow"),
                });
            }
        }
        Ok(())
    }
}

/// Parse a policy file's text, errors located.
pub fn parse(path: &Path, text: &str) -> Result<PolicyFile> {
    serde_saphyr::from_str(text).map_err(|e| Error::Policy { path: path.to_owned(), message: crate::error::yaml_error(&e) })
}

/// `path` is `prefix` or under it, by whole components (`/work` does not cover `/workspace`).
pub(crate) fn path_within(prefix: &str, path: &str) -> bool {
    let (prefix, path) = (Path::new(prefix), Path::new(path));
    prefix.is_absolute() && path.is_absolute() && !path.components().any(|c| matches!(c, std::path::Component::ParentDir)) && path.starts_with(prefix)
}

/// Prefix match on whole path segments: `docker://h/toolpacks` covers `docker://h/toolpacks`
/// and `docker://h/toolpacks/x`, not `docker://h/toolpacks-evil`.
pub(crate) fn store_matches(rule: &str, store: &str) -> bool {
    // A layout or archive path with `..` could climb out of a trusted directory.
    if store.split('/').any(|c| c == "..") {
        return false;
    }
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
        let policy = Policy::of_file(Path::new("p.yaml"), PolicyFile::default());
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
        assert!(!store_matches("oci:/srv/aibox/layout", "oci:/srv/aibox/layout/../../home/u/x"));
    }
}
