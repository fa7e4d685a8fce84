//! Writing an `oci-archive:` (an air-gap bundle): an OCI image layout written straight into a
//! tar, blobs streamed in as members, `oci-layout` and `index.json` appended by
//! [`Store::finish`]. The tar is written beside the target and renamed into place only when
//! finished, so a bundle is either whole or absent. With a maximum size, the tar is cut into
//! parts `FILE.001`, `FILE.002`, ... (read back as one by [`super::OciArchive`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use oci_client::manifest::{ImageIndexEntry, OciImageIndex};

use super::{Blob, BlobData, BlobReader, RawManifest, Store, StoreLocation};
use crate::digest::Digest;
use crate::error::{Error, Result};
use aibox_schema::media_types::OCI_INDEX;

/// A new OCI archive being written.
pub struct OciArchiveWriter {
    location: StoreLocation,
    target: PathBuf,
    state: Mutex<Writing>,
}

type TarOut = tar::Builder<BufWriter<PartWriter>>;

struct Writing {
    tar: Option<TarOut>,
    blobs: HashSet<Digest>,
    manifests: HashMap<Digest, RawManifest>,
    /// `NAME:TAG` → entry, plus untagged manifests by digest.
    index: BTreeMap<String, ImageIndexEntry>,
}

impl OciArchiveWriter {
    /// Start a new archive at `target` (which must not exist), cut into parts of at most
    /// `max_part` bytes when given.
    pub fn create(target: &Path, max_part: Option<u64>) -> Result<Self> {
        let location = StoreLocation::Archive(target.to_owned());
        for existing in [target.to_owned(), super::archive::part_path(target, 1)] {
            if existing.exists() {
                return Err(Error::Exists { path: existing });
            }
        }
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let parts = PartWriter { dir, max: max_part, parts: Vec::new(), current: 0 };
        let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, parts));
        tar.mode(tar::HeaderMode::Deterministic);
        let state = Writing { tar: Some(tar), blobs: HashSet::new(), manifests: HashMap::new(), index: BTreeMap::new() };
        Ok(Self { location, target: target.to_owned(), state: Mutex::new(state) })
    }

    /// Add a file that is not part of the OCI layout (e.g. `aibox/keys/cosign.pub`).
    pub fn add_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let mut state = self.state.lock().expect("archive lock");
        let mut tar = state.tar.take().ok_or_else(|| Error::ReadOnlyStore(self.location.to_string()))?;
        let result = self.append(&mut tar, name, bytes.len() as u64, bytes);
        state.tar = Some(tar);
        result
    }

    fn append(&self, tar: &mut TarOut, name: &str, size: u64, data: impl std::io::Read) -> Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, data).map_err(Error::io("cannot write", &self.target))
    }
}

#[async_trait]
impl Store for OciArchiveWriter {
    fn location(&self) -> &StoreLocation {
        &self.location
    }

    async fn list_packs(&self) -> Result<Vec<String>> {
        let state = self.state.lock().expect("archive lock");
        let mut names: Vec<String> = state.index.keys().filter_map(|k| k.split_once(':').map(|(n, _)| n.to_owned())).collect();
        names.dedup();
        Ok(names)
    }

