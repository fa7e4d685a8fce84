//! `aibox-image bake`: Plan → Push → Sign.
//!
//! 1. Plan: the base (a normalized rootfs layer, or an existing image's layers) plus the aibox
//!    layer; for each variant, its packs resolved, signature-verified and policy-checked
//!    against the policy the image will carry (as `aibox install` would inside it), each pack
//!    layer checked and read once, and a state layer. Configs and manifests are computed here,
//!    so a dry run reports the digests a push would produce.
//! 2. Push, image by image: each blob the repository lacks is mounted from the repository that
//!    has it (the pack store, the base image, an image pushed earlier in this run) or uploaded;
//!    then the config, the manifest by digest, then the plain and the date-stamped tag.
//! 3. Sign each image with Cosign, and attach its SBOM (signed too).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aibox_pkgmgr::cosign::{self, SigningKey};
use aibox_pkgmgr::digest::{Digest, VerifyingReader};
use aibox_pkgmgr::install::{Installer, Resolved};
use aibox_pkgmgr::policy::Policy;
use aibox_pkgmgr::progress::{Reporter, ReportingReader};
use aibox_pkgmgr::resolve::PackSpec;
use aibox_pkgmgr::store::{self, Blob, BlobData, RawManifest, RegistryConfig, Store, StoreLocation};
use aibox_pkgmgr::toolpacks::{State, Toolpacks};
use aibox_schema::media_types::{LAYER_TAR_ZSTD, annotations as ann};
use oci_client::manifest::OciDescriptor;
use serde::Serialize;

use crate::aibox_layer::{self, key_file_name};
use crate::base_files::BaseFiles;
use crate::base_image::{self, SourceImage};
use crate::config::{Aibox, ImagesFile};
use crate::error::{Error, Result};
use crate::image::{self, ConfigInputs, Layer};
use crate::layer::{LayerFile, Meta};
use crate::packs::{self, PackLayer};
use crate::sbom::{self, Component, Origin};

/// How to bake.
pub struct Options {
    /// Bake only these images (by name); all when empty.
    pub only: Vec<String>,
    /// Sign images (and SBOMs) with this key.
    pub key: Option<SigningKey>,
    /// The date stamped on tags and written as the creation time.
    pub date: BakeDate,
    /// `org.opencontainers.image.revision`.
    pub revision: Option<String>,
    /// Compute everything, push nothing.
    pub dry_run: bool,
    /// How to reach registries.
    pub registry: RegistryConfig,
    /// Progress.
    pub reporter: Arc<dyn Reporter>,
}

/// The bake's date: the tag stamp, the creation time, and the mtime of layer entries.
#[derive(Debug, Clone)]
pub struct BakeDate {
    /// `20261123`.
    pub stamp: String,
    /// `2026-11-23T00:00:00Z` (or `SOURCE_DATE_EPOCH` itself).
    pub created: String,
    /// mtime of every layer entry: `SOURCE_DATE_EPOCH`, else 0, so layers do not change with
    /// the date and a nightly bake of the same inputs reuses yesterday's blobs.
    pub mtime: u64,
}

impl BakeDate {
    /// From `--date YYYYMMDD`, else `SOURCE_DATE_EPOCH`, else today (UTC, at midnight, so
    /// bakes on one day agree).
    pub fn new(date: Option<&str>) -> std::result::Result<Self, String> {
        let epoch = std::env::var("SOURCE_DATE_EPOCH").ok().map(|s| s.trim().parse::<i64>().map_err(|_| format!("SOURCE_DATE_EPOCH `{s}` is not a number of seconds"))).transpose()?;
        let mtime = epoch.and_then(|e| u64::try_from(e).ok()).unwrap_or(0);
        let created = match (date, epoch) {
            (Some(d), _) => chrono::NaiveDate::parse_from_str(d, "%Y%m%d").map_err(|_| format!("--date `{d}` is not YYYYMMDD"))?.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
            (None, Some(e)) => chrono::DateTime::from_timestamp(e, 0).ok_or_else(|| format!("SOURCE_DATE_EPOCH {e} is out of range"))?,
            (None, None) => chrono::Utc::now().date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
        };
        Ok(Self { stamp: created.format("%Y%m%d").to_string(), created: created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), mtime })
    }
}

