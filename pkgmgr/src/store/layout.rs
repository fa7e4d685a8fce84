//! `oci:DIR`: an OCI image layout directory, read and written.
//!
//! Spec-conformant (`oci-layout`, `index.json`, `blobs/sha256/<hex>`); several packs share one
//! layout, each tag recorded in `index.json` with `org.opencontainers.image.ref.name` set to
//! `<name>:<tag>` (so `skopeo copy oci:DIR:hello:1.0.0 ...` finds it). `index.json` is replaced
//! atomically under a file lock, so concurrent writers never lose an entry.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};

use crate::atomic::write_atomic;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use oci_client::manifest::{ImageIndexEntry, OciImageIndex};

use super::{Blob, BlobData, BlobReader, RawManifest, Store, StoreLocation};
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result};
use aibox_schema::media_types::{OCI_INDEX, annotations::REF_NAME};

const LAYOUT_FILE: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// An OCI image layout directory.
pub struct OciLayout {
    root: PathBuf,
    location: StoreLocation,
}

impl OciLayout {
    /// Open a layout directory. It is created on the first write if it does not exist.
    pub fn open_or_create(root: &Path) -> Result<Self> {
        if root.exists() && !root.is_dir() {
            return Err(Error::Io {
                action: "cannot open OCI layout",
                path: root.to_owned(),
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        Ok(Self { root: root.to_owned(), location: StoreLocation::Layout(root.to_owned()) })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    fn ensure_layout(&self) -> Result<()> {
        fs::create_dir_all(self.root.join("blobs/sha256")).map_err(Error::io("cannot create", &self.root))?;
        let marker = self.root.join("oci-layout");
        if !marker.exists() {
            write_atomic(&marker, LAYOUT_FILE.as_bytes())?;
        }
        Ok(())
    }

    fn read_index(&self) -> Result<OciImageIndex> {
        let path = self.root.join("index.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                store: self.location.to_string(),
                reason: format!("index.json does not parse: {e}"),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(empty_index()),
            Err(e) => Err(Error::io("cannot read", path)(e)),
        }
    }

    fn tagged(&self, name: &str) -> Result<BTreeMap<String, ImageIndexEntry>> {
        Ok(tags_in_index(self.read_index()?, name))
    }

    fn read_manifest_blob(&self, digest: &Digest) -> Result<Option<RawManifest>> {
        let path = self.blob_path(digest);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot read", path)(e)),
        };
        let manifest = RawManifest::new(bytes);
        super::check_manifest_digest(&self.location, digest.as_str(), &manifest)?;
        Ok(Some(manifest))
    }
}

#[async_trait]
impl Store for OciLayout {
    fn location(&self) -> &StoreLocation {
        &self.location
    }

    async fn list_packs(&self) -> Result<Vec<String>> {
        Ok(packs_in_index(&self.read_index()?))
    }

    async fn list_tags(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.tagged(name)?.into_keys().collect())
    }

    async fn fetch_manifest(&self, name: &str, reference: &str) -> Result<Option<RawManifest>> {
        if let Ok(digest) = reference.parse::<Digest>() {
            return self.read_manifest_blob(&digest);
        }
        let Some(entry) = self.tagged(name)?.remove(reference) else { return Ok(None) };
        let digest: Digest = entry.digest.parse().map_err(|e| Error::Corrupt { store: self.location.to_string(), reason: e })?;
        let manifest = self.read_manifest_blob(&digest)?.ok_or_else(|| Error::Corrupt {
            store: self.location.to_string(),
            reason: format!("index.json names {digest} for {name}:{reference} but the blob is missing"),
        })?;
        let mut manifest = manifest;
        manifest.media_type = entry.media_type;
        Ok(Some(manifest))
    }

    async fn has_blob(&self, _name: &str, digest: &Digest) -> Result<bool> {
        Ok(self.blob_path(digest).is_file())
    }

    async fn open_blob(&self, name: &str, digest: &Digest, _size: Option<u64>) -> Result<BlobReader> {
        let path = self.blob_path(digest);
        match tokio::fs::File::open(&path).await {
            Ok(f) => Ok(Box::pin(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::NotFound { what: format!("blob {digest} of {name}"), store: self.location.to_string() })
            }
            Err(e) => Err(Error::io("cannot read", path)(e)),
        }
    }

    async fn push_blob(&self, _name: &str, blob: &Blob) -> Result<()> {
        self.ensure_layout()?;
        let target = self.blob_path(&blob.digest);
        let dir = target.parent().expect("blob path has a parent").to_owned();
        let blob = blob.clone();
        let location = self.location.to_string();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(Error::io("cannot write to", &dir))?;
            let mut writer = HashingWriter::new(io::BufWriter::new(tmp));
            match &blob.data {
                BlobData::Bytes(b) => writer.write_all(b).map_err(Error::io("cannot write to", &dir))?,
                BlobData::File(p) => {
                    let mut f = File::open(p).map_err(Error::io("cannot read", p))?;
                    io::copy(&mut f, &mut writer).map_err(Error::io("cannot copy", p))?;
                }
            }
            let (digest, size, inner) = writer.finish();
            if digest != blob.digest || size != blob.size {
                return Err(Error::Corrupt { store: location, reason: format!("blob {} arrived as {digest} ({size} bytes)", blob.digest) });
            }
            let tmp = inner.into_inner().map_err(|e| Error::io("cannot write to", &dir)(e.into_error()))?;
            crate::atomic::make_public(tmp.as_file(), &target)?;
            tmp.as_file().sync_all().map_err(Error::io("cannot sync", &dir))?;
            tmp.persist(&target).map_err(|e| Error::io("cannot write", &target)(e.error))?;
            Ok(())
        })
        .await
        .expect("blob writer task does not panic")
    }

