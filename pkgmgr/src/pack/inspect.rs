//! What a store holds for one pack version: manifest, digests, the pack manifest, signatures.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cosign::{self, FoundSignature, PublicKey};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::{self, Store};

/// Configs larger than this are not read.
const MAX_CONFIG: u64 = 4 << 20;

/// One blob of the manifest.
#[derive(Debug, Serialize)]
pub struct BlobInfo {
    /// Media type.
    pub media_type: String,
    /// Digest.
    pub digest: String,
    /// Size in bytes.
    pub size: i64,
}

/// The result of `aibox pack inspect`.
#[derive(Debug, Serialize)]
pub struct Inspection {
    /// As given.
    pub reference: String,
    /// Manifest digest.
    pub digest: Digest,
    /// Manifest media type.
    pub media_type: String,
    /// `artifactType`.
    pub artifact_type: Option<String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// The config blob.
    pub config: BlobInfo,
    /// The layers.
    pub layers: Vec<BlobInfo>,
    /// The pack manifest (config blob), when it is an aibox pack.
    pub pack: Option<serde_json::Value>,
    /// Cosign signatures found (checked against the given keys, if any).
    pub signatures: Vec<FoundSignature>,
}

/// Inspect pack `name` at `target` (tag or digest) in `store`; signatures are checked against `keys`.
pub async fn inspect(store: &dyn Store, name: &str, target: &str, keys: &[PublicKey]) -> Result<Inspection> {
    let raw = store::require_manifest(store, name, target).await?;
    let manifest = raw.image_manifest(store.location())?;
    let config_digest: Digest = manifest.config.digest.parse().map_err(|e| Error::Corrupt { store: store.location().to_string(), reason: e })?;
    let pack = if manifest.config.media_type.starts_with("application/vnd.aibox.") {
        let bytes = store::read_blob(store, name, &config_digest, MAX_CONFIG).await?;
        Some(serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt { store: store.location().to_string(), reason: format!("pack config {config_digest}: {e}") })?)
    } else {
        None
    };
    let signatures = cosign::signatures(store, name, &raw.digest, keys).await?.unwrap_or_default();
    let info = |d: &oci_client::manifest::OciDescriptor| BlobInfo { media_type: d.media_type.clone(), digest: d.digest.clone(), size: d.size };
    Ok(Inspection {
        reference: store.location().pack_display(name, target),
        digest: raw.digest.clone(),
        media_type: raw.media_type.clone(),
        artifact_type: manifest.artifact_type.clone(),
        annotations: manifest.annotations.clone().unwrap_or_default(),
        config: info(&manifest.config),
        layers: manifest.layers.iter().map(info).collect(),
        pack,
        signatures,
    })
}