/// What a bake did.
#[derive(Debug, Serialize)]
pub struct BakeReport {
    /// Where images went.
    pub registry: String,
    /// Nothing was pushed.
    pub dry_run: bool,
    /// The images, base first.
    pub images: Vec<ImageReport>,
}

/// One image.
#[derive(Debug, Serialize)]
pub struct ImageReport {
    /// Repository name.
    pub name: String,
    /// Tags pushed (plain, date-stamped).
    pub tags: Vec<String>,
    /// `docker://HOST/NS/NAME@sha256:...`.
    pub reference: String,
    /// Manifest digest.
    pub digest: Digest,
    /// Config digest.
    pub config: Digest,
    /// `linux/amd64`.
    pub platform: String,
    /// Layers, bottom first.
    pub layers: Vec<LayerReport>,
    /// Packs baked in, dependencies first.
    pub packs: Vec<PackReport>,
    /// Accounts of the base removed because they held the user's uid.
    pub replaced_accounts: Vec<String>,
    /// What the push sent.
    pub upload: Upload,
    /// The Cosign signature manifest.
    pub signature: Option<Digest>,
    /// The SBOM attachment manifest.
    pub sbom: Option<Digest>,
}

/// One layer.
#[derive(Debug, Serialize)]
pub struct LayerReport {
    /// Blob digest.
    pub digest: Digest,
    /// Blob size.
    pub size: u64,
    /// What made it.
    pub created_by: String,
}

/// One pack in an image.
#[derive(Debug, Serialize)]
pub struct PackReport {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Manifest digest.
    pub digest: String,
    /// The layer blob, as published.
    pub layer: String,
    /// What images.yaml asked for (`None`: a dependency).
    pub requested: Option<String>,
}

/// What pushing one image sent.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Upload {
    /// Blobs uploaded.
    pub blobs_uploaded: u32,
    /// Bytes of those blobs.
    pub bytes_uploaded: u64,
    /// Blobs mounted from another repository of the registry (nothing sent).
    pub blobs_mounted: u32,
    /// Blobs the repository already had.
    pub blobs_present: u32,
    /// Bytes of manifests sent (by digest, then once per tag).
    pub manifest_bytes: u64,
}

/// Where a layer blob's bytes are.
#[derive(Debug, Clone)]
enum Source {
    /// A file this bake wrote.
    File(PathBuf),
    /// A layer of the base this bake wrote (also in the base's repository once pushed).
    BaseLayer(PathBuf),
    /// The base image's store.
    BaseImage,
    /// The pack store, repository of this pack (the file is the checked local copy).
    Pack(String, PathBuf),
}

/// An image, computed.
struct Planned {
    name: String,
    tag: String,
    layers: Vec<(Layer, Source)>,
    config: Vec<u8>,
    manifest: RawManifest,
    packs: Vec<PackReport>,
    parts: Vec<Component>,
    replaced: Vec<String>,
}

