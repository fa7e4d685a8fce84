//! Policy layers: the org baseline (`/etc/aibox/policy.yaml`), team files
//! (`/etc/aibox/policy.d/*.yaml`, in name order) and the project's (`policy:` in the nearest
//! `aibox.yaml`). Each lower layer may only tighten what is above it:
//!
//! | rule | a lower layer may |
//! | --- | --- |
//! | `trust` | drop stores, narrow a store to a sub-namespace, drop keys |
//! | `network.allow` | drop endpoints, narrow `*.domain` or `:*` |
//! | `filesystem.allow` | drop paths, narrow to sub-paths |
//! | `install_methods` | drop methods |
//! | `packs.allow` | drop globs, narrow them (a glob the upper one matches) |
//! | `packs.deny` | add globs (every layer's denials apply) |
//! | `scripts` | drop entries |
//! | `verification` | require signatures (never make them optional) |
//!
//! A rule a layer does not set is inherited. Anything that would allow more is an error naming
//! the lower file and line and the upper one. Because every layer is checked against the merged
//! rules above it, the merged policy is simply, per rule, the lowest layer that sets it (with
//! relative key paths made absolute), and `packs.deny` is the union.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{PackRules, Policy, PolicyFile, endpoint_allowed, pack_matches, parse, path_within, store_matches};
use crate::error::{Error, Result};

/// Which layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerKind {
    /// `/etc/aibox/policy.yaml`.
    Org,
    /// `/etc/aibox/policy.d/*.yaml`.
    Team,
    /// `policy:` of the project's `aibox.yaml`.
    Project,
}

/// One layer as read.
#[derive(Debug, Clone, Serialize)]
pub struct Layer {
    /// Which layer.
    pub kind: LayerKind,
    /// Its file.
    pub path: PathBuf,
    /// Its rules.
    pub file: PolicyFile,
    #[serde(skip)]
    text: String,
}

impl Layer {
    /// A layer from a file's parsed rules and its text.
    pub fn new(kind: LayerKind, path: PathBuf, file: PolicyFile, text: String) -> Self {
        Self { kind, path, file, text }
    }

    /// `FILE:LINE` of the first line holding `needle` after the line holding `section`
    /// (a heuristic good enough for messages: YAML scalars appear as written).
    fn at(&self, section: &str, needle: &str) -> String {
        let start = self.text.lines().position(|l| l.trim_start().starts_with(section)).unwrap_or(0);
        let line = self.text.lines().enumerate().skip(start).find(|(_, l)| l.contains(needle)).map_or(start, |(i, _)| i);
        format!("{}:{}", self.path.display(), line + 1)
    }
}

/// The nearest `aibox.yaml` from `dir` upward.
pub fn find_project_file(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().map(|d| d.join("aibox.yaml")).find(|p| p.is_file())
}

/// Read the layers: `org` (a missing file is an empty layer, which trusts nothing), the
/// `policy.d/*.yaml` beside it, and the `policy` of `project` (an `aibox.yaml`).
pub fn read(org: &Path, project: Option<&Path>) -> Result<Vec<Layer>> {
    let mut layers = Vec::new();
    let read_text = |path: &Path| std::fs::read_to_string(path).map_err(Error::io("cannot read policy", path));
    let org_text = match std::fs::read_to_string(org) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io("cannot read policy", org)(e)),
    };
    let file = if org_text.trim().is_empty() { PolicyFile::default() } else { parse(org, &org_text)? };
    layers.push(Layer { kind: LayerKind::Org, path: org.to_owned(), file, text: org_text });
    let team_dir = org.parent().unwrap_or(Path::new("/")).join("policy.d");
    // Only a missing policy.d means no team layers: one that cannot be read must not silently
    // drop the team's restrictions.
    let entries = match std::fs::read_dir(&team_dir) {
        Ok(entries) => Some(entries.collect::<std::io::Result<Vec<_>>>().map_err(Error::io("cannot read", &team_dir))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("cannot read", &team_dir)(e)),
    };
    if let Some(entries) = entries {
        let mut files: Vec<PathBuf> = entries.into_iter().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml")).collect();
        files.sort();
        for path in files {
            let text = read_text(&path)?;
            let file = parse(&path, &text)?;
            layers.push(Layer { kind: LayerKind::Team, path, file, text });
        }
    }
    if let Some(path) = project {
        let text = read_text(path)?;
        let project: crate::project::ProjectFile = serde_saphyr::from_str(&text).map_err(|e| Error::Policy { path: path.to_owned(), message: crate::error::yaml_error(&e) })?;
        if let Some(file) = project.policy {
            layers.push(Layer { kind: LayerKind::Project, path: path.to_owned(), file, text });
        }
    }
    Ok(layers)
}

