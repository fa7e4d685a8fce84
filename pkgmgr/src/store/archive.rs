//! `oci-archive:FILE`: a tar of an OCI image layout (an air-gap bundle), read in place.
//!
//! Opening indexes the tar's members once (name → offset and size); blobs are then streamed
//! straight out of the tar with a seek, never unpacked to a temporary directory.
//!
//! A bundle split across media (`bundle create --max-size`) is the same tar cut into parts
//! `FILE.001`, `FILE.002`, ...: when `FILE` does not exist but `FILE.001` does, the parts are
//! read as one tar (and `cat FILE.* > FILE` rebuilds it for other tools).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use oci_client::manifest::OciImageIndex;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::layout::tags_in_index;
use super::{Blob, BlobReader, RawManifest, Store, StoreLocation};
use crate::digest::Digest;
use crate::error::{Error, Result};

/// A read-only OCI layout inside a tar file (or its parts).
pub struct OciArchive {
    /// The files the tar is made of, with their logical start offset and length.
    parts: Vec<(PathBuf, u64, u64)>,
    location: StoreLocation,
    /// Member name (without a leading `./`) → (offset of the content, size).
    members: HashMap<String, (u64, u64)>,
}

impl OciArchive {
    /// Open and index an archive.
    pub fn open(path: &Path) -> Result<Self> {
        let location = StoreLocation::Archive(path.to_owned());
        let parts = parts_of(path)?;
        let mut whole: Box<dyn Read> = Box::new(io::empty());
        for (part, _, _) in &parts {
            whole = Box::new(whole.chain(File::open(part).map_err(Error::io("cannot open OCI archive", part))?));
        }
        let mut archive = tar::Archive::new(io::BufReader::with_capacity(1 << 16, whole));
        let corrupt = |e: io::Error| Error::Corrupt { store: location.to_string(), reason: format!("not a readable tar: {e}") };
        let mut members = HashMap::new();
        for entry in archive.entries().map_err(corrupt)? {
            let entry = entry.map_err(corrupt)?;
            if entry.header().entry_type().is_file() {
                let name = entry.path().map_err(corrupt)?.to_string_lossy().trim_start_matches("./").to_owned();
                members.insert(name, (entry.raw_file_position(), entry.size()));
            }
        }
        if !members.contains_key("oci-layout") || !members.contains_key("index.json") {
            return Err(Error::Corrupt { store: location.to_string(), reason: "not an OCI image layout archive (no oci-layout or index.json)".into() });
        }
        Ok(Self { parts, location, members })
    }

    /// The files this archive is read from (one, or the parts of a split bundle).
    pub fn files(&self) -> Vec<PathBuf> {
        self.parts.iter().map(|(p, _, _)| p.clone()).collect()
    }

    /// The pieces of the byte range `[offset, offset + size)`: (file, offset in it, length).
    fn segments(&self, offset: u64, size: u64) -> Vec<(PathBuf, u64, u64)> {
        let end = offset + size;
        self.parts
            .iter()
            .filter(|(_, start, len)| *start < end && start + len > offset)
            .map(|(p, start, len)| {
                let from = offset.max(*start);
                let to = end.min(start + len);
                (p.clone(), from - start, to - from)
            })
            .collect()
    }

    fn read_member(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>> {
        let Some(&(offset, size)) = self.members.get(name) else { return Ok(None) };
        if size > max {
            return Err(Error::Corrupt { store: self.location.to_string(), reason: format!("{name} is larger than {max} bytes") });
        }
        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        for (part, at, len) in self.segments(offset, size) {
            let mut file = File::open(&part).map_err(Error::io("cannot open OCI archive", &part))?;
            io::Seek::seek(&mut file, SeekFrom::Start(at)).map_err(Error::io("cannot read", &part))?;
            file.take(len).read_to_end(&mut buf).map_err(Error::io("cannot read", &part))?;
        }
        if buf.len() as u64 != size {
            return Err(Error::Corrupt { store: self.location.to_string(), reason: format!("{name} is truncated") });
        }
        Ok(Some(buf))
    }

    /// Files beside the layout that aibox added (`aibox/...`), with their content.
    pub fn extra_files(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut names: Vec<&String> = self.members.keys().filter(|n| n.starts_with("aibox/")).collect();
        names.sort();
        names.into_iter().map(|n| Ok((n.clone(), self.read_member(n, 1 << 20)?.unwrap_or_default()))).collect()
    }

    fn index(&self) -> Result<OciImageIndex> {
        let bytes = self.read_member("index.json", 64 << 20)?.unwrap_or_default();
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt { store: self.location.to_string(), reason: format!("index.json does not parse: {e}") })
    }

