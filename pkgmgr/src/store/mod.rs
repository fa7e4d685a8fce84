//! Every place a pack can live is an OCI store: a registry (`docker://`), an OCI image layout
//! directory (`oci:`), or a tar of one (`oci-archive:`). Publish, install, bundle and the image
//! builder are written once against [`Store`].
//!
//! Pack `<name>` lives in repository `<store>/<name>`; its tags are its versions.

mod archive;
mod archive_writer;
mod layout;
mod registry;
pub mod registry_config;
pub mod retry;

use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

pub use archive::OciArchive;
pub use archive_writer::{OciArchiveWriter, remove_bundle_files};
pub use layout::OciLayout;
pub use registry::Registry;
pub use registry_config::RegistryConfig;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Where a store is, as users write it (skopeo / containers-image transport names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// `docker://HOST[:PORT]/NAMESPACE` (also written without the scheme).
    Registry {
        /// `host[:port]`.
        registry: String,
        /// Repository prefix; may be empty.
        namespace: String,
    },
    /// `oci:DIR`: an OCI image layout directory.
    Layout(PathBuf),
    /// `oci-archive:FILE`: a tar of an OCI image layout (an air-gap bundle).
    Archive(PathBuf),
}

impl StoreLocation {
    /// Parse `docker://...`, `oci:...`, `oci-archive:...`, or a scheme-less registry namespace.
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(rest) = s.strip_prefix("docker://") {
            return Self::registry(rest, s);
        }
        if let Some(path) = s.strip_prefix("oci-archive:") {
            return nonempty_path(path, s).map(Self::Archive);
        }
        if let Some(path) = s.strip_prefix("oci:") {
            return nonempty_path(path, s).map(Self::Layout);
        }
        if s.contains("://") || s.split_once(':').is_some_and(|(scheme, _)| !scheme.contains('.') && !scheme.contains('/') && scheme.chars().all(|c| c.is_ascii_alphabetic()) && scheme != "localhost") {
            return Err(Error::UnknownStore(s.to_owned()));
        }
        Self::registry(s, s)
    }

    fn registry(rest: &str, original: &str) -> Result<Self> {
        let rest = rest.trim_end_matches('/');
        let (registry, namespace) = rest.split_once('/').unwrap_or((rest, ""));
        if registry.is_empty() || registry.contains(char::is_whitespace) {
            return Err(Error::UnknownStore(original.to_owned()));
        }
        if registry.contains('@') {
            return Err(Error::CredentialsInStore(crate::secrets::redact(original).into_owned()));
        }
        Ok(Self::Registry { registry: registry.to_owned(), namespace: namespace.to_owned() })
    }

    /// The repository path of pack `name` inside a registry store (`namespace/name`).
    pub fn repository(&self, name: &str) -> String {
        match self {
            Self::Registry { namespace, .. } if !namespace.is_empty() => format!("{namespace}/{name}"),
            _ => name.to_owned(),
        }
    }

    /// How the pack's origin is named in a Cosign payload's `docker-reference`.
    pub fn docker_reference(&self, name: &str) -> String {
        match self {
            Self::Registry { registry, .. } => format!("{registry}/{}", self.repository(name)),
            Self::Layout(_) | Self::Archive(_) => name.to_owned(),
        }
    }

    /// A reference to one pack in this store, as users write it.
    pub fn pack_display(&self, name: &str, target: &str) -> String {
        let sep = if target.starts_with("sha256:") { '@' } else { ':' };
        match self {
            Self::Registry { .. } => format!("{self}/{name}{sep}{target}"),
            Self::Layout(_) | Self::Archive(_) => format!("{self}:{name}{sep}{target}"),
        }
    }
}

fn nonempty_path(path: &str, original: &str) -> Result<PathBuf> {
    if path.is_empty() { Err(Error::UnknownStore(original.to_owned())) } else { Ok(PathBuf::from(path)) }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Registry { registry, namespace } if namespace.is_empty() => write!(f, "docker://{registry}"),
            Self::Registry { registry, namespace } => write!(f, "docker://{registry}/{namespace}"),
            Self::Layout(p) => write!(f, "oci:{}", p.display()),
            Self::Archive(p) => write!(f, "oci-archive:{}", p.display()),
        }
    }
}

/// A manifest as stored: its exact bytes, media type and digest.
#[derive(Debug, Clone)]
pub struct RawManifest {
    /// The exact bytes (the digest covers these).
    pub bytes: Bytes,
    /// `mediaType` (from the body, or the store's record of it).
    pub media_type: String,
    /// sha256 of `bytes`.
    pub digest: Digest,
}

