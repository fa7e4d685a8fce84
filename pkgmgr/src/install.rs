//! `aibox install`: Plan → Fetch → Activate.
//!
//! 1. Plan: resolve each request to a manifest digest, verify its Cosign signature against the
//!    keys the policy trusts for the store, read the pack manifest, check it against the policy,
//!    and walk `depends` (installed packs that satisfy a dependency are reused; conflicts and
//!    cycles fail here, before anything is written).
//! 2. Fetch: every layer streams store → digest check (+ cache copy) → zstd/gzip → tar → a
//!    staging directory beside the packs, several packs at once. A cached layer is read from
//!    the cache instead (and checked again).
//! 3. Activate: staging trees are renamed into place, the state is written atomically, then
//!    `current` links and env.sh are derived from it. Any failure before the state write leaves
//!    the previous install untouched; staging is removed.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aibox_schema::PackManifest;
use aibox_schema::media_types as mt;
use oci_client::manifest::OciDescriptor;
use serde::Serialize;
use tokio_util::io::SyncIoBridge;

use crate::cosign::{self, VerifiedSignature};
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result};
use crate::extract::{self, ExtractError, Limits};
use crate::policy::Policy;
use crate::progress::{Reporter, ReportingReader};
use crate::resolve::{PackSpec, VersionReq, find_target, read_pack_manifest};
use crate::store::{self, Store};
use crate::toolpacks::{InstalledPack, LockGuard, State, Toolpacks};

/// Everything an install needs.
pub struct Installer {
    /// Where packs come from.
    pub store: Box<dyn Store>,
    /// The policy in force.
    pub policy: Policy,
    /// Where packs go.
    pub toolpacks: Toolpacks,
    /// Extraction bounds.
    pub limits: Limits,
    /// Progress.
    pub reporter: Arc<dyn Reporter>,
    /// Reinstall packs that are already installed, from verified bytes (never from the tree cache).
    pub force: bool,
    /// Releases pinned by a lock (`aibox.lock`): a pack named here resolves to this manifest
    /// digest, which must still satisfy what is asked.
    pub pins: BTreeMap<String, Digest>,
}

/// A pack resolved, verified and checked: ready to fetch.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The pack manifest (config blob).
    pub pack: PackManifest,
    /// Manifest digest.
    pub digest: Digest,
    /// The layer to extract.
    pub layer: OciDescriptor,
    /// The signature that verified.
    pub signature: VerifiedSignature,
    /// What the user asked for, for explicit requests.
    pub requested: Option<String>,
}

/// What happened to one pack.
#[derive(Debug, Clone, Serialize)]
pub struct PackOutcome {
    /// Pack name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Manifest digest.
    pub digest: String,
    /// `installed`, `upgraded`, `already-installed`.
    pub action: &'static str,
    /// Install directory (through `current`).
    pub path: PathBuf,
    /// Bytes of content (0 when nothing was extracted).
    pub bytes: u64,
    /// Whether the layer came from the cache.
    pub cached: bool,
    /// Cache volumes the pack declares (name → path), created and ready to mount.
    pub caches: BTreeMap<String, String>,
}

impl Resolved {
    /// What the state records for this pack once installed from `store` (`bytes` of content in
    /// `entries` layer entries, at `installed_at`, RFC 3339). The image builder writes the same.
    pub fn record(&self, store: &crate::store::StoreLocation, bytes: u64, entries: u64, installed_at: String) -> InstalledPack {
        InstalledPack {
            version: self.pack.version.clone(),
            digest: self.digest.to_string(),
            store: store.to_string(),
            requested: self.requested.clone(),
            signer: self.signature.key.clone(),
            signed_as: self.signature.docker_reference.clone(),
            layer: self.layer.digest.clone(),
            size: bytes,
            entries,
            installed_at,
            depends: self.pack.depends.iter().map(ToString::to_string).collect(),
            path: self.pack.path.clone(),
            env: self.pack.env.clone(),
            caches: self.pack.caches.clone(),
            manifest: Some(self.pack.clone()),
        }
    }
}