/// Where each merged rule came from: `FILE:LINE`.
pub type Origins = BTreeMap<String, String>;

/// Merge `layers` (org first) into one policy, refusing any layer that loosens.
pub fn merge(layers: &[Layer]) -> Result<(Policy, Origins)> {
    let org = &layers[0];
    let mut merged = PolicyFile::default();
    let mut sources: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut origins = Origins::new();
    let mut deny: Vec<String> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        // A rule that does not hold together (a glob that does not compile, a key that does
        // not load) must not fail open.
        check_layer(layer)?;
        if i > 0 {
            check_tightens(&merged, &origins, layer)?;
        }
        let f = &layer.file;
        let set = |sources: &mut BTreeMap<String, PathBuf>, origins: &mut Origins, rule: &str, section: &str| {
            sources.insert(rule.to_owned(), layer.path.clone());
            origins.insert(rule.to_owned(), layer.at(section, section));
        };
        if i == 0 || !f.trust.is_empty() {
            // Keys are kept as the PEM text checked here, so what verifies packs later is exactly
            // what was compared (a key file swapped afterwards changes nothing).
            let as_policy = Policy::of_file(&layer.path, f.clone());
            let mut trust = Vec::new();
            for entry in &f.trust {
                let mut entry = entry.clone();
                entry.keys = as_policy.entry_keys(&entry)?.into_iter().map(|k| k.pem).collect();
                trust.push(entry);
            }
            merged.trust = trust;
            set(&mut sources, &mut origins, "trust", "trust:");
        }
        if let Some(n) = &f.network {
            merged.network = Some(n.clone());
            set(&mut sources, &mut origins, "network.allow", "network:");
        }
        if let Some(fs) = &f.filesystem {
            merged.filesystem = Some(fs.clone());
            set(&mut sources, &mut origins, "filesystem.allow", "filesystem:");
        }
        if let Some(m) = &f.install_methods {
            merged.install_methods = Some(m.clone());
            set(&mut sources, &mut origins, "install_methods", "install_methods:");
        }
        if let Some(p) = &f.packs {
            if let Some(allow) = &p.allow {
                merged.packs.get_or_insert_with(PackRules::default).allow = Some(allow.clone());
                set(&mut sources, &mut origins, "packs.allow", "packs:");
            }
            for glob in &p.deny {
                if !deny.contains(glob) {
                    deny.push(glob.clone());
                    origins.insert(format!("packs.deny {glob}"), layer.at("packs:", glob));
                }
            }
            if !p.deny.is_empty() {
                sources.insert("packs.deny".into(), layer.path.clone());
            }
        }
        if let Some(s) = &f.scripts {
            merged.scripts = Some(s.clone());
            set(&mut sources, &mut origins, "scripts", "scripts:");
        }
        if let Some(v) = &f.verification {
            merged.verification = Some(v.clone());
            set(&mut sources, &mut origins, "verification", "verification:");
        }
    }
    if !deny.is_empty() {
        merged.packs.get_or_insert_with(PackRules::default).deny = deny;
    }
    let policy = Policy { path: org.path.clone(), exists: org.path.is_file(), file: merged, root: PathBuf::from("/"), sources };
    Ok((policy, origins))
}