impl RawManifest {
    /// Wrap manifest bytes, reading the media type from the JSON.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| aibox_schema::media_types::OCI_MANIFEST.to_owned());
        let digest = Digest::of(&bytes);
        Self { bytes, media_type, digest }
    }

    /// Parse as an OCI image manifest.
    pub fn image_manifest(&self, store: &StoreLocation) -> Result<oci_client::manifest::OciImageManifest> {
        serde_json::from_slice(&self.bytes).map_err(|e| Error::Corrupt {
            store: store.to_string(),
            reason: format!("manifest {} is not an OCI image manifest: {e}", self.digest),
        })
    }
}

/// A blob to push: its digest, size, and where its bytes are.
#[derive(Debug, Clone)]
pub struct Blob {
    /// sha256 of the content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// The content.
    pub data: BlobData,
}

/// Where a blob's bytes are.
#[derive(Debug, Clone)]
pub enum BlobData {
    /// In memory (configs, small payloads).
    Bytes(Bytes),
    /// In a file (layers), streamed.
    File(PathBuf),
}

impl Blob {
    /// A blob held in memory.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self { digest: Digest::of(&bytes), size: bytes.len() as u64, data: BlobData::Bytes(bytes) }
    }
}

/// A stream of blob bytes. Callers check the digest (see [`read_blob`]).
pub type BlobReader = Pin<Box<dyn AsyncRead + Send>>;

/// One interface over registries, layout directories and archives.
#[async_trait]
pub trait Store: Send + Sync {
    /// Where this store is.
    fn location(&self) -> &StoreLocation;

    /// The packs (repositories) this store holds, sorted.
    async fn list_packs(&self) -> Result<Vec<String>>;

    /// The tags of pack `name` (empty when the pack does not exist).
    async fn list_tags(&self, name: &str) -> Result<Vec<String>>;

    /// The manifest of pack `name` at a tag or a digest; `None` when there is none.
    async fn fetch_manifest(&self, name: &str, reference: &str) -> Result<Option<RawManifest>>;

    /// Whether the store already holds a blob (so a push can skip it).
    async fn has_blob(&self, name: &str, digest: &Digest) -> Result<bool>;

    /// Stream a blob's bytes (`size`, when the caller knows it from a descriptor, lets a
    /// download that stops short resume). The caller verifies the digest while reading.
    async fn open_blob(&self, name: &str, digest: &Digest, size: Option<u64>) -> Result<BlobReader>;

    /// Store a blob (skipped by callers when [`Store::has_blob`] says it is there).
    async fn push_blob(&self, name: &str, blob: &Blob) -> Result<()>;

    /// Store a blob streamed from `reader` (`size` bytes with digest `digest`), never holding
    /// it whole. The default spools it to a temporary file and calls [`Store::push_blob`].
    async fn push_blob_stream(&self, name: &str, digest: &Digest, size: u64, mut reader: BlobReader) -> Result<()> {
        let tmp = tempfile::NamedTempFile::new().map_err(Error::io("cannot create a temporary file in", std::env::temp_dir()))?;
        let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(Error::io("cannot open", tmp.path()))?);
        tokio::io::copy(&mut reader, &mut file).await.map_err(|e| Error::Corrupt { store: self.location().to_string(), reason: format!("blob {digest} of {name}: {e}") })?;
        self.push_blob(name, &Blob { digest: digest.clone(), size, data: BlobData::File(tmp.path().to_owned()) }).await
    }

    /// Store a manifest, by digest and, when `tag` is given, under that tag.
    async fn push_manifest(&self, name: &str, tag: Option<&str>, manifest: &RawManifest) -> Result<()>;

    /// Make a blob that `from` (another repository of this same registry) holds under
    /// `from_name` available to `name` without sending it (a cross-repository mount). Returns
    /// whether it did; stores that cannot, say no and the caller sends the blob.
    async fn mount_blob(&self, name: &str, digest: &Digest, from: &StoreLocation, from_name: &str) -> Result<bool> {
        let _ = (name, digest, from, from_name);
        Ok(false)
    }

    /// Complete what was written (an archive writes its index and moves into place).
    async fn finish(&self) -> Result<()> {
        Ok(())
    }
}

