//! Cosign signatures, byte-compatible with `cosign sign --key` / `cosign verify --key`.
//!
//! A signature is a simple-signing payload (`docker-manifest-digest` + `docker-reference`),
//! signed with the key, stored as a layer of an OCI manifest tagged `sha256-<hex>.sig` in the
//! pack's repository, with the base64 signature in the `dev.cosignproject.cosign/signature`
//! annotation. Further signatures are appended as further layers, as cosign does.

use std::collections::BTreeMap;

use base64::Engine as _;
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde::Serialize;
use sigstore::cosign::payload::SimpleSigning;
use sigstore::cosign::payload::simple_signing::{CRITICAL_TYPE_NAME, Critical, Identity, Image};

use super::keys::{PublicKey, SigningKey};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::{self, Blob, RawManifest, Store};
use aibox_schema::media_types::{COSIGN_SIGNATURE_ANNOTATION, COSIGN_SIMPLE_SIGNING, OCI_IMAGE_CONFIG, OCI_MANIFEST};

/// Payloads larger than this are not read (cosign's are a few hundred bytes).
const MAX_PAYLOAD: u64 = 1 << 20;

/// The simple-signing payload cosign signs, serialized as cosign does.
pub fn payload(docker_reference: &str, manifest_digest: &Digest) -> Vec<u8> {
    let payload = SimpleSigning {
        critical: Critical {
            identity: Identity { docker_reference: docker_reference.to_owned() },
            image: Image { docker_manifest_digest: manifest_digest.to_string() },
            type_name: CRITICAL_TYPE_NAME.to_owned(),
        },
        optional: None,
    };
    serde_json::to_vec(&payload).expect("payload serializes")
}

/// What signing did.
#[derive(Debug, Serialize)]
pub struct SignOutcome {
    /// The signed manifest.
    pub digest: Digest,
    /// The tag the signature manifest lives under.
    pub signature_tag: String,
    /// Digest of the signature manifest.
    pub signature_manifest: Digest,
    /// False when a signature by this key was already there (nothing written).
    pub added: bool,
    /// Fingerprint of the signing key.
    pub key: String,
}

/// Sign the manifest `digest` of pack `name` in `store`.
pub async fn sign(store: &dyn Store, name: &str, digest: &Digest, key: &SigningKey) -> Result<SignOutcome> {
    let docker_reference = store.location().docker_reference(name);
    let tag = digest.signature_tag();
    let public = PublicKey::from_pem(key.public_pem.as_bytes(), "signing key").map_err(Error::Missing)?;
    let existing = store.fetch_manifest(name, &tag).await?;
    let mut layers = Vec::new();
    if let Some(existing) = &existing {
        let manifest = existing.image_manifest(store.location())?;
        for layer in &manifest.layers {
            if let Some(sig) = layer.annotations.as_ref().and_then(|a| a.get(COSIGN_SIGNATURE_ANNOTATION))
                && let Ok(layer_digest) = layer.digest.parse::<Digest>()
                && let Ok(body) = store::read_blob(store, name, &layer_digest, MAX_PAYLOAD).await
                && public.verifies(sig, &body)
                && payload_digest(&body).as_ref() == Some(digest)
            {
                return Ok(SignOutcome { digest: digest.clone(), signature_tag: tag, signature_manifest: existing.digest.clone(), added: false, key: key.fingerprint.clone() });
            }
        }
        layers = manifest.layers;
    }

    let body = payload(&docker_reference, digest);
    let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(&body)?);
    let payload_blob = Blob::from_bytes(body);
    layers.push(OciDescriptor {
        media_type: COSIGN_SIMPLE_SIGNING.to_owned(),
        digest: payload_blob.digest.to_string(),
        size: i64::try_from(payload_blob.size).expect("payload size fits"),
        annotations: Some(BTreeMap::from([(COSIGN_SIGNATURE_ANNOTATION.to_owned(), signature)])),
        ..OciDescriptor::default()
    });
    let config = Blob::from_bytes(signature_config(&layers));
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        config: OciDescriptor {
            media_type: OCI_IMAGE_CONFIG.to_owned(),
            digest: config.digest.to_string(),
            size: i64::try_from(config.size).expect("config size fits"),
            ..OciDescriptor::default()
        },
        layers,
        subject: None,
        artifact_type: None,
        annotations: None,
    };
    let raw = RawManifest::new(serde_json::to_vec(&manifest).expect("manifest serializes"));
    store::push_blob_if_missing(store, name, &payload_blob).await?;
    store::push_blob_if_missing(store, name, &config).await?;
    store.push_manifest(name, Some(&tag), &raw).await?;
    Ok(SignOutcome { digest: digest.clone(), signature_tag: tag, signature_manifest: raw.digest, added: true, key: key.fingerprint.clone() })
}

/// The image config go-containerregistry writes for cosign's signature image: empty but for
/// one `diff_id` and one history entry per payload layer.
fn signature_config(layers: &[OciDescriptor]) -> Vec<u8> {
    const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
    let config = serde_json::json!({
        "architecture": "",
        "created": ZERO_TIME,
        "history": layers.iter().map(|_| serde_json::json!({"created": ZERO_TIME})).collect::<Vec<_>>(),
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()},
        "config": {},
    });
    serde_json::to_vec(&config).expect("config serializes")
}

fn payload_digest(body: &[u8]) -> Option<Digest> {
    let p: SimpleSigning = serde_json::from_slice(body).ok()?;
    p.critical.image.docker_manifest_digest.parse().ok()
}

