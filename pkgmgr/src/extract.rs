//! Turn a pack's tar stream into a directory, safely. A pack is untrusted input (even a signed
//! one can be wrong), so every entry is checked before anything is written:
//!
//! - the path is relative, has no `..`, and lies under the pack's prefix
//!   (`opt/toolpacks/<name>/<version>/`), which maps onto the destination;
//! - a symlink's target resolves inside the pack root; nothing is ever written through a symlink
//!   (no entry may have a symlink as an ancestor, and files are created with `O_EXCL`);
//! - a hardlink points at an entry already extracted inside the pack root;
//! - device nodes, fifos and other special entries are refused;
//! - setuid, setgid and sticky bits, and group/other write permission, are dropped;
//! - total bytes, entry count and path length are bounded ([`Limits`]).
//!
//! A refused entry fails the whole extraction and names the path. This module knows nothing of
//! HTTP, caches or digests: it reads a stream and writes a directory.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::pack::layer::symlink_stays_inside;

/// Bounds on what one pack may unpack to.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Limits {
    /// Total bytes of file content.
    pub max_bytes: u64,
    /// Number of entries.
    pub max_entries: u64,
    /// Length of an entry path in bytes.
    pub max_path_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_bytes: 16 << 30, max_entries: 1_000_000, max_path_len: 4096 }
    }
}

/// What was extracted.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Extracted {
    /// Entries written.
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Why extraction stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// An entry broke a safety rule.
    #[error("entry `{path}`: {reason}")]
    Refused {
        /// The entry path as in the archive.
        path: String,
        /// Which rule.
        reason: String,
    },
    /// A limit was exceeded.
    #[error("{0}")]
    Limit(String),
    /// The stream is not a readable tar (or the decompressor failed).
    #[error("cannot read the layer: {0}")]
    Read(#[source] io::Error),
    /// Writing to the destination failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// The error (e.g. no space left on device).
        #[source]
        source: io::Error,
    },
}

/// Extract the tar stream `reader` into `dest` (which must exist and be empty), mapping entries
/// under `prefix` onto it. Reading stops at the end-of-archive marker: a caller hashing the
/// compressed stream drains that stream itself, so the digest covers every byte.
pub fn extract(reader: impl Read, dest: &Path, prefix: &str, limits: &Limits) -> Result<Extracted, ExtractError> {
    let mut archive = tar::Archive::new(reader);
    let prefix = Path::new(prefix.trim_end_matches('/'));
    let mut done = Extracted::default();
    let mut symlinks: HashSet<PathBuf> = HashSet::new();
    for entry in archive.entries().map_err(ExtractError::Read)? {
        let mut entry = entry.map_err(ExtractError::Read)?;
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let refuse = |reason: &str| ExtractError::Refused { path: shown.clone(), reason: reason.to_owned() };

        done.entries += 1;
        if done.entries > limits.max_entries {
            return Err(ExtractError::Limit(format!("more than {} entries (limit max_entries)", limits.max_entries)));
        }
        if raw_path.len() > limits.max_path_len {
            return Err(refuse(&format!("path longer than {} bytes", limits.max_path_len)));
        }
        let path = entry.path().map_err(ExtractError::Read)?.into_owned();
        let is_dir = entry.header().entry_type() == tar::EntryType::Directory;
        let Some(rel) = relative_under(&path, prefix).map_err(&refuse)? else {
            // A parent directory of the prefix itself: skipped here, but the image builder
            // applies the tar as it is, so it must be a directory.
            if is_dir {
                continue;
            }
            return Err(refuse("a directory above the pack's own is not a directory"));
        };
        if rel.as_os_str().is_empty() {
            if is_dir {
                continue;
            }
            return Err(refuse("the pack's own directory is not a directory"));
        }
        if rel.ancestors().skip(1).any(|a| symlinks.contains(a)) {
            return Err(refuse("writes through a symlink"));
        }
        let target = dest.join(&rel);
        let kind = entry.header().entry_type();
        // setuid/setgid/sticky and group/other write dropped: installed trees are never writable
        // by other users, whatever the tar says.
        let mode = entry.header().mode().unwrap_or(0o644) & 0o755;
        let write_err = |path: &Path| {
            let path = path.to_owned();
            move |source| ExtractError::Write { path, source }
        };
        match kind {
            tar::EntryType::Directory => {
                if symlinks.contains(&rel) {
                    return Err(refuse("a directory replaces a symlink"));
                }
                fs::create_dir_all(&target).map_err(write_err(&target))?;
                fs::set_permissions(&target, fs::Permissions::from_mode((mode | 0o700) & 0o755)).map_err(write_err(&target))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.header().size().map_err(ExtractError::Read)?;
                done.bytes = done.bytes.saturating_add(size);
                if done.bytes > limits.max_bytes {
                    return Err(ExtractError::Limit(format!("content larger than {} bytes (limit max_bytes)", limits.max_bytes)));
                }
                prepare_parent(&target).map_err(write_err(&target))?;
                remove_non_dir(&target).map_err(write_err(&target))?;
                symlinks.remove(&rel);
                let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&target).map_err(write_err(&target))?;
                let copied = io::copy(&mut (&mut entry).take(size), &mut file).map_err(|e| classify(e, &target))?;
                if copied != size {
                    return Err(ExtractError::Read(io::Error::new(io::ErrorKind::UnexpectedEof, format!("entry `{shown}` is truncated"))));
                }
                fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(write_err(&target))?;
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name().map_err(ExtractError::Read)?.filter(|l| !l.as_os_str().is_empty()).ok_or_else(|| refuse("symlink without a target"))?.into_owned();
                if !symlink_stays_inside(&rel, &link) {
                    return Err(refuse(&format!("symlink to `{}` points outside the pack", link.display())));
                }
                prepare_parent(&target).map_err(write_err(&target))?;
                remove_non_dir(&target).map_err(write_err(&target))?;
                std::os::unix::fs::symlink(&link, &target).map_err(write_err(&target))?;
                symlinks.insert(rel);
            }
            tar::EntryType::Link => {
                let link = entry.link_name().map_err(ExtractError::Read)?.ok_or_else(|| refuse("hardlink without a target"))?.into_owned();
                let link_rel = match relative_under(&link, prefix) {
                    Ok(Some(r)) if !r.as_os_str().is_empty() => r,
                    _ => return Err(refuse(&format!("hardlink to `{}` points outside the pack", link.display()))),
                };
                if link_rel.ancestors().any(|a| symlinks.contains(a)) {
                    return Err(refuse("hardlink through a symlink"));
                }
                let source = dest.join(&link_rel);
                if !fs::symlink_metadata(&source).is_ok_and(|m| m.is_file()) {
                    return Err(refuse(&format!("hardlink to `{}`, which is not a file extracted before it", link.display())));
                }
                prepare_parent(&target).map_err(write_err(&target))?;
                remove_non_dir(&target).map_err(write_err(&target))?;
                fs::hard_link(&source, &target).map_err(write_err(&target))?;
            }
            tar::EntryType::Char | tar::EntryType::Block => return Err(refuse("device nodes are not allowed in packs")),
            tar::EntryType::Fifo => return Err(refuse("fifos are not allowed in packs")),
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName | tar::EntryType::GNULongLink => {}
            other => return Err(refuse(&format!("entry type {other:?} is not allowed in packs"))),
        }
    }
    Ok(done)
}