/// Open the store at `location` to read from it.
pub async fn open(location: &StoreLocation, config: &RegistryConfig) -> Result<Box<dyn Store>> {
    Ok(match location {
        StoreLocation::Registry { .. } => Box::new(Registry::connect(location.clone(), config).await?),
        StoreLocation::Layout(path) => Box::new(OciLayout::open_or_create(path)?),
        StoreLocation::Archive(path) => Box::new(OciArchive::open(path)?),
    })
}

/// Open the store at `location` to write to it. An archive that does not exist yet is created
/// (call [`Store::finish`] when done); an existing archive is read-only.
pub async fn open_for_write(location: &StoreLocation, config: &RegistryConfig) -> Result<Box<dyn Store>> {
    match location {
        StoreLocation::Archive(path) if !path.exists() && !archive::part_path(path, 1).exists() => Ok(Box::new(OciArchiveWriter::create(path, None)?)),
        _ => open(location, config).await,
    }
}

/// Read a whole (small) blob and check it against its digest and an upper size bound.
pub async fn read_blob(store: &dyn Store, name: &str, digest: &Digest, max: u64) -> Result<Bytes> {
    let reader = store.open_blob(name, digest, None).await?;
    let mut buf = Vec::new();
    reader.take(max + 1).read_to_end(&mut buf).await.map_err(|e| Error::Corrupt {
        store: store.location().to_string(),
        reason: format!("reading blob {digest}: {e}"),
    })?;
    if buf.len() as u64 > max {
        return Err(Error::Corrupt { store: store.location().to_string(), reason: format!("blob {digest} is larger than {max} bytes") });
    }
    let actual = Digest::of(&buf);
    if actual != *digest {
        return Err(Error::Corrupt {
            store: store.location().to_string(),
            reason: format!("blob {digest} has content with digest {actual} (tampered or damaged)"),
        });
    }
    Ok(buf.into())
}

/// Push a blob unless the store already has it. Returns whether bytes were sent.
pub async fn push_blob_if_missing(store: &dyn Store, name: &str, blob: &Blob) -> Result<bool> {
    if store.has_blob(name, &blob.digest).await? {
        return Ok(false);
    }
    store.push_blob(name, blob).await?;
    Ok(true)
}

/// Resolve a tag or digest to a manifest, or fail with "not found".
pub async fn require_manifest(store: &dyn Store, name: &str, reference: &str) -> Result<RawManifest> {
    store.fetch_manifest(name, reference).await?.ok_or_else(|| Error::NotFound {
        what: format!("{name}:{reference}"),
        store: store.location().to_string(),
    })
}

/// Check that manifest bytes served for `reference` match it when it is a digest.
pub(crate) fn check_manifest_digest(location: &StoreLocation, reference: &str, manifest: &RawManifest) -> Result<()> {
    if let Ok(expected) = reference.parse::<Digest>()
        && expected != manifest.digest
    {
        return Err(Error::Corrupt {
            store: location.to_string(),
            reason: format!("manifest asked for by {expected} has digest {} (tampered or damaged)", manifest.digest),
        });
    }
    Ok(())
}

/// Whether a path looks like an OCI image layout (has `oci-layout`).
pub fn is_layout_dir(path: &Path) -> bool {
    path.join("oci-layout").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            StoreLocation::parse("docker://127.0.0.1:5000/toolpacks").unwrap(),
            StoreLocation::Registry { registry: "127.0.0.1:5000".into(), namespace: "toolpacks".into() }
        );
        assert_eq!(
            StoreLocation::parse("harbor.internal/team/toolpacks").unwrap(),
            StoreLocation::Registry { registry: "harbor.internal".into(), namespace: "team/toolpacks".into() }
        );
        assert_eq!(StoreLocation::parse("oci:./out").unwrap(), StoreLocation::Layout("./out".into()));
        assert_eq!(StoreLocation::parse("oci-archive:/m/b.tar").unwrap(), StoreLocation::Archive("/m/b.tar".into()));
        for bad in ["s3://bucket/x", "ftp:foo", "oci:", "docker://"] {
            assert!(matches!(StoreLocation::parse(bad), Err(Error::UnknownStore(_))), "{bad}");
        }
        let l = StoreLocation::parse("docker://r:5000/ns").unwrap();
        assert_eq!(l.repository("hello"), "ns/hello");
        assert_eq!(l.docker_reference("hello"), "r:5000/ns/hello");
        assert_eq!(l.pack_display("hello", "1.0.0"), "docker://r:5000/ns/hello:1.0.0");
    }
}