/// Bake what `file` describes.
pub async fn bake(file: &ImagesFile, options: &Options) -> Result<BakeReport> {
    for only in &options.only {
        if file.base.name != *only && !file.variants.iter().any(|v| v.name == *only) {
            let names: Vec<&str> = std::iter::once(file.base.name.as_str()).chain(file.variants.iter().map(|v| v.name.as_str())).collect();
            return Err(Error::ImagesFile { path: "images.yaml".into(), message: format!("--only {only}: no such image (images: {})", names.join(", ")) });
        }
    }
    let work = tempfile::Builder::new().prefix("aibox-image-").tempdir().map_err(Error::io("cannot create a temporary directory in", std::env::temp_dir()))?;
    let work = work.path();
    let platform = aibox_pkgmgr::pack::build::host_platform();
    let dest = StoreLocation::parse(&file.registry)?;
    let pack_store_location = StoreLocation::parse(&file.store)?;

    // 1. Plan.
    let (base, base_files, source) = plan_base(file, options, &dest, &platform, work).await?;
    let mut planned = vec![base];
    if !file.variants.is_empty() {
        let installer = Installer {
            store: store::open(&pack_store_location, &options.registry).await?,
            policy: image_policy(file, work)?,
            toolpacks: Toolpacks::new(&work.join("toolpacks")),
            limits: aibox_pkgmgr::extract::Limits::default(),
            reporter: options.reporter.clone(),
            force: false,
            pins: std::collections::BTreeMap::new(),
        };
        let mut fetched: HashMap<String, PackLayer> = HashMap::new();
        for variant in file.variants.iter().filter(|v| options.only.is_empty() || options.only.contains(&v.name)) {
            let specs = variant.packs.iter().map(|p| p.parse::<PackSpec>()).collect::<aibox_pkgmgr::Result<Vec<_>>>()?;
            let plan = installer.plan(&specs, &State::default()).await?;
            for r in &plan {
                if !fetched.contains_key(&r.layer.digest) {
                    let layer = packs::fetch(installer.store.as_ref(), r, work, &options.reporter).await?;
                    fetched.insert(r.layer.digest.clone(), layer);
                }
            }
            planned.push(plan_variant(file, variant, &planned[0], &base_files, &plan, &fetched, options, &dest, work)?);
        }
    }
    let wanted = |p: &Planned| options.only.is_empty() || options.only.contains(&p.name);
    // A variant baked alone names its base by digest: that manifest must exist, untagged.
    let base_untagged = !wanted(&planned[0]) && planned[1..].iter().any(wanted);

    // 2. and 3.
    let mut report = BakeReport { registry: dest.to_string(), dry_run: options.dry_run, images: Vec::new() };
    let dest_store = if options.dry_run { None } else { Some(store::open_for_write(&dest, &options.registry).await?) };
    let pack_store = if options.dry_run || file.variants.is_empty() { None } else { Some(pack_store_location) };
    let mut pushed_to: HashMap<Digest, String> = HashMap::new();
    for (i, p) in planned.into_iter().enumerate() {
        if !wanted(&p) {
            if i == 0 && base_untagged && let Some(dest_store) = &dest_store {
                let ctx = PushContext { dest: dest_store.as_ref(), base_repo: &file.base.name, base: source.as_ref(), packs: None, reporter: &options.reporter };
                push_image(&ctx, &p.name, &p.layers, &p.config, &p.manifest, &mut pushed_to).await?;
            }
            continue;
        }
        let mut image = ImageReport {
            name: p.name.clone(),
            tags: vec![p.tag.clone(), format!("{}-{}", p.tag, options.date.stamp)],
            reference: dest.pack_display(&p.name, p.manifest.digest.as_str()),
            digest: p.manifest.digest.clone(),
            config: Digest::of(&p.config),
            platform: platform.clone(),
            layers: p.layers.iter().map(|(l, _)| LayerReport { digest: l.descriptor.digest.parse().expect("our digests parse"), size: u64::try_from(l.descriptor.size).unwrap_or(0), created_by: l.created_by.clone() }).collect(),
            packs: p.packs,
            replaced_accounts: p.replaced.clone(),
            upload: Upload::default(),
            signature: None,
            sbom: None,
        };
        if let Some(dest_store) = &dest_store {
            let ctx = PushContext { dest: dest_store.as_ref(), base_repo: &file.base.name, base: source.as_ref(), packs: pack_store.as_ref(), reporter: &options.reporter };
            image.upload = push_image(&ctx, &p.name, &p.layers, &p.config, &p.manifest, &mut pushed_to).await?;
            let image_component = Component { id: "image".into(), name: p.name.clone(), version: p.tag.clone(), digest: p.manifest.digest.clone(), origin: Origin::of(&dest, &p.name), purpose: "CONTAINER", supplier: None };
            let (sbom_manifest, sent) = push_sbom(dest_store.as_ref(), &p.name, &image_component, &p.parts, &p.manifest, &options.date.created).await?;
            image.upload.manifest_bytes += sent;
            image.sbom = Some(sbom_manifest.clone());
            if let Some(key) = &options.key {
                image.signature = Some(cosign::sign(dest_store.as_ref(), &p.name, &p.manifest.digest, key).await?.signature_manifest);
                cosign::sign(dest_store.as_ref(), &p.name, &sbom_manifest, key).await?;
            }
            // The tags move last: a bake that fails before here leaves them on the previous,
            // signed image.
            for tag in &image.tags {
                dest_store.push_manifest(&p.name, Some(tag), &p.manifest).await?;
                image.upload.manifest_bytes += p.manifest.bytes.len() as u64;
            }
        }
        report.images.push(image);
    }
    if let Some(dest_store) = &dest_store {
        dest_store.finish().await?;
    }
    Ok(report)
}