/// The path of `path` relative to `prefix`; `Ok(None)` for the prefix's own parent directories,
/// an error for anything absolute, with `..`, or outside the prefix.
fn relative_under(path: &Path, prefix: &Path) -> Result<Option<PathBuf>, &'static str> {
    let mut clean = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => clean.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("path contains `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path"),
        }
    }
    if let Ok(rel) = clean.strip_prefix(prefix) {
        return Ok(Some(rel.to_owned()));
    }
    if prefix.starts_with(&clean) {
        return Ok(None);
    }
    Err("outside the pack's directory opt/toolpacks/<name>/<version>/")
}

fn prepare_parent(target: &Path) -> io::Result<()> {
    match target.parent() {
        Some(p) => fs::create_dir_all(p),
        None => Ok(()),
    }
}

/// Remove a file or symlink at `path` (never following it); directories are left alone.
fn remove_non_dir(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if !m.is_dir() => fs::remove_file(path),
        Ok(_) => Err(io::Error::new(io::ErrorKind::IsADirectory, "a directory is in the way")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A copy error is a write error when the destination failed (e.g. disk full), else a read error.
fn classify(e: io::Error, target: &Path) -> ExtractError {
    if matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem) {
        ExtractError::Write { path: target.to_owned(), source: e }
    } else {
        ExtractError::Read(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let p = Path::new("opt/toolpacks/a/1.0.0");
        assert_eq!(relative_under(Path::new("opt/toolpacks/a/1.0.0/bin/x"), p), Ok(Some(PathBuf::from("bin/x"))));
        assert_eq!(relative_under(Path::new("./opt/toolpacks/a/1.0.0/"), p), Ok(Some(PathBuf::new())));
        assert_eq!(relative_under(Path::new("opt/toolpacks/"), p), Ok(None));
        assert!(relative_under(Path::new("/etc/passwd"), p).is_err());
        assert!(relative_under(Path::new("opt/toolpacks/a/1.0.0/../../b/x"), p).is_err());
        assert!(relative_under(Path::new("opt/toolpacks/b/1.0.0/x"), p).is_err());
        assert!(relative_under(Path::new("etc/x"), p).is_err());
    }

    #[test]
    fn a_symlink_without_a_target_is_refused() {
        // Found by fuzzing (fuzz/fuzz_targets/extract.rs): an empty link name went on to
        // symlink(2) and failed as a write error (ENOENT) instead of being refused. The empty
        // name comes from a GNU long-link record (a PAX `linkpath=` does the same).
        let mut long = tar::Header::new_gnu();
        long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        long.set_entry_type(tar::EntryType::GNULongLink);
        long.set_size(1);
        long.set_cksum();
        let mut h = tar::Header::new_gnu();
        h.set_path("opt/toolpacks/a/1.0.0/l").unwrap();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_cksum();
        let mut bytes = long.as_bytes().to_vec();
        bytes.extend([0; 512]); // the record's body: one NUL, padded
        bytes.extend(h.as_bytes());
        bytes.extend([0; 1024]);
        let dir = tempfile::tempdir().unwrap();
        let err = extract(&bytes[..], dir.path(), "opt/toolpacks/a/1.0.0", &Limits::default()).unwrap_err();
        assert!(matches!(&err, ExtractError::Refused { reason, .. } if reason == "symlink without a target"), "{err}");
    }
}
