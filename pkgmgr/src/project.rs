//! Project files: `aibox.yaml` says what a project wants, `aibox.lock` pins exactly which
//! releases, so every sandbox and CI job of the project gets the same bits (cargo's model).
//!
//! ```yaml
//! # aibox.yaml
//! packs: [java@21, node@20]
//! mcp: [git-mcp]            # MCP packs: installed and enabled for the project's agents
//! policy:                   # the project layer of the policy (may only tighten)
//!   network:
//!     allow: ["nexus.internal:443"]
//! ```
//!
//! `aibox.lock` is YAML written in one fixed form (packs sorted by name, one key per line,
//! strings JSON-quoted), so it diffs well and the same resolution gives the same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::install::{Installer, Resolved};
use crate::policy::PolicyFile;
use crate::resolve::{PackSpec, VersionReq};
use crate::store::StoreLocation;
use crate::toolpacks::State;

/// The project file's name.
pub const PROJECT_FILE: &str = "aibox.yaml";
/// The lock file's name.
pub const LOCK_FILE: &str = "aibox.lock";

/// `aibox.yaml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    /// Tool packs (`java@21`).
    #[serde(default)]
    pub packs: Vec<String>,
    /// MCP packs, installed and enabled for the project's agents.
    #[serde(default)]
    pub mcp: Vec<String>,
    /// The project layer of the policy.
    #[serde(default)]
    pub policy: Option<PolicyFile>,
}

/// A project: its directory and `aibox.yaml`.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory holding `aibox.yaml`.
    pub dir: PathBuf,
    /// What it says.
    pub file: ProjectFile,
}

impl Project {
    /// The project `dir` or its nearest ancestor holds, if any.
    pub fn find(dir: &Path) -> Result<Option<Self>> {
        match crate::policy::layers::find_project_file(dir) {
            Some(path) => Self::load(&path).map(Some),
            None => Ok(None),
        }
    }

    /// Read `aibox.yaml` at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io("cannot read", path))?;
        let file: ProjectFile = serde_saphyr::from_str(&text).map_err(|e| Error::Config { path: path.to_owned(), message: crate::error::yaml_error(&e) })?;
        let project = Self { dir: path.parent().unwrap_or(Path::new(".")).to_owned(), file };
        project.specs()?;
        Ok(project)
    }

    /// `aibox.yaml`.
    pub fn path(&self) -> PathBuf {
        self.dir.join(PROJECT_FILE)
    }

    /// `aibox.lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    /// Every pack the project asks for: `packs`, then `mcp`.
    pub fn specs(&self) -> Result<Vec<PackSpec>> {
        self.file.packs.iter().chain(&self.file.mcp).map(|s| s.parse::<PackSpec>().map_err(|e| Error::Config { path: self.path(), message: format!("`{s}`: {e}") })).collect()
    }

    /// The MCP packs' names.
    pub fn mcp_names(&self) -> Result<Vec<String>> {
        self.file.mcp.iter().map(|s| s.parse::<PackSpec>().map(|p| p.name.to_string())).collect()
    }

    /// The lock, if there is one.
    pub fn read_lock(&self) -> Result<Option<Lock>> {
        let path = self.lock_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => Lock::parse(&path, &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("cannot read", path)(e)),
        }
    }

    /// Put `specs` into `packs` (replacing an entry for the same pack, else appending) and take
    /// the packs named in `remove` out of `packs` and `mcp`, in memory.
    pub fn edit_in_memory(&mut self, specs: &[PackSpec], remove: &[String]) {
        let name_of = |s: &str| s.split('@').next().unwrap_or(s).trim().to_owned();
        for spec in specs {
            let name = spec.name.to_string();
            let text = spec.to_string();
            if let Some(slot) = self.file.mcp.iter_mut().find(|s| name_of(s) == name) {
                *slot = text;
            } else if let Some(slot) = self.file.packs.iter_mut().find(|s| name_of(s) == name) {
                *slot = text;
            } else {
                self.file.packs.push(text);
            }
        }
        self.file.packs.retain(|s| !remove.contains(&name_of(s)));
        self.file.mcp.retain(|s| !remove.contains(&name_of(s)));
    }

    /// [`Project::edit_in_memory`], then write `aibox.yaml` (its comments elsewhere kept).
    pub fn write_edit(mut self, specs: &[PackSpec], remove: &[String]) -> Result<()> {
        self.edit_in_memory(specs, remove);
        let path = self.path();
        let text = std::fs::read_to_string(&path).map_err(Error::io("cannot read", &path))?;
        let mut doc = crate::mcp::document::Document::parse(crate::mcp::agents::Format::Yaml, &text)
            .map_err(|e| Error::Config { path: path.clone(), message: format!("line {}, column {}: {}", e.line, e.column, e.message) })?;
        let invalid = |message: String| Error::Config { path: path.clone(), message };
        doc.set_top_level("packs", &serde_json::json!(self.file.packs)).map_err(invalid)?;
        if !self.file.mcp.is_empty() || text.contains("mcp:") {
            doc.set_top_level("mcp", &serde_json::json!(self.file.mcp)).map_err(invalid)?;
        }
        let new = doc.text();
        serde_saphyr::from_str::<ProjectFile>(&new).map_err(|e| invalid(format!("the edit would not parse: {e}")))?;
        crate::atomic::write_atomic(&path, new.as_bytes())
    }
}

