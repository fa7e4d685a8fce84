//! Air-gap bundles: an `oci-archive:` holding packs, their dependencies and their Cosign
//! signatures, with an index whose tags let `java@21` resolve offline. Made and loaded with
//! [`crate::copy`]; this module inspects and verifies them, entirely offline.

use serde::Serialize;
use tokio::io::AsyncReadExt;

use crate::cosign::{self, PublicKey};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::{self, Store};

/// One pack version in a bundle.
#[derive(Debug, Clone, Serialize)]
pub struct BundledPack {
    /// Pack name.
    pub name: String,
    /// Tag (version).
    pub tag: String,
    /// Manifest digest.
    pub digest: Digest,
    /// Bytes of its blobs (config and layers).
    pub size: u64,
    /// Signature layers found.
    pub signatures: usize,
    /// Key fingerprint that verified it (verify only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<String>,
}

/// Every tagged pack version in `store`, with sizes and signature counts.
pub async fn inspect(store: &dyn Store) -> Result<Vec<BundledPack>> {
    let mut packs = Vec::new();
    for name in store.list_packs().await? {
        for tag in store.list_tags(&name).await? {
            if tag.ends_with(".sig") {
                continue;
            }
            let raw = store::require_manifest(store, &name, &tag).await?;
            let manifest = raw.image_manifest(store.location())?;
            let size = std::iter::once(&manifest.config).chain(&manifest.layers).map(|d| u64::try_from(d.size).unwrap_or(0)).sum();
            let signatures = cosign::signatures(store, &name, &raw.digest, &[]).await?.map_or(0, |s| s.len());
            packs.push(BundledPack { name: name.clone(), tag, digest: raw.digest, size, signatures, verified_by: None });
        }
    }
    Ok(packs)
}

/// Check every pack in `store`: a valid signature by one of `keys`, and every blob's digest.
/// Fails on the first pack that does not verify, naming it.
pub async fn verify(store: &dyn Store, keys: &[PublicKey]) -> Result<Vec<BundledPack>> {
    let mut packs = inspect(store).await?;
    for pack in &mut packs {
        let verified = cosign::verify(store, &pack.name, &pack.digest, keys).await?;
        pack.verified_by = Some(verified[0].key.clone());
        let raw = store::require_manifest(store, &pack.name, pack.digest.as_str()).await?;
        let manifest = raw.image_manifest(store.location())?;
        for desc in std::iter::once(&manifest.config).chain(&manifest.layers) {
            let digest: Digest = desc.digest.parse().map_err(|e| Error::Corrupt { store: store.location().to_string(), reason: e })?;
            check_blob(store, &pack.name, &digest, u64::try_from(desc.size).unwrap_or(0)).await?;
        }
        // The tag must name what the signed manifest holds (a swapped index entry is caught).
        let pack_manifest = crate::resolve::read_pack_manifest(store, &pack.name, &pack.tag, &manifest).await?;
        if pack_manifest.tag() != pack.tag {
            return Err(Error::Corrupt {
                store: store.location().to_string(),
                reason: format!("{}:{} holds pack {} {} (a swapped manifest)", pack.name, pack.tag, pack_manifest.name, pack_manifest.version),
            });
        }
    }
    Ok(packs)
}

async fn check_blob(store: &dyn Store, name: &str, digest: &Digest, size: u64) -> Result<()> {
    let mut reader = store.open_blob(name, digest, Some(size)).await?;
    let mut hashing = crate::digest::HashingWriter::new(std::io::sink());
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).await.map_err(|e| Error::Corrupt { store: store.location().to_string(), reason: format!("reading {digest} of {name}: {e}") })?;
        if n == 0 {
            break;
        }
        std::io::Write::write_all(&mut hashing, &buf[..n]).expect("sink accepts");
    }
    let (actual, read, _) = hashing.finish();
    if actual != *digest || read != size {
        return Err(Error::Corrupt { store: store.location().to_string(), reason: format!("blob {digest} of {name} holds {actual} ({read} bytes): tampered or damaged") });
    }
    Ok(())
}