    async fn list_tags(&self, name: &str) -> Result<Vec<String>> {
        let prefix = format!("{name}:");
        Ok(self.state.lock().expect("archive lock").index.keys().filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned)).collect())
    }

    async fn fetch_manifest(&self, name: &str, reference: &str) -> Result<Option<RawManifest>> {
        let state = self.state.lock().expect("archive lock");
        let digest = match reference.parse::<Digest>() {
            Ok(d) => d,
            Err(_) => match state.index.get(&format!("{name}:{reference}")) {
                Some(e) => e.digest.parse().map_err(|e| Error::Corrupt { store: self.location.to_string(), reason: e })?,
                None => return Ok(None),
            },
        };
        Ok(state.manifests.get(&digest).cloned())
    }

    async fn has_blob(&self, _name: &str, digest: &Digest) -> Result<bool> {
        Ok(self.state.lock().expect("archive lock").blobs.contains(digest))
    }

    async fn open_blob(&self, name: &str, digest: &Digest, _size: Option<u64>) -> Result<BlobReader> {
        Err(Error::NotFound { what: format!("blob {digest} of {name} (the archive is still being written)"), store: self.location.to_string() })
    }

    async fn push_blob(&self, _name: &str, blob: &Blob) -> Result<()> {
        let mut state = self.state.lock().expect("archive lock");
        if state.blobs.contains(&blob.digest) {
            return Ok(());
        }
        let member = format!("blobs/sha256/{}", blob.digest.hex());
        let mut tar = state.tar.take().ok_or_else(|| Error::ReadOnlyStore(self.location.to_string()))?;
        let result = match &blob.data {
            BlobData::Bytes(b) => self.append(&mut tar, &member, blob.size, &b[..]),
            BlobData::File(p) => {
                let f = File::open(p).map_err(Error::io("cannot read", p))?;
                self.append(&mut tar, &member, blob.size, f)
            }
        };
        state.tar = Some(tar);
        result?;
        state.blobs.insert(blob.digest.clone());
        Ok(())
    }

    async fn push_blob_stream(&self, name: &str, digest: &Digest, size: u64, reader: BlobReader) -> Result<()> {
        let verified = crate::digest::VerifyingReader::new(reader, digest.clone(), size);
        // The tar writer is synchronous: stream into it on this worker, bridged.
        tokio::task::block_in_place(|| {
            let mut state = self.state.lock().expect("archive lock");
            if state.blobs.contains(digest) {
                return Ok(());
            }
            let mut tar = state.tar.take().ok_or_else(|| Error::ReadOnlyStore(self.location.to_string()))?;
            let member = format!("blobs/sha256/{}", digest.hex());
            let result = self.append(&mut tar, &member, size, tokio_util::io::SyncIoBridge::new(verified));
            // A failed append leaves a partial member: the archive is abandoned (never renamed).
            if result.is_ok() {
                state.tar = Some(tar);
                state.blobs.insert(digest.clone());
            }
            result.map_err(|e| match e {
                Error::Io { source, .. } if source.kind() == std::io::ErrorKind::InvalidData => {
                    Error::Corrupt { store: self.location.to_string(), reason: format!("blob {digest} of {name}: {source}") }
                }
                other => other,
            })
        })
    }

    async fn push_manifest(&self, name: &str, tag: Option<&str>, manifest: &RawManifest) -> Result<()> {
        self.push_blob(name, &Blob::from_bytes(manifest.bytes.clone())).await?;
        let mut state = self.state.lock().expect("archive lock");
        state.manifests.insert(manifest.digest.clone(), manifest.clone());
        let entry = super::layout::index_entry(name, tag, manifest);
        let key = tag.map_or_else(|| format!("@{}", manifest.digest), |t| format!("{name}:{t}"));
        state.index.insert(key, entry);
        Ok(())
    }

    async fn finish(&self) -> Result<()> {
        let mut state = self.state.lock().expect("archive lock");
        let Some(mut tar) = state.tar.take() else { return Ok(()) };
        let index = OciImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_owned()),
            manifests: state.index.values().cloned().collect(),
            artifact_type: None,
            annotations: None,
        };
        let index = serde_json::to_vec(&index).expect("index serializes");
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        self.append(&mut tar, "oci-layout", layout.len() as u64, &layout[..])?;
        self.append(&mut tar, "index.json", index.len() as u64, &index[..])?;
        let mut writer = tar.into_inner().map_err(Error::io("cannot write", &self.target))?;
        writer.flush().map_err(Error::io("cannot write", &self.target))?;
        let parts = writer.into_inner().map_err(|e| Error::io("cannot write", &self.target)(e.into_error()))?.parts;
        let single = parts.len() == 1;
        let dests: Vec<PathBuf> = (1..=parts.len()).map(|i| if single { self.target.clone() } else { super::archive::part_path(&self.target, i) }).collect();
        for (tmp, dest) in parts.iter().zip(&dests) {
            crate::atomic::make_public(tmp.as_file(), dest)?;
            tmp.as_file().sync_all().map_err(Error::io("cannot sync", dest))?;
        }
        // All parts or none: a failure part-way removes the parts already in place.
        for (i, (tmp, dest)) in parts.into_iter().zip(&dests).enumerate() {
            if let Err(e) = tmp.persist_noclobber(dest) {
                remove_bundle_files(&dests[..i]);
                return Err(Error::io("cannot write", dest)(e.error));
            }
        }
        Ok(())
    }
}

/// Writes a byte stream into temporary files of at most `max` bytes each.
struct PartWriter {
    dir: PathBuf,
    max: Option<u64>,
    parts: Vec<tempfile::NamedTempFile>,
    /// Bytes in the last part.
    current: u64,
}

impl Write for PartWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.parts.is_empty() || self.max.is_some_and(|m| self.current >= m) {
            self.parts.push(tempfile::Builder::new().prefix(".aibox-archive-").tempfile_in(&self.dir)?);
            self.current = 0;
        }
        let room = self.max.map_or(buf.len() as u64, |m| m - self.current);
        let n = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
        let written = self.parts.last_mut().expect("a part is open").write(&buf[..n])?;
        self.current += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.parts.last_mut() {
            Some(p) => p.flush(),
            None => Ok(()),
        }
    }
}

/// Remove the files of a bundle (after a failed write or check).
pub fn remove_bundle_files(files: &[PathBuf]) {
    for f in files {
        let _ = std::fs::remove_file(f);
    }
}