/// `aibox.lock`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Format version.
    pub version: u32,
    /// Every pack, dependencies included, by name.
    pub packs: Vec<LockedPack>,
}

/// One pinned pack.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPack {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// What aibox.yaml asks (`java@21`); absent for dependencies.
    #[serde(default)]
    pub requested: Option<String>,
    /// The store it was resolved in.
    pub store: String,
    /// Manifest digest: what is installed.
    pub digest: String,
    /// Its layer (what `aibox cache gc` keeps).
    pub layer: String,
    /// Fingerprint of the key whose signature verified.
    pub signer: String,
    /// The platforms the release is published for.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// Its dependencies (`node@20`).
    #[serde(default)]
    pub depends: Vec<String>,
}

impl Lock {
    /// The lock of a resolution (`plan`, in `store`).
    pub fn from_plan(plan: &[Resolved], store: &StoreLocation) -> Self {
        let mut packs: Vec<LockedPack> = plan
            .iter()
            .map(|r| LockedPack {
                name: r.pack.name.to_string(),
                version: r.pack.version.clone(),
                requested: r.requested.clone(),
                store: store.to_string(),
                digest: r.digest.to_string(),
                layer: r.layer.digest.clone(),
                signer: r.signature.key.clone(),
                platforms: r.pack.platforms.clone(),
                depends: r.pack.depends.iter().map(ToString::to_string).collect(),
            })
            .collect();
        packs.sort_by(|a, b| a.name.cmp(&b.name));
        Self { version: 1, packs }
    }

