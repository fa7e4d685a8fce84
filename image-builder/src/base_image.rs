//! A base taken from an existing image: its manifest (the entry for this platform when it is
//! an index), its config, and its layers, reused as they are (mounted or copied, never
//! recompressed). When the aibox layer goes on top, the layers are read once to learn the
//! base's directories and account files, whiteouts applied.

use std::io::Read;
use std::sync::Arc;

use aibox_pkgmgr::PackRef;
use aibox_pkgmgr::digest::{Digest, VerifyingReader};
use aibox_pkgmgr::progress::{Reporter, ReportingReader};
use aibox_pkgmgr::store::{self, RawManifest, RegistryConfig, Store};
use aibox_schema::media_types as mt;
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use tokio_util::io::SyncIoBridge;

use crate::base_files::{ACCOUNT_FILES, BaseFiles, Kind, MAX_ACCOUNT_FILE, clean_path};
use crate::error::{Error, Result};
use crate::layer::Meta;

/// Docker's layer media types, and the OCI ones for the same bytes.
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Configs larger than this are refused.
const MAX_CONFIG: u64 = 16 << 20;

/// An existing image to build on.
pub struct SourceImage {
    /// Its store.
    pub store: Box<dyn Store>,
    /// Its repository name in that store.
    pub name: String,
    /// The reference as written.
    pub reference: String,
    /// Its manifest (the platform's).
    pub manifest: RawManifest,
    /// Its config.
    pub config: serde_json::Value,
    /// Its layers, with OCI media types, and their diff_ids.
    pub layers: Vec<(OciDescriptor, Digest)>,
}

/// Open `reference` and pick the manifest for `platform` (`linux/amd64`).
pub async fn open(reference: &str, registry: &RegistryConfig, platform: &str) -> Result<SourceImage> {
    let bad = |reason: String| Error::BaseImage { reference: reference.to_owned(), reason };
    let r = PackRef::parse(reference)?;
    let target = r.require_target()?.to_owned();
    let store = store::open(&r.store, registry).await?;
    let mut manifest = store::require_manifest(store.as_ref(), &r.name, &target).await?;
    if [mt::OCI_INDEX, mt::DOCKER_MANIFEST_LIST].contains(&manifest.media_type.as_str()) {
        let index: serde_json::Value = serde_json::from_slice(&manifest.bytes).map_err(|e| bad(format!("index does not parse: {e}")))?;
        let (os, arch) = platform.split_once('/').unwrap_or(("linux", platform));
        let digest = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["platform"]["os"] == os && m["platform"]["architecture"] == arch)
            .and_then(|m| m["digest"].as_str())
            .ok_or_else(|| bad(format!("its index has no {platform} image")))?
            .to_owned();
        manifest = store::require_manifest(store.as_ref(), &r.name, &digest).await?;
    }
    let parsed: OciImageManifest = serde_json::from_slice(&manifest.bytes).map_err(|e| bad(format!("manifest does not parse: {e}")))?;
    let config_digest: Digest = parsed.config.digest.parse().map_err(bad)?;
    let config_bytes = store::read_blob(store.as_ref(), &r.name, &config_digest, MAX_CONFIG).await?;
    let config: serde_json::Value = serde_json::from_slice(&config_bytes).map_err(|e| bad(format!("config does not parse: {e}")))?;
    let (os, arch) = platform.split_once('/').unwrap_or(("linux", platform));
    if config["os"] != os || config["architecture"] != arch {
        return Err(bad(format!("is {}/{}, not {platform} (the platform aibox and the packs are for)", config["os"], config["architecture"])));
    }
    if config["rootfs"]["type"] != "layers" || !config["rootfs"]["diff_ids"].is_array() {
        return Err(bad("its config has no rootfs.diff_ids list".into()));
    }
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d.as_str().unwrap_or_default().parse::<Digest>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("its config lists a diff_id that is not a sha256 digest: {e}")))?;
    if diff_ids.len() != parsed.layers.len() {
        return Err(bad(format!("its config lists {} diff_ids for {} layers", diff_ids.len(), parsed.layers.len())));
    }
    let mut layers = Vec::new();
    for (mut layer, diff_id) in parsed.layers.into_iter().zip(diff_ids) {
        layer.digest.parse::<Digest>().map_err(|e| bad(format!("layer {}: {e}", layer.digest)))?;
        layer.media_type = match layer.media_type.as_str() {
            DOCKER_LAYER_GZIP => mt::LAYER_TAR_GZIP.to_owned(),
            mt::LAYER_TAR_GZIP | mt::LAYER_TAR_ZSTD | mt::LAYER_TAR => layer.media_type,
            other => return Err(bad(format!("layer {} has media type {other}, which is not a tar layer", layer.digest))),
        };
        layers.push((layer, diff_id));
    }
    Ok(SourceImage { store, name: r.name, reference: reference.to_owned(), manifest, config, layers })
}

