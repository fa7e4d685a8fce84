//! The install cache under `<toolpacks>/.aibox/cache/`:
//!
//! - `blobs/sha256/<hex>`: layer blobs as downloaded, kept only after their digest matched;
//! - `trees/<hex>/`: the tree a layer unpacked to, as hardlinks to the installed files (no extra
//!   disk), with `trees/<hex>.json` written last to mark it complete.
//!
//! A reinstall of a layer whose tree is cached links the tree into staging (as uv and pnpm do):
//! no download, no decompression, no copy. Hardlinks share inodes, so an installed file edited
//! in place changes the cached one too; packs are installed read-mostly, and a reinstall from
//! the blob (`aibox install --force`) re-extracts from verified bytes.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::atomic::write_atomic;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::extract::Extracted;

/// The cache of one toolpacks directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache at `root` (`<toolpacks>/.aibox/cache`).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// Where a verified layer blob is kept.
    pub fn blob(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// The blob directory (temp files are created there, then renamed into place).
    pub fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    fn tree(&self, layer: &Digest) -> PathBuf {
        self.root.join("trees").join(layer.hex())
    }

    fn tree_marker(&self, layer: &Digest) -> PathBuf {
        self.root.join("trees").join(format!("{}.json", layer.hex()))
    }

    /// Drop the cached tree of `layer` (it shares inodes with an installed tree found damaged).
    pub fn forget_tree(&self, layer: &Digest) {
        let _ = fs::remove_file(self.tree_marker(layer));
        let _ = fs::remove_dir_all(self.tree(layer));
    }

    /// Link the cached tree of `layer` into `staging` (empty); `None` when it is not cached.
    pub fn link_tree_into(&self, layer: &Digest, staging: &Path) -> Result<Option<Extracted>> {
        let Ok(marker) = fs::read(self.tree_marker(layer)) else { return Ok(None) };
        let Ok(extracted) = serde_json::from_slice::<Extracted>(&marker) else { return Ok(None) };
        let tree = self.tree(layer);
        match link_tree(&tree, staging) {
            Ok(()) => Ok(Some(extracted)),
            Err(_) => {
                // A damaged cache entry is dropped, and the caller extracts from the blob.
                let _ = fs::remove_file(self.tree_marker(layer));
                let _ = fs::remove_dir_all(&tree);
                for entry in fs::read_dir(staging).map_err(Error::io("cannot read", staging))?.flatten() {
                    let p = entry.path();
                    let _ = if p.is_dir() && !p.is_symlink() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
                }
                Ok(None)
            }
        }
    }

    /// Remember the tree just extracted into `staging` for `layer` (best effort: a cache that
    /// cannot be written only costs speed later).
    pub fn keep_tree(&self, layer: &Digest, staging: &Path, extracted: &Extracted) {
        let tree = self.tree(layer);
        // A marker from before (`install --force`) must not vouch for the tree being replaced.
        let _ = fs::remove_file(self.tree_marker(layer));
        let _ = fs::remove_dir_all(&tree);
        if fs::create_dir_all(&tree).is_ok() && link_tree(staging, &tree).is_ok() {
            let _ = write_atomic(&self.tree_marker(layer), &serde_json::to_vec(extracted).expect("serializes"));
        } else {
            let _ = fs::remove_dir_all(&tree);
        }
    }
}

/// What a collection took out of the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Collected {
    /// Layer blobs removed (and leftovers of interrupted downloads).
    pub blobs: u64,
    /// Unpacked trees removed.
    pub trees: u64,
    /// Bytes given back to the filesystem (files whose last link went).
    pub bytes: u64,
}

impl Cache {
    /// Remove every blob and tree whose layer digest (hex) is not in `keep`. Callers hold the
    /// toolpacks lock, so no install is writing the cache meanwhile.
    pub fn collect(&self, keep: &BTreeSet<String>) -> Result<Collected> {
        let mut out = Collected::default();
        let blobs = self.blob_dir();
        for entry in read_dir_or_empty(&blobs)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                out.bytes += freed(&entry.path());
                fs::remove_file(entry.path()).map_err(Error::io("cannot remove", entry.path()))?;
                out.blobs += 1;
            }
        }
        let trees = self.root.join("trees");
        for entry in read_dir_or_empty(&trees)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let hex = name.strip_suffix(".json").unwrap_or(&name);
            if keep.contains(hex) {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                // The marker first: a run killed while the tree goes must not leave a half tree
                // that the next install takes for a whole one.
                remove_if_there(&trees.join(format!("{hex}.json")))?;
                out.bytes += walkdir::WalkDir::new(&path).into_iter().flatten().filter(|e| e.file_type().is_file()).map(|e| freed(e.path())).sum::<u64>();
                fs::remove_dir_all(&path).map_err(Error::io("cannot remove", &path))?;
                out.trees += 1;
            } else {
                remove_if_there(&path)?;
            }
        }
        Ok(out)
    }
}

fn remove_if_there(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("cannot remove", path)(e)),
        _ => Ok(()),
    }
}

fn read_dir_or_empty(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.flatten().collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io("cannot read", dir)(e)),
    }
}

/// Bytes removing `path` gives back: its size when this is its last link.
fn freed(path: &Path) -> u64 {
    fs::symlink_metadata(path).map_or(0, |m| if m.is_file() && m.nlink() == 1 { m.len() } else { 0 })
}

/// Recreate the tree `from` under `to` (which exists): directories made, symlinks copied,
/// files hardlinked (copied when linking is impossible).
fn link_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in walkdir::WalkDir::new(from).follow_links(false).min_depth(1) {
        let entry = entry.map_err(io::Error::from)?;
        let rel = entry.path().strip_prefix(from).expect("walk stays under root");
        let dest = to.join(rel);
        let ft = entry.file_type();
        if ft.is_dir() {
            fs::create_dir(&dest)?;
            fs::set_permissions(&dest, entry.metadata().map_err(io::Error::from)?.permissions())?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &dest)?;
        } else if fs::hard_link(entry.path(), &dest).is_err() {
            fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}
