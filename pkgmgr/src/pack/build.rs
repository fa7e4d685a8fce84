//! Build a pack folder (`pack.yaml` + `root/` + pinned sources + build steps) into an OCI
//! artifact: one zstd tar layer, the manifest as canonical JSON config, and an image manifest
//! with the pack's `artifactType` and annotations. Deterministic: the same folder gives the same
//! manifest digest on any machine.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use aibox_schema::media_types::{self as mt, annotations};
use aibox_schema::{PackKind, PackManifest};
use oci_client::manifest::{OciDescriptor, OciImageManifest};

use super::layer::{self, LayerError};
use crate::error::{Error, Result};
use crate::store::{Blob, BlobData, RawManifest};

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// `org.opencontainers.image.source`; defaults to the pack folder as given.
    pub source: Option<String>,
    /// zstd level (1-19).
    pub compression_level: i32,
    /// Entry mtime; `SOURCE_DATE_EPOCH` or 0.
    pub mtime: u64,
    /// Mirrors and the download cache for `url` sources.
    pub fetch: super::sources::Fetch,
    /// The platform built for (`linux/amd64`): sources for other platforms are skipped.
    pub platform: String,
}

/// This machine's platform, as OCI names it.
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

impl Default for BuildOptions {
    fn default() -> Self {
        let mtime = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        Self { source: None, compression_level: 3, mtime, fetch: super::sources::Fetch::new(Vec::new()), platform: host_platform() }
    }
}

/// A built pack, ready to push to any store.
#[derive(Debug)]
pub struct BuiltPack {
    /// The validated `pack.yaml`.
    pub manifest: PackManifest,
    /// The layer (a file in the build's work directory).
    pub layer: Blob,
    /// The config blob (canonical JSON of the manifest).
    pub config: Blob,
    /// The OCI image manifest.
    pub oci: RawManifest,
    /// Entries in the layer.
    pub entries: u64,
    _work: tempfile::TempDir,
}

/// Read and validate `DIR/pack.yaml`.
pub fn load(dir: &Path) -> Result<PackManifest> {
    Ok(PackManifest::from_file(&dir.join("pack.yaml"))?)
}

/// Build the pack in `dir`.
pub fn build(dir: &Path, options: &BuildOptions) -> Result<BuiltPack> {
    let manifest = load(dir)?;
    let fail = |reason: String| Error::Build { pack: dir.to_owned(), reason };
    let work = tempfile::Builder::new().prefix("aibox-build-").tempdir().map_err(Error::io("cannot create a build directory in", std::env::temp_dir()))?;
    let root = dir.join("root");
    let tree = if manifest.sources.is_empty() && manifest.build.is_empty() {
        root
    } else {
        let staging = work.path().join("stage");
        std::fs::create_dir_all(&staging).map_err(Error::io("cannot create", &staging))?;
        if root.is_dir() {
            layer::check_tree(&root).map_err(|e| fail(layer_reason(&e, "root/")))?;
            copy_tree(&root, &staging).map_err(|e| fail(format!("copying root/: {e}")))?;
        }
        if !manifest.platforms.is_empty() && !manifest.platforms.contains(&options.platform) {
            return Err(fail(format!("the pack is for {}, not {}", manifest.platforms.join(", "), options.platform)));
        }
        let host_bound = manifest.sources.iter().any(|s| s.npm.is_some() || s.pypi.is_some() || s.deb.is_some());
        if host_bound && options.platform != host_platform() {
            return Err(fail(format!(
                "npm, PyPI and Debian sources install for this machine ({}), not {}: build this pack on a {} host",
                host_platform(),
                options.platform,
                options.platform
            )));
        }
        let sources: Vec<_> = manifest.sources.iter().filter(|s| s.platform.as_ref().is_none_or(|p| *p == options.platform)).cloned().collect();
        super::sources::place_all(dir, &sources, &staging, work.path(), &options.fetch).map_err(fail)?;
        run_build_steps(dir, &manifest.build, &staging, &options.platform, manifest.build_network).map_err(fail)?;
        staging
    };
    if !tree.is_dir() {
        std::fs::create_dir_all(&tree).ok();
    }
    let prefix = format!("opt/toolpacks/{}/{}", manifest.name, manifest.version);
    let layer_path = work.path().join("layer.tar.zst");
    let label = if tree.starts_with(work.path()) { "the staged tree: " } else { "root/" };
    let layer = layer::write_layer(&tree, &prefix, &layer_path, options.mtime, options.compression_level)
        .map_err(|e| fail(layer_reason(&e, label)))?;

    let config = Blob::from_bytes(manifest.to_canonical_json());
    let (artifact_type, config_type) = match manifest.kind() {
        PackKind::Tool => (mt::TOOLPACK_ARTIFACT, mt::TOOLPACK_CONFIG),
        PackKind::Mcp => (mt::MCPPACK_ARTIFACT, mt::MCPPACK_CONFIG),
    };
    // A URL copied from a CI checkout may carry its token (`https://x-access-token:TOKEN@...`):
    // the annotation is published, so it never does.
    let source = options.source.as_deref().map_or_else(|| dir.display().to_string(), |s| crate::secrets::strip_userinfo(s).into_owned());
    let oci = OciImageManifest {
        schema_version: 2,
        media_type: Some(mt::OCI_MANIFEST.to_owned()),
        config: descriptor(config_type, &config),
        layers: vec![OciDescriptor {
            media_type: mt::LAYER_TAR_ZSTD.to_owned(),
            digest: layer.digest.to_string(),
            size: i64::try_from(layer.size).expect("layer size fits"),
            ..OciDescriptor::default()
        }],
        subject: None,
        artifact_type: Some(artifact_type.to_owned()),
        annotations: Some(BTreeMap::from([
            (annotations::TITLE.to_owned(), manifest.name.to_string()),
            (annotations::VERSION.to_owned(), manifest.version.clone()),
            (annotations::DESCRIPTION.to_owned(), manifest.description.clone()),
            (annotations::SOURCE.to_owned(), source),
        ])),
    };
    let oci = RawManifest::new(serde_json::to_vec(&oci).expect("manifest serializes"));
    let layer_blob = Blob { digest: layer.digest, size: layer.size, data: BlobData::File(layer.path) };
    Ok(BuiltPack { manifest, layer: layer_blob, config, oci, entries: layer.entries, _work: work })
}