/// The policy the image will carry, staged with its keys under a scratch root so that
/// `/etc/aibox/keys/...` in it names the keys images.yaml lists.
fn image_policy(file: &ImagesFile, work: &Path) -> Result<Policy> {
    let root = work.join("root");
    let etc = root.join("etc/aibox");
    std::fs::create_dir_all(etc.join("keys")).map_err(Error::io("cannot create", &etc))?;
    let policy = file.base.policy.as_ref().expect("checked: variants need a policy");
    std::fs::copy(policy, etc.join("policy.yaml")).map_err(Error::io("cannot read", policy))?;
    for key in &file.base.keys {
        std::fs::copy(key, etc.join("keys").join(key_file_name(key)?)).map_err(Error::io("cannot read", key))?;
    }
    let mut loaded = Policy::load(&etc.join("policy.yaml"))?;
    loaded.root = root;
    Ok(loaded)
}

fn labels(file: &ImagesFile, options: &Options, name: &str, tag: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (ann::CREATED.to_owned(), options.date.created.clone()),
        (ann::TITLE.to_owned(), name.to_owned()),
        (ann::VERSION.to_owned(), tag.to_owned()),
    ]);
    if let Some(rev) = &options.revision {
        labels.insert("org.opencontainers.image.revision".into(), rev.clone());
    }
    if let Some(source) = &file.source {
        labels.insert(ann::SOURCE.into(), source.clone());
    }
    labels
}

/// The `aibox` binary `aibox: true` puts in images: beside this program, else on PATH.
fn default_aibox_binary() -> Result<PathBuf> {
    let beside = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("aibox"))).filter(|p| p.is_file());
    let on_path = || std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("aibox")).find(|p| p.is_file()));
    beside.or_else(on_path).ok_or_else(|| Error::ImagesFile { path: "images.yaml".into(), message: "base.aibox: no `aibox` binary beside aibox-image or on PATH; set base.aibox to its path".into() })
}