/// A signature that verified.
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedSignature {
    /// Fingerprint of the key that verified it.
    pub key: String,
    /// Where that key came from.
    pub key_source: String,
    /// The payload's `docker-reference`: where the pack was signed (differs for mirrors).
    pub docker_reference: String,
    /// The payload blob digest.
    pub payload: Digest,
}

/// One signature found on a pack, verified or not (for `inspect`).
#[derive(Debug, Clone, Serialize)]
pub struct FoundSignature {
    /// The payload blob digest.
    pub payload: String,
    /// The payload's `docker-reference`, when it parses.
    pub docker_reference: Option<String>,
    /// The payload's `docker-manifest-digest`, when it parses.
    pub manifest_digest: Option<String>,
    /// Fingerprint of the given key that verifies it, if any.
    pub verified_by: Option<String>,
    /// Why it does not verify, when keys were given and none does.
    pub problem: Option<String>,
}

/// Check every signature on manifest `digest` of `name` against `keys`; returns each one.
pub async fn signatures(store: &dyn Store, name: &str, digest: &Digest, keys: &[PublicKey]) -> Result<Option<Vec<FoundSignature>>> {
    let Some(sig_manifest) = store.fetch_manifest(name, &digest.signature_tag()).await? else {
        return Ok(None);
    };
    let manifest = sig_manifest.image_manifest(store.location())?;
    let mut found = Vec::new();
    for layer in manifest.layers.iter().filter(|l| l.media_type == COSIGN_SIMPLE_SIGNING) {
        found.push(check_layer(store, name, digest, layer, keys).await);
    }
    Ok(Some(found))
}

async fn check_layer(store: &dyn Store, name: &str, digest: &Digest, layer: &OciDescriptor, keys: &[PublicKey]) -> FoundSignature {
    let mut sig = FoundSignature { payload: layer.digest.clone(), docker_reference: None, manifest_digest: None, verified_by: None, problem: None };
    let layer_digest = match layer.digest.parse::<Digest>() {
        Ok(d) => d,
        Err(e) => {
            sig.problem = Some(e);
            return sig;
        }
    };
    let body = match store::read_blob(store, name, &layer_digest, MAX_PAYLOAD).await {
        Ok(b) => b,
        Err(e) => {
            sig.problem = Some(format!("payload {layer_digest}: {e}"));
            return sig;
        }
    };
    let parsed: Option<SimpleSigning> = serde_json::from_slice(&body).ok();
    sig.docker_reference = parsed.as_ref().map(|p| p.critical.identity.docker_reference.clone());
    sig.manifest_digest = parsed.as_ref().map(|p| p.critical.image.docker_manifest_digest.clone());
    if keys.is_empty() {
        return sig;
    }
    let Some(signature) = layer.annotations.as_ref().and_then(|a| a.get(COSIGN_SIGNATURE_ANNOTATION)) else {
        sig.problem = Some(format!("payload {layer_digest} has no {COSIGN_SIGNATURE_ANNOTATION} annotation"));
        return sig;
    };
    let Some(key) = keys.iter().find(|k| k.verifies(signature, &body)) else {
        sig.problem = Some(format!("signature over payload {layer_digest} does not verify with {}", keys.iter().map(|k| k.source.as_str()).collect::<Vec<_>>().join(", ")));
        return sig;
    };
    match &parsed {
        None => sig.problem = Some(format!("payload {layer_digest} is not a Cosign simple-signing document")),
        Some(p) if p.critical.type_name != CRITICAL_TYPE_NAME => sig.problem = Some(format!("payload type `{}` is not a container image signature", p.critical.type_name)),
        Some(p) if p.critical.image.docker_manifest_digest != digest.as_str() => {
            sig.problem = Some(format!("signature is for manifest {}, not {digest}", p.critical.image.docker_manifest_digest));
        }
        Some(_) => sig.verified_by = Some(key.fingerprint.clone()),
    }
    sig
}

/// Verify that manifest `digest` of `name` carries a valid signature by one of `keys`.
pub async fn verify(store: &dyn Store, name: &str, digest: &Digest, keys: &[PublicKey]) -> Result<Vec<VerifiedSignature>> {
    let reference = store.location().pack_display(name, digest.as_str());
    let Some(found) = signatures(store, name, digest, keys).await? else {
        return Err(Error::Unsigned { reference, digest: digest.to_string() });
    };
    if found.is_empty() {
        return Err(Error::Unsigned { reference, digest: digest.to_string() });
    }
    let verified: Vec<VerifiedSignature> = found
        .iter()
        .filter_map(|s| {
            let fingerprint = s.verified_by.clone()?;
            let key = keys.iter().find(|k| k.fingerprint == fingerprint)?;
            Some(VerifiedSignature {
                key: fingerprint,
                key_source: key.source.clone(),
                docker_reference: s.docker_reference.clone().unwrap_or_default(),
                payload: s.payload.parse().ok()?,
            })
        })
        .collect();
    if verified.is_empty() {
        return Err(Error::SignatureInvalid { reference, digest: digest.to_string(), reasons: found.into_iter().filter_map(|s| s.problem).collect() });
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_matches_cosign_bytes() {
        let digest: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse().unwrap();
        let body = String::from_utf8(payload("127.0.0.1:5000/toolpacks/hello", &digest)).unwrap();
        assert_eq!(
            body,
            r#"{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/toolpacks/hello"},"image":{"docker-manifest-digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},"type":"cosign container image signature"},"optional":null}"#
        );
    }
}
