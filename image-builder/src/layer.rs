//! Writing an image layer: a tar streamed through two hashes, the uncompressed one (the
//! `diff_id` the image config lists) and the compressed one (the blob digest), into zstd.
//!
//! Entries are written in the order given; callers sort them. Every entry gets the one fixed
//! mtime and numeric owners only, so the same content gives the same bytes.

use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};

use aibox_pkgmgr::digest::{Digest, HashingWriter};

use crate::error::{Error, Result};

/// zstd level of image layers (as pack layers).
const LEVEL: i32 = 3;

/// A finished layer file.
#[derive(Debug, Clone)]
pub struct LayerFile {
    /// The `.tar.zst` file.
    pub path: PathBuf,
    /// Digest of the compressed bytes (the blob).
    pub digest: Digest,
    /// Compressed size.
    pub size: u64,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
}

type Sink = HashingWriter<zstd::stream::write::Encoder<'static, HashingWriter<BufWriter<File>>>>;

/// Owner and mode of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits (and setuid/setgid/sticky where the base had them).
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
}

impl Meta {
    /// Owned by root.
    pub const fn root(mode: u32) -> Self {
        Self { mode, uid: 0, gid: 0 }
    }
}

/// A reader that fails instead of ending before `left` bytes were read.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{} bytes short of the size in its header", self.left)));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A layer being written.
pub struct LayerWriter {
    tar: tar::Builder<Sink>,
    path: PathBuf,
    mtime: u64,
}

impl LayerWriter {
    /// Start a layer at `path` whose entries all get `mtime`.
    pub fn create(path: &Path, mtime: u64) -> Result<Self> {
        let file = File::create(path).map_err(Error::io("cannot create", path))?;
        let encoder = zstd::stream::write::Encoder::new(HashingWriter::new(BufWriter::with_capacity(1 << 20, file)), LEVEL).map_err(Error::io("cannot start zstd for", path))?;
        let mut tar = tar::Builder::new(HashingWriter::new(encoder));
        tar.mode(tar::HeaderMode::Deterministic);
        tar.follow_symlinks(false);
        Ok(Self { tar, path: path.to_owned(), mtime })
    }

    fn header(&self, kind: tar::EntryType, meta: Meta, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(meta.mode);
        h.set_uid(meta.uid);
        h.set_gid(meta.gid);
        h.set_size(size);
        h.set_mtime(self.mtime);
        h
    }

    fn err(&self) -> impl FnOnce(io::Error) -> Error + use<> {
        Error::io("cannot write layer", self.path.clone())
    }

    /// A directory (`path` without the trailing slash).
    pub fn dir(&mut self, path: &str, meta: Meta) -> Result<()> {
        let mut h = self.header(tar::EntryType::Directory, meta, 0);
        let err = self.err();
        self.tar.append_data(&mut h, format!("{path}/"), io::empty()).map_err(err)
    }

    /// A regular file with `content`.
    pub fn file(&mut self, path: &str, meta: Meta, content: &[u8]) -> Result<()> {
        self.file_from(path, meta, content.len() as u64, content, &[])
    }

    /// A regular file of `size` bytes read from `data`, with PAX `xattrs` (`SCHILY.xattr.*`).
    /// Fewer bytes than `size` (a file that shrank while read) is an error.
    pub fn file_from(&mut self, path: &str, meta: Meta, size: u64, data: impl Read, xattrs: &[(String, Vec<u8>)]) -> Result<()> {
        self.pax(xattrs)?;
        let mut h = self.header(tar::EntryType::Regular, meta, size);
        let err = self.err();
        let mut data = Exact { inner: data.take(size), left: size };
        self.tar.append_data(&mut h, path, &mut data).map_err(err)
    }

    /// A symlink or a hard link (`kind`) to `target`.
    pub fn link(&mut self, kind: tar::EntryType, path: &str, target: &[u8], meta: Meta, xattrs: &[(String, Vec<u8>)]) -> Result<()> {
        self.pax(xattrs)?;
        let mut h = self.header(kind, meta, 0);
        let target = Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(target));
        let err = self.err();
        self.tar.append_link(&mut h, path, target).map_err(err)
    }

    /// A device node, fifo (or other special entry) as the base had it.
    pub fn special(&mut self, kind: tar::EntryType, path: &str, meta: Meta, device: (u32, u32), xattrs: &[(String, Vec<u8>)]) -> Result<()> {
        self.pax(xattrs)?;
        let mut h = self.header(kind, meta, 0);
        let err = self.err();
        h.set_device_major(device.0).map_err(self.err())?;
        h.set_device_minor(device.1).map_err(self.err())?;
        self.tar.append_data(&mut h, path, io::empty()).map_err(err)
    }

    /// A directory entry with `xattrs`.
    pub fn dir_with(&mut self, path: &str, meta: Meta, xattrs: &[(String, Vec<u8>)]) -> Result<()> {
        self.pax(xattrs)?;
        self.dir(path, meta)
    }

    fn pax(&mut self, xattrs: &[(String, Vec<u8>)]) -> Result<()> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let err = self.err();
        self.tar.append_pax_extensions(xattrs.iter().map(|(k, v)| (k.as_str(), v.as_slice()))).map_err(err)
    }

    /// Finish the tar and the compression; the file is synced.
    pub fn finish(self) -> Result<LayerFile> {
        let err = Error::io("cannot write layer", self.path.clone());
        let finish = || -> io::Result<(Digest, Digest, u64)> {
            let hashing = self.tar.into_inner()?;
            let (diff_id, _, encoder) = hashing.finish();
            let (digest, size, writer) = encoder.finish()?.finish();
            writer.into_inner().map_err(io::IntoInnerError::into_error)?.sync_all()?;
            Ok((diff_id, digest, size))
        };
        let path = self.path.clone();
        let (diff_id, digest, size) = finish().map_err(err)?;
        Ok(LayerFile { path, digest, size, diff_id })
    }
}