async fn plan_base(file: &ImagesFile, options: &Options, dest: &StoreLocation, platform: &str, work: &Path) -> Result<(Planned, BaseFiles, Option<SourceImage>)> {
    let base = &file.base;
    let mut layers: Vec<(Layer, Source)> = Vec::new();
    let mut parts = Vec::new();
    let (mut files, source, base_config) = match (&base.rootfs, &base.image) {
        (Some(rootfs), _) => {
            let (rootfs_path, work_dir) = (rootfs.clone(), work.to_owned());
            let mtime = options.date.mtime;
            let (layer, files) = tokio::task::spawn_blocking(move || crate::rootfs::normalize(&rootfs_path, &work_dir.join("rootfs.layer"), &work_dir, mtime)).await.expect("rootfs task does not panic")?;
            let created_by = format!("aibox-image: rootfs {}", rootfs.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
            parts.push(Component { id: "base".into(), name: rootfs.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), version: base.tag.clone(), digest: layer.digest.clone(), origin: Origin::File, purpose: "OPERATING-SYSTEM", supplier: None });
            layers.push(base_layer(layer, created_by));
            (files, None, None)
        }
        (None, Some(reference)) => {
            let source = base_image::open(reference, &options.registry, platform).await?;
            let files = if base.aibox.enabled() { source.files(&options.reporter).await? } else { BaseFiles::default() };
            let r = aibox_pkgmgr::PackRef::parse(reference)?;
            parts.push(Component { id: "base".into(), name: r.name.clone(), version: r.target.clone().unwrap_or_default(), digest: source.manifest.digest.clone(), origin: Origin::of(&r.store, &r.name), purpose: "OPERATING-SYSTEM", supplier: None });
            let config = source.config.clone();
            (files, Some(source), Some(config))
        }
        (None, None) => unreachable!("checked when loaded"),
    };
    // The base image's own layers are in its config already; only ours are added to it.
    let base_layer_count = source.as_ref().map_or(0, |s| s.layers.len());
    if let Some(s) = &source {
        for (descriptor, diff_id) in &s.layers {
            layers.push((Layer { descriptor: descriptor.clone(), diff_id: diff_id.clone(), created_by: format!("base image {}", s.reference) }, Source::BaseImage));
        }
    }
    let mut replaced = Vec::new();
    let mut user = None;
    let mut cmd = base.cmd.clone();
    if base.aibox.enabled() {
        let binary = match &base.aibox {
            Aibox::Binary(p) => p.clone(),
            Aibox::Enabled(_) => default_aibox_binary()?,
        };
        let config_yaml = match &base.config {
            Some(p) => checked_config(p, &file.store)?,
            None => format!("# Written by aibox-image: where `aibox install` finds packs.\nstore: {}\ntoolpacks_dir: /opt/toolpacks\n", file.store).into_bytes(),
        };
        let inputs = aibox_layer::Inputs { binary: &binary, config_yaml, policy: base.policy.as_deref(), keys: &base.keys, user: &base.user };
        let written = aibox_layer::write(&files, &inputs, &work.join("aibox.layer"), options.date.mtime)?;
        replaced = written.replaced;
        let version = aibox_version(&binary);
        parts.push(Component { id: "aibox".into(), name: "aibox".into(), version, digest: aibox_pkgmgr::digest::digest_file(&binary).map_err(Error::io("cannot read", &binary))?.0, origin: Origin::File, purpose: "APPLICATION", supplier: None });
        layers.push(base_layer(written.layer, "aibox-image: aibox, /etc/aibox, user, /opt/toolpacks".into()));
        // Numeric, so that runtimes (and Kubernetes' runAsNonRoot) can tell it is not root.
        user = Some((format!("{uid}:{uid}", uid = base.user.uid), format!("/home/{}", base.user.name)));
        if cmd.is_none() && base_config.as_ref().is_none_or(|c| c["config"]["Cmd"].is_null()) {
            cmd = Some(vec![written.shell, "-l".into()]);
        }
        // What the aibox layer adds is part of the base from here on (variants see it).
        files.add("opt/toolpacks", crate::base_files::Kind::Dir, Meta { mode: 0o755, uid: u64::from(base.user.uid), gid: u64::from(base.user.uid) }, None, None);
    }
    let added: Vec<Layer> = layers.iter().skip(base_layer_count).map(|(l, _)| l.clone()).collect();
    let labels = labels(file, options, &base.name, &base.tag);
    let config = image::config(&ConfigInputs { base: base_config.as_ref(), platform, created: &options.date.created, user, cmd: cmd.as_deref(), state: None, labels: &labels, layers: &added });
    let mut annotations = labels;
    if let Some(s) = &source {
        annotations.insert("org.opencontainers.image.base.name".into(), s.reference.trim_start_matches("docker://").to_owned());
        annotations.insert("org.opencontainers.image.base.digest".into(), s.manifest.digest.to_string());
    }
    let manifest = image::manifest(&config, layers.iter().map(|(l, _)| l.descriptor.clone()).collect(), annotations);
    let _ = dest;
    Ok((Planned { name: base.name.clone(), tag: base.tag.clone(), layers, config, manifest, packs: Vec::new(), parts, replaced }, files, source))
}

/// A `base.config` file, which must agree with images.yaml on where packs come from and go
/// (else the baked state would be invisible to aibox in the image).
fn checked_config(path: &Path, store: &str) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(Error::io("cannot read", path))?;
    let invalid = |message: String| Error::ImagesFile { path: path.to_owned(), message };
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid("base.config: not UTF-8".into()))?;
    let config: aibox_pkgmgr::config::ConfigFile = serde_saphyr::from_str(text).map_err(|e| invalid(format!("base.config: {}", aibox_pkgmgr::error::yaml_error(&e))))?;
    if config.store.as_deref().is_some_and(|s| s != store) {
        return Err(invalid(format!("base.config: store `{}` is not images.yaml's store `{store}`, which the baked packs come from", config.store.unwrap_or_default())));
    }
    if config.toolpacks_dir.as_deref().is_some_and(|d| d != Path::new("/opt/toolpacks")) {
        return Err(invalid("base.config: toolpacks_dir must be /opt/toolpacks, where images have their packs".into()));
    }
    Ok(bytes)
}

fn base_layer(layer: LayerFile, created_by: String) -> (Layer, Source) {
    let (l, source) = file_layer(layer, created_by);
    let Source::File(path) = source else { unreachable!("file_layer gives a file") };
    (l, Source::BaseLayer(path))
}

fn file_layer(layer: LayerFile, created_by: String) -> (Layer, Source) {
    let descriptor = OciDescriptor { media_type: LAYER_TAR_ZSTD.into(), digest: layer.digest.to_string(), size: i64::try_from(layer.size).expect("fits"), ..OciDescriptor::default() };
    (Layer { descriptor, diff_id: layer.diff_id, created_by }, Source::File(layer.path))
}