    fn blob_member(digest: &Digest) -> String {
        format!("blobs/sha256/{}", digest.hex())
    }
}

#[async_trait]
impl Store for OciArchive {
    fn location(&self) -> &StoreLocation {
        &self.location
    }

    async fn list_packs(&self) -> Result<Vec<String>> {
        Ok(super::layout::packs_in_index(&self.index()?))
    }

    async fn list_tags(&self, name: &str) -> Result<Vec<String>> {
        Ok(tags_in_index(self.index()?, name).into_keys().collect())
    }

    async fn fetch_manifest(&self, name: &str, reference: &str) -> Result<Option<RawManifest>> {
        let (digest, media_type) = match reference.parse::<Digest>() {
            Ok(d) => (d, None),
            Err(_) => {
                let mut tags: BTreeMap<_, _> = tags_in_index(self.index()?, name);
                let Some(entry) = tags.remove(reference) else { return Ok(None) };
                let d = entry.digest.parse().map_err(|e| Error::Corrupt { store: self.location.to_string(), reason: e })?;
                (d, Some(entry.media_type))
            }
        };
        let Some(bytes) = self.read_member(&Self::blob_member(&digest), 4 << 20)? else {
            return Ok(None);
        };
        let mut manifest = RawManifest::new(bytes);
        super::check_manifest_digest(&self.location, digest.as_str(), &manifest)?;
        if let Some(mt) = media_type {
            manifest.media_type = mt;
        }
        Ok(Some(manifest))
    }

    async fn has_blob(&self, _name: &str, digest: &Digest) -> Result<bool> {
        Ok(self.members.contains_key(&Self::blob_member(digest)))
    }

    async fn open_blob(&self, name: &str, digest: &Digest, _size: Option<u64>) -> Result<BlobReader> {
        let Some(&(offset, size)) = self.members.get(&Self::blob_member(digest)) else {
            return Err(Error::NotFound { what: format!("blob {digest} of {name}"), store: self.location.to_string() });
        };
        let mut reader: BlobReader = Box::pin(tokio::io::empty());
        for (part, at, len) in self.segments(offset, size) {
            let mut file = tokio::fs::File::open(&part).await.map_err(Error::io("cannot open OCI archive", &part))?;
            file.seek(SeekFrom::Start(at)).await.map_err(Error::io("cannot read", &part))?;
            reader = Box::pin(reader.chain(file.take(len)));
        }
        Ok(reader)
    }

    async fn push_blob(&self, _name: &str, _blob: &Blob) -> Result<()> {
        Err(Error::ReadOnlyStore(self.location.to_string()))
    }

    async fn push_manifest(&self, _name: &str, _tag: Option<&str>, _manifest: &RawManifest) -> Result<()> {
        Err(Error::ReadOnlyStore(self.location.to_string()))
    }
}

/// The files of the archive at `path`: `path` itself, or `path.001`, `path.002`, ... when only
/// the parts exist; each with its logical start offset and length.
pub fn parts_of(path: &Path) -> Result<Vec<(PathBuf, u64, u64)>> {
    let mut files = Vec::new();
    if path.exists() {
        files.push(path.to_owned());
    } else {
        for i in 1.. {
            let part = part_path(path, i);
            if !part.exists() {
                break;
            }
            files.push(part);
        }
    }
    if files.is_empty() {
        return Err(Error::io("cannot open OCI archive", path)(io::ErrorKind::NotFound.into()));
    }
    let mut start = 0;
    files
        .into_iter()
        .map(|f| {
            let len = std::fs::metadata(&f).map_err(Error::io("cannot open OCI archive", &f))?.len();
            let part = (f, start, len);
            start += len;
            Ok(part)
        })
        .collect()
}

/// `FILE.001`, `FILE.002`, ...
pub fn part_path(path: &Path, index: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{index:03}"));
    PathBuf::from(s)
}