impl SourceImage {
    /// Read every layer (checked against its digest) into what the builder knows of a base.
    pub async fn files(&self, reporter: &Arc<dyn Reporter>) -> Result<BaseFiles> {
        let mut files = BaseFiles::default();
        for (layer, _) in &self.layers {
            let digest: Digest = layer.digest.parse().map_err(|e| Error::BaseImage { reference: self.reference.clone(), reason: e })?;
            let size = u64::try_from(layer.size).unwrap_or(0);
            let id = reporter.start("Reading", &format!("{} layer {}", self.name, aibox_pkgmgr::term::short(digest.as_str())), size);
            let reader = VerifyingReader::new(self.store.open_blob(&self.name, &digest, Some(size)).await?, digest.clone(), size);
            let reader = SyncIoBridge::new(ReportingReader::new(reader, reporter.clone(), id));
            let media_type = layer.media_type.clone();
            let reference = self.reference.clone();
            let result = tokio::task::spawn_blocking(move || apply_layer(reader, &media_type, files).map_err(|reason| Error::BaseImage { reference, reason: format!("layer {digest}: {reason}") }))
                .await
                .expect("layer reading does not panic");
            reporter.finish(id);
            files = result?;
        }
        Ok(files)
    }
}

fn apply_layer(reader: impl Read, media_type: &str, mut files: BaseFiles) -> Result<BaseFiles, String> {
    let mut reader = reader;
    let decoded: Box<dyn Read + '_> = match media_type {
        mt::LAYER_TAR_ZSTD => Box::new(zstd::stream::read::Decoder::new(&mut reader).map_err(|e| e.to_string())?),
        mt::LAYER_TAR_GZIP => Box::new(flate2::read::GzDecoder::new(&mut reader)),
        _ => Box::new(&mut reader),
    };
    let mut archive = tar::Archive::new(decoded);
    // A layer's whiteouts apply to the layers below it, not to its own entries: apply them first.
    let mut whiteouts = Vec::new();
    let mut added = Vec::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let Some(path) = clean_path(&entry.path_bytes())? else { continue };
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        if name == ".wh..wh..opq" {
            whiteouts.push((dir.to_owned(), true));
            continue;
        }
        if let Some(gone) = name.strip_prefix(".wh.") {
            whiteouts.push((if dir.is_empty() { gone.to_owned() } else { format!("{dir}/{gone}") }, false));
            continue;
        }
        let header = entry.header();
        let kind = header.entry_type();
        let meta = Meta { mode: header.mode().map_err(|e| e.to_string())? & 0o7777, uid: header.uid().map_err(|e| e.to_string())?, gid: header.gid().map_err(|e| e.to_string())? };
        let link = (kind == tar::EntryType::Symlink).then(|| entry.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default());
        let content = if ACCOUNT_FILES.contains(&path.as_str()) && kind == tar::EntryType::Regular && entry.size() <= MAX_ACCOUNT_FILE {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).map_err(|e| e.to_string())?;
            Some(buf)
        } else {
            None
        };
        added.push((path, Kind::of(kind), meta, content, link));
    }
    for (path, only_children) in whiteouts {
        files.remove(&path, only_children);
    }
    for (path, kind, meta, content, link) in added {
        files.add(&path, kind, meta, content, link);
    }
    drop(archive);
    // The digest is checked at the end of the stream: read what the tar did not.
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| e.to_string())?;
    Ok(files)
}
