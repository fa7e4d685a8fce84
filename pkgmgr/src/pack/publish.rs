//! Push a built pack into any store: blobs the store lacks, then the manifest under its version
//! tag. Signing is a separate step ([`crate::cosign::sign`]) so it works the same on packs
//! published elsewhere.

use serde::Serialize;

use super::BuiltPack;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::{self, Store};

/// What a push did.
#[derive(Debug, Serialize)]
pub struct PushOutcome {
    /// Pack name.
    pub name: String,
    /// Pack version.
    pub version: String,
    /// The tag written (`+` as `_`).
    pub tag: String,
    /// Manifest digest: what signatures and installs refer to.
    pub digest: Digest,
    /// The full reference, e.g. `docker://host/ns/hello:1.0.0`.
    pub reference: String,
    /// Blobs uploaded (the rest were already there).
    pub blobs_uploaded: u32,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// The same manifest was already published under this tag; nothing was written.
    pub unchanged: bool,
}

/// Push `built` into `store`. Refuses to move an existing version tag to different content
/// unless `force` (a published version is immutable, as in cargo).
pub async fn push(store: &dyn Store, built: &BuiltPack, force: bool) -> Result<PushOutcome> {
    let name = built.manifest.name.as_str();
    let tag = built.manifest.tag();
    let reference = store.location().pack_display(name, &tag);
    let mut outcome = PushOutcome {
        name: name.to_owned(),
        version: built.manifest.version.clone(),
        tag: tag.clone(),
        digest: built.oci.digest.clone(),
        reference: reference.clone(),
        blobs_uploaded: 0,
        bytes_uploaded: 0,
        unchanged: false,
    };
    if let Some(existing) = store.fetch_manifest(name, &tag).await? {
        if existing.digest == built.oci.digest {
            outcome.unchanged = true;
            return Ok(outcome);
        }
        if !force {
            return Err(Error::VersionExists { reference, existing: existing.digest.to_string(), new: built.oci.digest.to_string() });
        }
    }
    for blob in [&built.layer, &built.config] {
        if store::push_blob_if_missing(store, name, blob).await? {
            outcome.blobs_uploaded += 1;
            outcome.bytes_uploaded += blob.size;
        }
    }
    store.push_manifest(name, Some(&tag), &built.oci).await?;
    Ok(outcome)
}