/// Refuse `lower` if it allows anything `upper` (the merge so far) does not.
fn check_tightens(upper: &PolicyFile, origins: &Origins, lower: &Layer) -> Result<()> {
    let upper_at = |rule: &str| origins.get(rule).cloned().unwrap_or_else(|| "the layers above (which set nothing)".into());
    let loosened = |section: &str, needle: &str, rule: &str, what: String| Error::PolicyLoosened { lower: lower.at(section, needle), upper: upper_at(rule), what };
    let f = &lower.file;

    // trust: every store within an upper store, every key among that store's keys.
    if !f.trust.is_empty() {
        let upper_policy = Policy::of_file(Path::new("/"), upper.clone());
        let lower_policy = Policy::of_file(&lower.path, f.clone());
        for entry in &f.trust {
            let store = if entry.store.contains("://") || entry.store.starts_with("oci:") || entry.store.starts_with("oci-archive:") { entry.store.clone() } else { format!("docker://{}", entry.store) };
            let covering: Vec<_> = upper.trust.iter().filter(|u| store_matches(&u.store, store.trim_end_matches('/'))).collect();
            if covering.is_empty() {
                return Err(loosened("trust:", &entry.store, "trust", format!("trusts store `{}`", entry.store)));
            }
            let mut upper_keys = Vec::new();
            for u in covering {
                upper_keys.extend(upper_policy.entry_keys(u)?.into_iter().map(|k| k.fingerprint));
            }
            for (key, loaded) in entry.keys.iter().zip(lower_policy.entry_keys(entry)?) {
                if !upper_keys.contains(&loaded.fingerprint) {
                    let needle = if key.contains("-----BEGIN") { "-----BEGIN" } else { key.as_str() };
                    return Err(loosened("trust:", needle, "trust", format!("trusts key {} ({}) for `{}`", loaded.fingerprint, key.lines().next().unwrap_or_default(), entry.store)));
                }
            }
        }
    }
    // network.allow: every rule covered by an upper rule.
    if let Some(n) = &f.network {
        let allow = upper.network.as_ref().map(|n| n.allow.as_slice()).unwrap_or_default();
        for rule in &n.allow {
            if !allow.iter().any(|u| endpoint_covers(u, rule)) {
                return Err(loosened("network:", rule, "network.allow", format!("allows endpoint `{rule}`")));
            }
        }
    }
    // filesystem.allow: every path within an upper path.
    if let Some(fs) = &f.filesystem {
        let defaults = ["${WORKSPACE}".to_owned(), "${HOME}".to_owned()];
        let allow = upper.filesystem.as_ref().map_or(&defaults[..], |f| f.allow.as_slice());
        for path in &fs.allow {
            if !allow.iter().any(|u| u == path || path_within(u, path) || path.starts_with(&format!("{}/", u.trim_end_matches('/')))) {
                return Err(loosened("filesystem:", path, "filesystem.allow", format!("allows path `{path}`")));
            }
        }
    }
    // install_methods: a subset.
    if let Some(methods) = &f.install_methods {
        let allowed = upper.install_methods.clone().unwrap_or_else(|| vec![aibox_schema::InstallMethod::DockerLayer]);
        for m in methods {
            if !allowed.contains(m) {
                return Err(loosened("install_methods:", &m.to_string(), "install_methods", format!("allows install method `{m}`")));
            }
        }
    }
    // packs.allow: every glob within an upper glob (when the upper layers restrict at all).
    if let Some(allow) = f.packs.as_ref().and_then(|p| p.allow.as_ref())
        && let Some(upper_allow) = upper.packs.as_ref().and_then(|p| p.allow.as_ref())
    {
        for glob in allow {
            if !upper_allow.iter().any(|u| glob_covers(u, glob)) {
                return Err(loosened("packs:", glob, "packs.allow", format!("allows packs `{glob}`")));
            }
        }
    }
    // verification: never from required to optional.
    if f.verification.as_ref().is_some_and(|v| v.signatures == super::Signatures::Optional) && upper.verification.as_ref().is_none_or(|v| v.signatures == super::Signatures::Required) {
        return Err(loosened("verification:", "optional", "verification", "makes signatures optional".into()));
    }
    // scripts: a subset.
    if let Some(scripts) = &f.scripts {
        let allowed = upper.scripts.as_deref().unwrap_or_default();
        for s in scripts {
            if !allowed.contains(s) {
                return Err(loosened("scripts:", &s.digest, "scripts", format!("allows the script of {} {}", s.pack, s.digest)));
            }
        }
    }
    Ok(())
}

/// Whether every name glob `lower` matches, glob `upper` matches too: the same glob, a name
/// `upper` matches, or, for an upper `PREFIX*` (no other wildcards), a lower glob that starts
/// with `PREFIX` (anything after it is covered by the `*`).
fn glob_covers(upper: &str, lower: &str) -> bool {
    let wild = |s: &str| s.contains(['*', '?', '[']);
    if upper == lower || (!wild(lower) && pack_matches(upper, lower)) {
        return true;
    }
    match upper.strip_suffix('*') {
        Some(prefix) if !wild(prefix) => lower.starts_with(prefix),
        _ => false,
    }
}