/// `aibox --version` of the binary going into the image, for the SBOM.
fn aibox_version(binary: &Path) -> String {
    std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "NOASSERTION".into())
}

#[allow(clippy::too_many_arguments)]
fn plan_variant(
    file: &ImagesFile,
    variant: &crate::config::Variant,
    base: &Planned,
    base_files: &BaseFiles,
    plan: &[Resolved],
    fetched: &HashMap<String, PackLayer>,
    options: &Options,
    dest: &StoreLocation,
    work: &Path,
) -> Result<Planned> {
    let store = StoreLocation::parse(&file.store)?;
    let mut state = State::default();
    let mut by_name: BTreeMap<String, &PackLayer> = BTreeMap::new();
    let mut layers: Vec<(Layer, Source)> = base.layers.clone();
    let mut added = Vec::new();
    let mut packs = Vec::new();
    let mut parts = vec![Component { id: "base".into(), name: base.name.clone(), version: base.tag.clone(), digest: base.manifest.digest.clone(), origin: Origin::of(dest, &base.name), purpose: "CONTAINER", supplier: None }];
    for r in plan {
        let name = r.pack.name.to_string();
        let layer = &fetched[&r.layer.digest];
        state.packs.insert(name.clone(), r.record(&store, layer.bytes, layer.entries, options.date.created.clone()));
        by_name.insert(name.clone(), layer);
        let l = Layer { descriptor: r.layer.clone(), diff_id: layer.diff_id.clone(), created_by: format!("aibox pack {name} {} ({})", r.pack.version, r.digest) };
        added.push(l.clone());
        layers.push((l, Source::Pack(name.clone(), layer.blob.clone())));
        packs.push(PackReport { name: name.clone(), version: r.pack.version.clone(), digest: r.digest.to_string(), layer: r.layer.digest.clone(), requested: r.requested.clone() });
        parts.push(Component { id: format!("pack-{name}"), name: name.clone(), version: r.pack.version.clone(), digest: r.digest.clone(), origin: Origin::of(&store, &name), purpose: "APPLICATION", supplier: Some(r.pack.maintainer.clone()) });
    }
    let owner = if file.base.aibox.enabled() { Meta { mode: 0o755, uid: u64::from(file.base.user.uid), gid: u64::from(file.base.user.uid) } } else { Meta::root(0o755) };
    let state_layer = packs::state_layer(base_files, &state, &by_name, owner, &work.join(format!("{}.state.layer", variant.name)), options.date.mtime)?;
    let (l, source) = file_layer(state_layer, "aibox-image: /opt/toolpacks state, current links, env.sh".into());
    added.push(l.clone());
    layers.push((l, source));

    let base_config: serde_json::Value = serde_json::from_slice(&base.config).expect("we wrote it");
    let mut labels = labels(file, options, &variant.name, &variant.tag);
    labels.insert("dev.aibox.packs".into(), plan.iter().map(|r| format!("{}@{}", r.pack.name, r.pack.version)).collect::<Vec<_>>().join(" "));
    let config = image::config(&ConfigInputs { base: Some(&base_config), platform: &aibox_pkgmgr::pack::build::host_platform(), created: &options.date.created, user: None, cmd: None, state: Some(&state), labels: &labels, layers: &added });
    let mut annotations = labels;
    annotations.insert("org.opencontainers.image.base.name".into(), format!("{}:{}", dest.docker_reference(&base.name), base.tag));
    annotations.insert("org.opencontainers.image.base.digest".into(), base.manifest.digest.to_string());
    let manifest = image::manifest(&config, layers.iter().map(|(l, _)| l.descriptor.clone()).collect(), annotations);
    Ok(Planned { name: variant.name.clone(), tag: variant.tag.clone(), layers, config, manifest, packs, parts, replaced: base.replaced.clone() })
}

struct PushContext<'a> {
    dest: &'a dyn Store,
    /// The base's repository in `dest` (base layers may be there from an earlier bake).
    base_repo: &'a str,
    base: Option<&'a SourceImage>,
    packs: Option<&'a StoreLocation>,
    reporter: &'a Arc<dyn Reporter>,
}