    /// Parse a lock file.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let lock: Lock = serde_saphyr::from_str(text).map_err(|e| Error::Config { path: path.to_owned(), message: format!("{} (regenerate it with `aibox lock`)", crate::error::yaml_error(&e)) })?;
        for p in &lock.packs {
            p.digest.parse::<Digest>().map_err(|e| Error::Config { path: path.to_owned(), message: format!("{}: {e}", p.name) })?;
        }
        Ok(lock)
    }

    /// The lock as written: one fixed form.
    pub fn to_text(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("strings serialize");
        let list = |v: &[String]| format!("[{}]", v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", "));
        let mut out = format!("# aibox.lock: generated by `aibox lock` from aibox.yaml. Commit it; do not edit it.\nversion: {}\npacks:{}\n", self.version, if self.packs.is_empty() { " []" } else { "" });
        for p in &self.packs {
            out.push_str(&format!("  - name: {}\n    version: {}\n", q(&p.name), q(&p.version)));
            if let Some(r) = &p.requested {
                out.push_str(&format!("    requested: {}\n", q(r)));
            }
            out.push_str(&format!(
                "    store: {}\n    digest: {}\n    layer: {}\n    signer: {}\n    platforms: {}\n    depends: {}\n",
                q(&p.store),
                q(&p.digest),
                q(&p.layer),
                q(&p.signer),
                list(&p.platforms),
                list(&p.depends)
            ));
        }
        out
    }

    /// Manifest digests by pack name.
    pub fn pins(&self) -> BTreeMap<String, Digest> {
        self.packs.iter().filter_map(|p| Some((p.name.clone(), p.digest.parse().ok()?))).collect()
    }

    /// Why this lock does not fit `specs` resolved in `store` (`None`: it does): a request
    /// without its entry, a pin that no longer satisfies it, an entry nothing asks for, another
    /// store.
    pub fn stale(&self, specs: &[PackSpec], store: &StoreLocation) -> Option<String> {
        let store = store.to_string();
        if let Some(p) = self.packs.iter().find(|p| p.store != store) {
            return Some(format!("{} is locked from {}, the store is now {store}", p.name, p.store));
        }
        for spec in specs {
            let Some(p) = self.packs.iter().find(|p| p.name == spec.name.as_str()) else {
                return Some(format!("{spec} is not in the lock"));
            };
            let fits = match &spec.req {
                VersionReq::Digest(d) => p.digest == d.as_str(),
                req => semver::Version::parse(&p.version).is_ok_and(|v| req.matches(&v) || matches!(req, VersionReq::Exact(e) if *e == v)),
            };
            if !fits || p.requested.as_deref() != Some(spec.to_string().as_str()) {
                return Some(format!("the lock has {} {} for {}, aibox.yaml asks {spec}", p.name, p.version, p.requested.as_deref().unwrap_or("a dependency")));
            }
        }
        if let Some(p) = self.packs.iter().find(|p| p.requested.is_some() && !specs.iter().any(|s| s.name.as_str() == p.name)) {
            return Some(format!("{} is locked but aibox.yaml no longer asks for it", p.name));
        }
        for p in &self.packs {
            for dep in &p.depends {
                let dep_name = dep.split('@').next().unwrap_or(dep);
                if !self.packs.iter().any(|q| q.name == dep_name) {
                    return Some(format!("{} depends on {dep}, which the lock does not pin", p.name));
                }
            }
        }
        None
    }
}

/// Resolve the project (verifying signatures and policy, with dependencies) into a lock.
/// Entries of `previous` whose request is unchanged keep their pins unless `update`.
pub async fn resolve_lock(installer: &mut Installer, project: &Project, previous: Option<&Lock>, update: bool) -> Result<Lock> {
    let specs = project.specs()?;
    installer.pins = match previous {
        Some(lock) if !update => {
            let asked: BTreeMap<String, String> = specs.iter().map(|s| (s.name.to_string(), s.to_string())).collect();
            // A pin stays while what asked for it is unchanged (dependencies: while listed).
            lock.packs
                .iter()
                .filter(|p| p.requested.as_ref().is_none_or(|r| asked.get(&p.name) == Some(r)))
                .filter_map(|p| Some((p.name.clone(), p.digest.parse().ok()?)))
                .collect()
        }
        _ => BTreeMap::new(),
    };
    // A kept pin that no longer satisfies what asks for it is dropped (that one only) and its
    // pack resolved afresh.
    let plan = loop {
        match installer.plan(&specs, &State::default()).await {
            Err(Error::PinConflict { name, .. }) if installer.pins.remove(&name).is_some() => {}
            other => break other?,
        }
    };
    Ok(Lock::from_plan(&plan, installer.store.location()))
}

/// Write `lock` to the project's `aibox.lock` when it differs; returns whether it did.
pub fn write_lock(project: &Project, lock: &Lock) -> Result<bool> {
    let text = lock.to_text();
    let path = project.lock_path();
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    crate::atomic::write_atomic(&path, text.as_bytes())?;
    Ok(true)
}