impl Installer {
    /// Resolve `spec` in the store to a verified, policy-checked pack.
    pub async fn resolve(&self, spec: &PackSpec) -> Result<Resolved> {
        let store = self.store.as_ref();
        let name = spec.name.as_str();
        let target = find_target(store, spec).await?;
        let raw = store::require_manifest(store, name, &target).await?;
        let manifest = raw.image_manifest(store.location())?;
        if !matches!(manifest.artifact_type.as_deref(), Some(mt::TOOLPACK_ARTIFACT | mt::MCPPACK_ARTIFACT)) {
            return Err(Error::Corrupt { store: store.location().to_string(), reason: format!("{name}:{target} is not an aibox pack (artifactType {:?})", manifest.artifact_type) });
        }
        // The signature covers the manifest digest; the manifest pins config and layer digests.
        let unsigned = || VerifiedSignature {
            key: "unsigned".into(),
            key_source: "none: the policy makes signatures optional".into(),
            docker_reference: store.location().docker_reference(name),
            payload: raw.digest.clone(),
        };
        let required = self.policy.signatures_required();
        let signature = match self.policy.keys_for(store.location()) {
            Ok(keys) => match cosign::verify(store, name, &raw.digest, &keys).await {
                Ok(mut verified) => verified.remove(0),
                // No signature at all; a signature that does not verify always refuses.
                Err(Error::Unsigned { .. }) if !required => unsigned(),
                Err(e) => return Err(e),
            },
            Err(Error::Untrusted { .. }) if !required => unsigned(),
            Err(e) => return Err(e),
        };
        let pack = read_pack_manifest(store, name, &target, &manifest).await?;
        // A tag moved to another validly signed manifest (an older release) is a rollback.
        if !matches!(spec.req, VersionReq::Digest(_)) && target != "latest" && pack.tag() != target {
            return Err(Error::Corrupt {
                store: store.location().to_string(),
                reason: format!("tag {name}:{target} points at {name} {} (a swapped or rolled-back tag)", pack.version),
            });
        }
        let [layer] = manifest.layers.as_slice() else {
            return Err(Error::Corrupt { store: store.location().to_string(), reason: format!("{name}:{target} has {} layers; a pack has one", manifest.layers.len()) });
        };
        if ![mt::LAYER_TAR_ZSTD, mt::LAYER_TAR_GZIP, mt::LAYER_TAR].contains(&layer.media_type.as_str()) {
            return Err(Error::Corrupt { store: store.location().to_string(), reason: format!("layer media type {} is not a tar", layer.media_type) });
        }
        self.policy.check_pack(&pack)?;
        self.policy.check_script(&pack, &raw.digest)?;
        Ok(Resolved { pack, digest: raw.digest, layer: layer.clone(), signature, requested: None })
    }

    /// Resolve requests and their dependencies, dependencies first. Installed packs that
    /// satisfy a dependency are reused; explicit requests are always resolved in the store.
    pub async fn plan(&self, specs: &[PackSpec], state: &State) -> Result<Vec<Resolved>> {
        let mut plan: Vec<Resolved> = Vec::new();
        let mut chosen: BTreeMap<String, (semver::Version, String)> = BTreeMap::new();
        for spec in specs {
            let mut stack = Vec::new();
            Box::pin(self.visit(spec, true, None, state, &mut stack, &mut chosen, &mut plan)).await?;
        }
        Ok(plan)
    }