/// Whether upper endpoint rule `upper` allows everything rule `lower` does.
fn endpoint_covers(upper: &str, lower: &str) -> bool {
    let (Some((uh, up)), Some((lh, lp))) = (upper.rsplit_once(':'), lower.rsplit_once(':')) else { return false };
    if up != "*" && up != lp {
        return false;
    }
    match (uh.strip_prefix("*."), lh.strip_prefix("*.")) {
        (Some(ud), Some(ld)) => ld == ud || ld.ends_with(&format!(".{ud}")),
        (None, Some(_)) => false,
        _ => endpoint_allowed(&format!("{uh}:{lp}"), &format!("{lh}:{lp}")),
    }
}

/// Check what one layer says on its own: stores parse, keys load, endpoints are `host:port`,
/// paths are absolute (or start with `${WORKSPACE}` / `${HOME}`), globs compile, script digests
/// are digests. Errors name the file and line.
pub fn check_layer(layer: &Layer) -> Result<()> {
    let bad = |section: &str, needle: &str, message: String| Error::Policy { path: layer.path.clone(), message: format!("{}: {message}", layer.at(section, needle)) };
    let f = &layer.file;
    let as_policy = Policy::of_file(&layer.path, f.clone());
    for entry in &f.trust {
        crate::store::StoreLocation::parse(&entry.store).map_err(|e| bad("trust:", &entry.store, e.to_string()))?;
        if entry.keys.is_empty() {
            return Err(bad("trust:", &entry.store, format!("`{}` lists no keys", entry.store)));
        }
        as_policy.entry_keys(entry)?;
    }
    for rule in f.network.iter().flat_map(|n| &n.allow) {
        let ok = rule.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && !host.contains(['/', ' ']) && (port == "*" || port.parse::<u16>().is_ok()));
        if !ok {
            return Err(bad("network:", rule, format!("`{rule}` is not host:port (a port number or *; host may start with *.)")));
        }
    }
    for path in f.filesystem.iter().flat_map(|fs| &fs.allow) {
        if !(path.starts_with('/') || path.starts_with("${WORKSPACE}") || path.starts_with("${HOME}")) || path.split('/').any(|c| c == "..") {
            return Err(bad("filesystem:", path, format!("`{path}` is not an absolute path (or one under ${{WORKSPACE}} / ${{HOME}}) without `..`")));
        }
    }
    if let Some(p) = &f.packs {
        for glob in p.allow.iter().flatten().chain(&p.deny) {
            glob::Pattern::new(glob).map_err(|e| bad("packs:", glob, format!("`{glob}` is not a glob: {e}")))?;
        }
    }
    for s in f.scripts.iter().flatten() {
        s.pack.parse::<aibox_schema::PackName>().map_err(|e| bad("scripts:", &s.pack, e.to_string()))?;
        s.digest.parse::<crate::digest::Digest>().map_err(|e| bad("scripts:", &s.digest, e))?;
    }
    Ok(())
}

/// The layered policy for a sandbox: the org file, its `policy.d/`, and the `aibox.yaml` nearest
/// to the current directory.
pub fn load(org: &Path) -> Result<Policy> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let layers = read(org, find_project_file(&cwd).as_deref())?;
    Ok(merge(&layers)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_coverage() {
        assert!(glob_covers("*", "node-*"));
        assert!(glob_covers("tool-*", "tool-a*"));
        assert!(glob_covers("node-?", "node-1"));
        assert!(!glob_covers("node-?", "node-*"), "`?` matches the text `*`, not every name");
        assert!(!glob_covers("[!x]*", "*"));
        assert!(!glob_covers("tool-*", "*"));
        assert!(!glob_covers("java", "java*"));
    }

    #[test]
    fn endpoint_coverage() {
        assert!(endpoint_covers("*.internal:443", "nexus.internal:443"));
        assert!(endpoint_covers("*.internal:443", "*.team.internal:443"));
        assert!(endpoint_covers("nexus.internal:*", "nexus.internal:443"));
        assert!(!endpoint_covers("nexus.internal:443", "*.internal:443"));
        assert!(!endpoint_covers("nexus.internal:443", "nexus.internal:*"));
        assert!(!endpoint_covers("*.team.internal:443", "*.internal:443"));
        assert!(!endpoint_covers("nexus.internal:443", "evil.com:443"));
    }
}