/// Push one image: blobs, config, then the manifest by digest (the caller tags it).
async fn push_image(ctx: &PushContext<'_>, name: &str, layers: &[(Layer, Source)], config: &[u8], manifest: &RawManifest, pushed_to: &mut HashMap<Digest, String>) -> Result<Upload> {
    let dest = ctx.dest;
    let mut up = Upload::default();
    for (layer, source) in layers {
        let digest: Digest = layer.descriptor.digest.parse().map_err(|e| aibox_pkgmgr::Error::Corrupt { store: dest.location().to_string(), reason: e })?;
        let size = u64::try_from(layer.descriptor.size).unwrap_or(0);
        if dest.has_blob(name, &digest).await? {
            up.blobs_present += 1;
            continue;
        }
        // Mount from where the registry may already have it: an image of this bake, the base's
        // repository (from an earlier bake), the base image, the pack store.
        let mut candidates: Vec<(&StoreLocation, &str)> = Vec::new();
        if let Some(repo) = pushed_to.get(&digest) {
            candidates.push((dest.location(), repo.as_str()));
        }
        match source {
            Source::BaseLayer(_) | Source::BaseImage if name != ctx.base_repo => candidates.push((dest.location(), ctx.base_repo)),
            _ => {}
        }
        match (source, ctx.base, ctx.packs) {
            (Source::BaseImage, Some(b), _) => candidates.push((b.store.location(), b.name.as_str())),
            (Source::Pack(pack, _), _, Some(store)) => candidates.push((store, pack.as_str())),
            _ => {}
        }
        let mut mounted = false;
        for (from, repo) in candidates {
            if dest.mount_blob(name, &digest, from, repo).await? {
                mounted = true;
                break;
            }
        }
        if mounted {
            up.blobs_mounted += 1;
        } else {
            let label = format!("{name} {}", layer.created_by);
            match source {
                Source::File(path) | Source::BaseLayer(path) | Source::Pack(_, path) => {
                    let id = ctx.reporter.start("Uploading", &label, size);
                    let file = tokio::fs::File::open(path).await.map_err(Error::io("cannot read", path))?;
                    let reader = ReportingReader::new(VerifyingReader::new(file, digest.clone(), size), ctx.reporter.clone(), id);
                    let pushed = dest.push_blob_stream(name, &digest, size, Box::pin(reader)).await;
                    ctx.reporter.finish(id);
                    pushed?;
                }
                Source::BaseImage => {
                    let b = ctx.base.expect("a base image layer has a base image");
                    let id = ctx.reporter.start("Copying", &label, size);
                    let reader = VerifyingReader::new(b.store.open_blob(&b.name, &digest, Some(size)).await?, digest.clone(), size);
                    let reader = ReportingReader::new(reader, ctx.reporter.clone(), id);
                    let pushed = dest.push_blob_stream(name, &digest, size, Box::pin(reader)).await;
                    ctx.reporter.finish(id);
                    pushed?;
                }
            }
            up.blobs_uploaded += 1;
            up.bytes_uploaded += size;
        }
        pushed_to.entry(digest).or_insert_with(|| name.to_owned());
    }
    let config = Blob { digest: Digest::of(config), size: config.len() as u64, data: BlobData::Bytes(config.to_vec().into()) };
    if store::push_blob_if_missing(dest, name, &config).await? {
        up.blobs_uploaded += 1;
        up.bytes_uploaded += config.size;
    } else {
        up.blobs_present += 1;
    }
    dest.push_manifest(name, None, manifest).await?;
    up.manifest_bytes += manifest.bytes.len() as u64;
    Ok(up)
}

/// Push the SBOM of an image as a Cosign attachment; returns the attachment's manifest digest
/// and the bytes sent.
async fn push_sbom(dest: &dyn Store, name: &str, image: &Component, parts: &[Component], manifest: &RawManifest, created: &str) -> Result<(Digest, u64)> {
    let doc = Blob::from_bytes(sbom::document(image, parts, created));
    let empty = Blob::from_bytes(&b"{}"[..]);
    let mut sent = 0;
    for blob in [&doc, &empty] {
        if store::push_blob_if_missing(dest, name, blob).await? {
            sent += blob.size;
        }
    }
    let attachment = sbom::attachment(&doc.digest, doc.size, manifest);
    dest.push_manifest(name, Some(&sbom::tag(&manifest.digest)), &attachment).await?;
    Ok((attachment.digest, sent + attachment.bytes.len() as u64))
}