    #[allow(clippy::too_many_arguments)]
    async fn visit(
        &self,
        spec: &PackSpec,
        explicit: bool,
        needed_by: Option<&str>,
        state: &State,
        stack: &mut Vec<String>,
        chosen: &mut BTreeMap<String, (semver::Version, String)>,
        plan: &mut Vec<Resolved>,
    ) -> Result<()> {
        let name = spec.name.to_string();
        if let Some(pos) = stack.iter().position(|n| *n == name) {
            let cycle = stack[pos..].iter().chain(std::iter::once(&name)).cloned().collect::<Vec<_>>().join(" -> ");
            return Err(Error::Resolve(format!("dependency cycle: {cycle}")));
        }
        if let Some((version, why)) = chosen.get(&name) {
            let ok = match &spec.req {
                VersionReq::Digest(d) => plan.iter().any(|r| r.pack.name.as_str() == name && r.digest == *d),
                req => req.matches(version) || matches!(req, VersionReq::Exact(v) if v == version),
            };
            if !ok {
                let who = needed_by.map_or_else(|| "you asked for".to_owned(), |n| format!("{n} needs"));
                return Err(Error::Resolve(format!("conflict: {who} {spec}, but {name} {version} was chosen for {why}; one version of a pack is installed at a time")));
            }
            // Reached first as a dependency, asked for too: it is a request.
            if explicit && let Some(entry) = plan.iter_mut().find(|r| r.pack.name.as_str() == name) {
                entry.requested = Some(spec.to_string());
            }
            return Ok(());
        }
        if !explicit
            && let Some(installed) = state.packs.get(&name)
            && self.pins.get(&name).is_none_or(|d| d.as_str() == installed.digest)
        {
            let version = semver::Version::parse(&installed.version).ok();
            if version.as_ref().is_some_and(|v| spec.req.matches(v)) {
                chosen.insert(name, (version.expect("checked"), format!("installed {spec}")));
                return Ok(());
            }
        }
        let mut resolved = match self.pins.get(&name) {
            Some(digest) => {
                let pinned = self.resolve(&PackSpec { name: spec.name.clone(), req: VersionReq::Digest(digest.clone()) }).await?;
                let ok = match &spec.req {
                    VersionReq::Digest(d) => d == digest,
                    req => req.matches(&pinned.pack.semver()) || matches!(req, VersionReq::Exact(v) if *v == pinned.pack.semver()),
                };
                if !ok {
                    return Err(Error::PinConflict { name: name.clone(), version: pinned.pack.version.clone(), digest: digest.to_string(), spec: spec.to_string() });
                }
                pinned
            }
            None => self.resolve(spec).await?,
        };
        if explicit {
            resolved.requested = Some(spec.to_string());
        }
        let why = match needed_by {
            Some(n) => format!("{spec} (needed by {n})"),
            None => spec.to_string(),
        };
        chosen.insert(name.clone(), (resolved.pack.semver(), why));
        stack.push(name.clone());
        let me = format!("{}@{}", resolved.pack.name, resolved.pack.version);
        for dep in &resolved.pack.depends {
            let dep_spec = PackSpec { name: dep.name.clone(), req: VersionReq::from_dependency(dep.version.as_deref()) };
            Box::pin(self.visit(&dep_spec, false, Some(&me), state, stack, chosen, plan)).await?;
        }
        stack.pop();
        plan.push(resolved);
        Ok(())
    }