    async fn push_blob_stream(&self, name: &str, digest: &Digest, size: u64, reader: BlobReader) -> Result<()> {
        self.ensure_layout()?;
        let target = self.blob_path(digest);
        let dir = target.parent().expect("blob path has a parent").to_owned();
        let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(Error::io("cannot write to", &dir))?;
        let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(Error::io("cannot open", tmp.path()))?);
        let mut verified = crate::digest::VerifyingReader::new(reader, digest.clone(), size);
        tokio::io::copy(&mut verified, &mut file).await.map_err(|e| Error::Corrupt { store: self.location.to_string(), reason: format!("blob {digest} of {name}: {e}") })?;
        file.sync_all().await.map_err(Error::io("cannot sync", &target))?;
        crate::atomic::make_public(tmp.as_file(), &target)?;
        tmp.persist(&target).map_err(|e| Error::io("cannot write", &target)(e.error))?;
        Ok(())
    }

    async fn push_manifest(&self, name: &str, tag: Option<&str>, manifest: &RawManifest) -> Result<()> {
        self.ensure_layout()?;
        let path = self.blob_path(&manifest.digest);
        if !path.exists() {
            write_atomic(&path, &manifest.bytes)?;
        }
        let lock_path = self.root.join("index.json.lock");
        let lock = File::create(&lock_path).map_err(Error::io("cannot create", &lock_path))?;
        lock.lock().map_err(Error::io("cannot lock", &lock_path))?;
        let mut index = self.read_index()?;
        let entry = index_entry(name, tag, manifest);
        let ref_name = |m: &ImageIndexEntry| m.annotations.as_ref().and_then(|a| a.get(REF_NAME)).cloned();
        match &entry.annotations {
            Some(_) => index.manifests.retain(|m| ref_name(m) != ref_name(&entry)),
            None if index.manifests.iter().any(|m| m.digest == entry.digest) => return Ok(()),
            None => {}
        }
        index.manifests.push(entry);
        index.manifests.sort_by(|a, b| (ref_name(a), &a.digest).cmp(&(ref_name(b), &b.digest)));
        let bytes = serde_json::to_vec(&index).expect("index serializes");
        write_atomic(&self.root.join("index.json"), &bytes)
    }
}

fn empty_index() -> OciImageIndex {
    OciImageIndex { schema_version: 2, media_type: Some(OCI_INDEX.to_owned()), manifests: Vec::new(), artifact_type: None, annotations: None }
}

/// The entries of an index tagged for pack `name` (`ref.name` = `<name>:<tag>`), by tag.
pub(super) fn tags_in_index(index: OciImageIndex, name: &str) -> BTreeMap<String, ImageIndexEntry> {
    let prefix = format!("{name}:");
    index
        .manifests
        .into_iter()
        .filter_map(|m| {
            let tag = m.annotations.as_ref()?.get(REF_NAME)?.strip_prefix(&prefix)?.to_owned();
            Some((tag, m))
        })
        .collect()
}

/// The pack names an index holds tags for.
pub(super) fn packs_in_index(index: &OciImageIndex) -> Vec<String> {
    let mut names: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|m| m.annotations.as_ref()?.get(REF_NAME)?.split_once(':').map(|(n, _)| n.to_owned()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The `index.json` entry of a manifest, tagged `<name>:<tag>` when a tag is given.
pub(super) fn index_entry(name: &str, tag: Option<&str>, manifest: &RawManifest) -> ImageIndexEntry {
    ImageIndexEntry {
        media_type: manifest.media_type.clone(),
        digest: manifest.digest.to_string(),
        size: i64::try_from(manifest.bytes.len()).expect("manifest size fits"),
        platform: None,
        annotations: tag.map(|t| BTreeMap::from([(REF_NAME.to_owned(), format!("{name}:{t}"))])),
        artifact_type: None,
    }
}