fn descriptor(media_type: &str, blob: &Blob) -> OciDescriptor {
    OciDescriptor {
        media_type: media_type.to_owned(),
        digest: blob.digest.to_string(),
        size: i64::try_from(blob.size).expect("blob size fits"),
        ..OciDescriptor::default()
    }
}

fn layer_reason(e: &LayerError, label: &str) -> String {
    match e {
        LayerError::EscapingSymlink { .. } | LayerError::SpecialFile(_) => format!("{label}{e}"),
        LayerError::Io { .. } => e.to_string(),
    }
}

/// Copy a tree (files, dirs, symlinks as links) preserving executable bits.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in walkdir::WalkDir::new(from).follow_links(false).min_depth(1) {
        let entry = entry?;
        let rel = entry.path().strip_prefix(from).expect("walk stays under root");
        let dest = to.join(rel);
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&dest)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// Run `build` steps with `sh -ec`, in the pack folder, with `PACK_ROOT` set to the staging tree.
fn run_build_steps(pack_dir: &Path, steps: &[String], staging: &Path, platform: &str, network: bool) -> std::result::Result<(), String> {
    // Without `build_network`, steps run in a network namespace of their own (only loopback,
    // brought up), so a recipe cannot fetch anything it did not pin as a source. Where that
    // cannot be done the build stops rather than run them with the network.
    let isolate = !network && !steps.is_empty();
    if isolate && !network_isolation_works() {
        return Err("build steps must run without network, but `unshare --net --map-root-user` is not permitted here (a container without user namespaces?); build where it is, or declare `build_network: true` if the recipe really needs the network".into());
    }
    for (i, step) in steps.iter().enumerate() {
        let mut command = if isolate {
            let mut c = Command::new("unshare");
            // Loopback starts down in a new namespace; tools (bazel, gradle) use it.
            c.args(["--net", "--map-root-user", "sh", "-c", "ip link set lo up 2>/dev/null || true; exec sh -ec \"$1\"", "sh"]);
            c
        } else {
            let mut c = Command::new("sh");
            c.arg("-ec");
            c
        };
        let output = command
            .arg(step)
            .current_dir(pack_dir)
            .env("PACK_ROOT", staging)
            .env("PACK_PLATFORM", platform)
            .output()
            .map_err(|e| format!("cannot run build step {}: {e}", i + 1))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let hint = if isolate { " (build steps have no network; declare `build_network: true` if this one needs it)" } else { "" };
            return Err(format!("build step {} (`{step}`) failed with {}{hint}: {}", i + 1, output.status, stderr.trim()));
        }
    }
    Ok(())
}

/// Whether `unshare --net --map-root-user` can run here (root, or unprivileged user namespaces).
fn network_isolation_works() -> bool {
    Command::new("unshare").args(["--net", "--map-root-user", "true"]).output().is_ok_and(|o| o.status.success())
}