    /// Install `specs` (with dependencies). Holds the toolpacks lock throughout.
    pub async fn install(&self, specs: &[PackSpec]) -> Result<Vec<PackOutcome>> {
        let lock = self.lock().await?;
        let mut state = self.toolpacks.state()?;
        // A tree lost to a crash mid-swap is forgotten, so it is installed again.
        let before = state.packs.len();
        state.packs.retain(|name, p| self.toolpacks.pack_dir(name, &p.version).is_dir());
        if state.packs.len() != before {
            self.toolpacks.save_state(&lock, &state)?;
        }
        self.toolpacks.sync_to_state(&lock, &state)?;
        let plan = self.plan(specs, &state).await?;
        let (todo, skip): (Vec<_>, Vec<_>) =
            plan.into_iter().partition(|r| self.force || state.packs.get(r.pack.name.as_str()).is_none_or(|p| p.digest != r.digest.as_str()));

        let mut outcomes: Vec<PackOutcome> = skip
            .iter()
            .map(|r| {
                if let (Some(req), Some(p)) = (&r.requested, state.packs.get_mut(r.pack.name.as_str())) {
                    p.requested = Some(req.clone());
                }
                self.outcome(r, "already-installed", 0, false)
            })
            .collect();
        let fetched = self.fetch_all(&lock, &todo).await?;
        for (r, (staging, extracted, cached)) in todo.iter().zip(fetched) {
            self.toolpacks.place(&lock, staging, r.pack.name.as_str(), &r.pack.version)?;
            let mut record = self.record(r, extracted.bytes, extracted.entries);
            let previous = state.packs.get(r.pack.name.as_str());
            // A dependency upgraded in passing keeps the request the user made for it.
            if record.requested.is_none() {
                record.requested = previous.and_then(|p| p.requested.clone());
            }
            if r.pack.install.method == aibox_schema::InstallMethod::Nix {
                crate::methods::root_nix_profile(&self.toolpacks.pack_dir(r.pack.name.as_str(), &r.pack.version)).await?;
            }
            let action = if previous.is_some() { "upgraded" } else { "installed" };
            state.packs.insert(r.pack.name.to_string(), record);
            outcomes.push(self.outcome(r, action, extracted.bytes, cached));
        }
        create_cache_paths(&todo);
        self.toolpacks.save_state(&lock, &state)?;
        self.toolpacks.sync_to_state(&lock, &state)?;
        Ok(outcomes)
    }

    async fn lock(&self) -> Result<LockGuard> {
        lock(&self.toolpacks).await
    }

    fn outcome(&self, r: &Resolved, action: &'static str, bytes: u64, cached: bool) -> PackOutcome {
        PackOutcome {
            name: r.pack.name.to_string(),
            version: r.pack.version.clone(),
            digest: r.digest.to_string(),
            action,
            path: self.toolpacks.current(r.pack.name.as_str()),
            bytes,
            cached,
            caches: r.pack.caches.clone(),
        }
    }

    fn record(&self, r: &Resolved, bytes: u64, entries: u64) -> InstalledPack {
        r.record(self.store.location(), bytes, entries, chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }


    /// Fetch and extract every pack of `todo` concurrently into staging directories.
    async fn fetch_all(&self, lock: &LockGuard, todo: &[Resolved]) -> Result<Vec<(tempfile::TempDir, extract::Extracted, bool)>> {
        let jobs = todo.iter().map(|r| async move {
            let staging = self.toolpacks.staging(lock, r.pack.name.as_str())?;
            let (extracted, cached) = self.fetch_one(r, staging.path()).await?;
            match r.pack.install.method {
                aibox_schema::InstallMethod::Script => crate::methods::run_script(self, r, staging.path()).await?,
                aibox_schema::InstallMethod::Nix => crate::methods::run_nix(self, r, staging.path()).await?,
                aibox_schema::InstallMethod::DockerLayer => {}
            }
            Ok::<_, Error>((staging, extracted, cached))
        });
        // All at once: every job is I/O bound (network, decompression on a blocking thread).
        futures_util::future::try_join_all(jobs).await
    }

    async fn fetch_one(&self, r: &Resolved, staging: &Path) -> Result<(extract::Extracted, bool)> {
        let name = r.pack.name.as_str();
        let label = format!("{name}@{}", r.pack.version);
        let digest: Digest = r.layer.digest.parse().map_err(|e| Error::Corrupt { store: self.store.location().to_string(), reason: e })?;
        let size = u64::try_from(r.layer.size).unwrap_or(0);
        let cache = self.toolpacks.cache();
        // A script or nix changes the tree after extraction: such packs never share cached trees.
        let script = r.pack.install.method != aibox_schema::InstallMethod::DockerLayer;
        if !self.force
            && !script
            && let Some(extracted) = cache.link_tree_into(&digest, staging)?
        {
            let id = self.reporter.start("Linking", &format!("{name} {} from the cache", r.pack.version), 0);
            self.reporter.finish(id);
            return Ok((extracted, true));
        }
        let cache_dir = cache.blob_dir();
        std::fs::create_dir_all(&cache_dir).map_err(Error::io("cannot create", &cache_dir))?;
        let cached_path = cache.blob(&digest);
        let (reader, tee, cached): (store::BlobReader, Option<tempfile::NamedTempFile>, bool) = match tokio::fs::File::open(&cached_path).await {
            Ok(f) => (Box::pin(f), None, true),
            Err(_) => {
                let tee = tempfile::NamedTempFile::new_in(&cache_dir).map_err(Error::io("cannot write to", &cache_dir))?;
                (self.store.open_blob(name, &digest, Some(size)).await?, Some(tee), false)
            }
        };
        let verb = if cached { "Extracting" } else { "Downloading" };
        let id = self.reporter.start(verb, &format!("{name} {}", r.pack.version), size);
        let reporter = self.reporter.clone();
        let staging_dir = staging.to_owned();
        let staging = staging.to_owned();
        let layer_digest = digest.clone();
        let prefix = format!("opt/toolpacks/{name}/{}", r.pack.version);
        let media_type = r.layer.media_type.clone();
        let limits = self.limits;
        let store = self.store.location().to_string();
        let result = tokio::task::spawn_blocking(move || -> Result<extract::Extracted> {
            let tee_file = match &tee {
                Some(t) => Some(t.as_file().try_clone().map_err(Error::io("cannot write to", t.path()))?),
                None => None,
            };
            let mut hashing = HashingReader::new(ReportingReader::new(SyncIoBridge::new(reader), reporter, id), size, tee_file);
            // A full disk shows as a read error when the copy into the cache fails.
            let cache_write = |source: std::io::Error| Error::Io { action: "cannot write", path: cache_dir.clone(), source };
            let unsafe_content = |e: ExtractError| match e {
                ExtractError::Write { path, source } => Error::Io { action: "cannot write", path, source },
                ExtractError::Read(io) if crate::error::is_disk_full(&io) => cache_write(io),
                ExtractError::Read(io) => Error::Corrupt { store: store.clone(), reason: format!("layer {digest} of {label}: {io}") },
                other => Error::UnsafeContent { pack: label.clone(), reason: other.to_string() },
            };
            let extracted = match media_type.as_str() {
                mt::LAYER_TAR_ZSTD => {
                    let decoder = zstd::stream::read::Decoder::new(&mut hashing).map_err(Error::io("cannot start zstd for", &staging))?;
                    extract::extract(decoder, &staging, &prefix, &limits)
                }
                mt::LAYER_TAR_GZIP => extract::extract(flate2::read::GzDecoder::new(&mut hashing), &staging, &prefix, &limits),
                _ => extract::extract(&mut hashing, &staging, &prefix, &limits),
            };
            // Check the digest even when extraction failed: a tampered blob is named as such.
            let finished = hashing.finish();
            let (actual, read, _) = finished.map_err(|e| if crate::error::is_disk_full(&e) { cache_write(e) } else { Error::Corrupt { store: store.clone(), reason: format!("layer {digest} of {label}: {e}") } })?;
            if actual != digest || read != size {
                if cached {
                    // A damaged cache entry is dropped; the next install downloads the layer.
                    let _ = std::fs::remove_file(&cached_path);
                }
                return Err(Error::Corrupt { store, reason: format!("layer {digest} of {label} arrived as {actual} ({read} bytes, expected {size}): tampered or damaged; nothing was installed") });
            }
            let extracted = extracted.map_err(unsafe_content)?;
            if let Some(tee) = tee {
                crate::atomic::make_public(tee.as_file(), &cached_path)?;
                tee.as_file().sync_all().map_err(Error::io("cannot sync", tee.path()))?;
                tee.persist(&cached_path).map_err(|e| Error::io("cannot write", &cached_path)(e.error))?;
            }
            Ok(extracted)
        })
        .await
        .expect("extraction task does not panic");
        self.reporter.finish(id);
        let extracted = result?;
        if !script {
            cache.keep_tree(&layer_digest, &staging_dir, &extracted);
        }
        Ok((extracted, cached))
    }
}

/// Create the cache paths packs declare, so a launcher can mount `aibox-<tool>-cache` volumes
/// there. Only paths under a home directory (`$HOME`, `/home/`) are created: a pack must not
/// make directories elsewhere (the launcher mounts the volume there anyway).
fn create_cache_paths(packs: &[Resolved]) {
    let home = std::env::home_dir();
    for path in packs.iter().flat_map(|r| r.pack.caches.values()).map(std::path::Path::new) {
        if path.starts_with("/home") || home.as_deref().is_some_and(|h| h != std::path::Path::new("/") && path.starts_with(h)) {
            let _ = std::fs::create_dir_all(path);
        }
    }
}

/// Uninstall `names`; refuses while an installed pack depends on one, unless `force`.
pub async fn uninstall(toolpacks: &Toolpacks, names: &[String], force: bool) -> Result<Vec<String>> {
    let lock = lock(toolpacks).await?;
    let mut state = toolpacks.state()?;
    // Finish what a run killed after writing the state left (links, env.sh, trees to remove):
    // its re-run then answers "not installed" with everything in order.
    toolpacks.sync_to_state(&lock, &state)?;
    let removing: HashSet<&str> = names.iter().map(String::as_str).collect();
    for name in names {
        if !state.packs.contains_key(name) {
            return Err(Error::Resolve(format!("`{name}` is not installed in {}", toolpacks.root().display())));
        }
    }
    if !force {
        for (other, pack) in &state.packs {
            if removing.contains(other.as_str()) {
                continue;
            }
            for dep in &pack.depends {
                let dep_name = dep.split('@').next().unwrap_or(dep);
                if removing.contains(dep_name) {
                    return Err(Error::Resolve(format!("cannot uninstall {dep_name}: {other} {} depends on it ({dep}); uninstall {other} first, or pass --force", pack.version)));
                }
            }
        }
    }
    for name in names {
        state.packs.remove(name);
    }
    toolpacks.save_state(&lock, &state)?;
    toolpacks.sync_to_state(&lock, &state)?;
    Ok(names.to_vec())
}


/// `aibox cache gc` (`all: false`): drop cached layers no installed pack uses;
/// `aibox cache clean` (`all: true`): drop every cached layer (installs then download again).
/// Layers in `also_keep` (a project lock's) are kept by `gc` too.
pub async fn collect_cache(toolpacks: &Toolpacks, all: bool, also_keep: &[String]) -> Result<crate::cache::Collected> {
    let _lock = lock(toolpacks).await?;
    let keep: std::collections::BTreeSet<String> = if all {
        std::collections::BTreeSet::new()
    } else {
        toolpacks.state()?.packs.values().map(|p| p.layer.as_str()).chain(also_keep.iter().map(String::as_str)).map(|l| l.trim_start_matches("sha256:").to_owned()).collect()
    };
    toolpacks.cache().collect(&keep)
}

/// Re-derive links and env.sh from the state, and remove leftovers, under the lock: what a run
/// killed after writing the state had not finished.
pub async fn settle(toolpacks: &Toolpacks) -> Result<()> {
    let lock = lock(toolpacks).await?;
    toolpacks.sync_to_state(&lock, &toolpacks.state()?)
}

/// Take the toolpacks lock without blocking the async runtime.
pub async fn lock(toolpacks: &Toolpacks) -> Result<LockGuard> {
    let toolpacks = toolpacks.clone();
    tokio::task::spawn_blocking(move || toolpacks.lock()).await.expect("lock task does not panic")
}
