//! The pack layer: a deterministic zstd-compressed tar of the pack tree under
//! `opt/toolpacks/<name>/<version>/`.
//!
//! Same tree, same bytes, on any machine: entries in byte order, uid/gid 0, no user or group
//! names, modes normalized (0755 for directories and executables, 0644 otherwise), one fixed
//! mtime (`SOURCE_DATE_EPOCH`, else 0), single-threaded zstd at a fixed level.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use walkdir::WalkDir;

use crate::digest::{Digest, HashingWriter};

/// A written layer file and its digest.
#[derive(Debug)]
pub struct Layer {
    /// The `.tar.zst` file.
    pub path: PathBuf,
    /// sha256 of the compressed bytes.
    pub digest: Digest,
    /// Compressed size.
    pub size: u64,
    /// Number of entries.
    pub entries: u64,
}

/// Why a tree cannot be packed.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A symlink whose target leaves the pack root.
    #[error("symlink {link} -> {target} points outside the pack root")]
    EscapingSymlink {
        /// The link, relative to the root.
        link: String,
        /// Its target.
        target: String,
    },
    /// A device node, fifo or socket.
    #[error("{0} is not a regular file, directory or symlink (devices, fifos and sockets are not allowed in packs)")]
    SpecialFile(String),
    /// Reading the tree or writing the layer failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Check a tree before packing: every symlink stays inside `root`, no special files.
pub fn check_tree(root: &Path) -> Result<(), LayerError> {
    for entry in WalkDir::new(root).follow_links(false) {
        let entry = entry.map_err(|e| LayerError::Io { path: root.display().to_string(), source: e.into() })?;
        let rel = entry.path().strip_prefix(root).expect("walk stays under root");
        let ft = entry.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(|source| LayerError::Io { path: rel.display().to_string(), source })?;
            if !symlink_stays_inside(rel, &target) {
                return Err(LayerError::EscapingSymlink { link: rel.display().to_string(), target: target.display().to_string() });
            }
        } else if !ft.is_dir() && !ft.is_file() {
            return Err(LayerError::SpecialFile(rel.display().to_string()));
        }
    }
    Ok(())
}

/// Whether a symlink at `link` (relative to the root) with `target` stays inside the root:
/// a relative target whose `..` components all come first and do not climb above the root
/// (`../lib/java` from `bin/`). A `..` after a name is refused, because that name may itself be
/// a symlink and the lexical reading would then be wrong; with this rule, every symlink in a
/// tree only climbs to an ancestor of its own directory, so no chain of them leaves the root.
pub fn symlink_stays_inside(link: &Path, target: &Path) -> bool {
    let mut depth = link.parent().map_or(0, |p| i64::try_from(p.components().count()).unwrap_or(i64::MAX));
    let mut seen_name = false;
    for c in target.components() {
        match c {
            Component::ParentDir if seen_name => return false,
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => seen_name = true,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// Write the layer for the tree at `root` into `out`, with entries under `prefix`
/// (`opt/toolpacks/<name>/<version>`).
pub fn write_layer(root: &Path, prefix: &str, out: &Path, mtime: u64, level: i32) -> Result<Layer, LayerError> {
    check_tree(root)?;
    let io_err = |path: &Path| {
        let path = path.display().to_string();
        move |source: io::Error| LayerError::Io { path, source }
    };
    let file = File::create(out).map_err(io_err(out))?;
    let hashing = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let encoder = zstd::stream::Encoder::new(hashing, level).map_err(io_err(out))?;
    let mut tar = tar::Builder::new(encoder);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);

    let mut entries = 0u64;
    // The prefix directories themselves, so extractors create them with sane modes.
    let mut acc = String::new();
    for part in prefix.split('/') {
        acc.push_str(part);
        acc.push('/');
        append_dir(&mut tar, &acc, mtime).map_err(io_err(out))?;
        entries += 1;
    }
    let mut hardlinks: std::collections::HashMap<(u64, u64), String> = std::collections::HashMap::new();
    let walk = WalkDir::new(root).follow_links(false).sort_by(|a, b| a.file_name().cmp(b.file_name())).min_depth(1);
    for entry in walk {
        let entry = entry.map_err(|e| LayerError::Io { path: root.display().to_string(), source: e.into() })?;
        let rel = entry.path().strip_prefix(root).expect("walk stays under root");
        let name = format!("{prefix}/{}", rel.to_str().ok_or_else(|| LayerError::Io { path: rel.display().to_string(), source: io::Error::other("file name is not UTF-8") })?);
        let ft = entry.file_type();
        if ft.is_dir() {
            append_dir(&mut tar, &format!("{name}/"), mtime).map_err(io_err(entry.path()))?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(io_err(entry.path()))?;
            let mut header = header(tar::EntryType::Symlink, 0o777, 0, mtime);
            tar.append_link(&mut header, &name, &target).map_err(io_err(entry.path()))?;
        } else {
            let meta = entry.metadata().map_err(|e| LayerError::Io { path: rel.display().to_string(), source: e.into() })?;
            let mode = if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 };
            // A file linked more than once in the tree is stored once; the others are hard links
            // to its first path (in walk order, so the layer stays deterministic).
            if meta.nlink() > 1 {
                if let Some(first) = hardlinks.get(&(meta.dev(), meta.ino())) {
                    let mut header = header(tar::EntryType::Link, mode, 0, mtime);
                    tar.append_link(&mut header, &name, first).map_err(io_err(entry.path()))?;
                    entries += 1;
                    continue;
                }
                hardlinks.insert((meta.dev(), meta.ino()), name.clone());
            }
            let mut header = header(tar::EntryType::Regular, mode, meta.len(), mtime);
            let f = File::open(entry.path()).map_err(io_err(entry.path()))?;
            tar.append_data(&mut header, &name, f).map_err(io_err(entry.path()))?;
        }
        entries += 1;
    }
    let encoder = tar.into_inner().map_err(io_err(out))?;
    let hashing = encoder.finish().map_err(io_err(out))?;
    let (digest, size, mut writer) = hashing.finish();
    writer.flush().map_err(io_err(out))?;
    writer.into_inner().map_err(|e| LayerError::Io { path: out.display().to_string(), source: e.into_error() })?.sync_all().map_err(io_err(out))?;
    Ok(Layer { path: out.to_owned(), digest, size, entries })
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, name: &str, mtime: u64) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0, mtime);
    tar.append_data(&mut h, name, io::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_rules() {
        assert!(symlink_stays_inside(Path::new("bin/java"), Path::new("../lib/java")));
        assert!(symlink_stays_inside(Path::new("a"), Path::new("b")));
        assert!(!symlink_stays_inside(Path::new("a"), Path::new("../b")));
        assert!(!symlink_stays_inside(Path::new("bin/x"), Path::new("../../etc/passwd")));
        assert!(!symlink_stays_inside(Path::new("bin/x"), Path::new("/etc/passwd")));
        assert!(!symlink_stays_inside(Path::new("bin/x"), Path::new("../a/../../b")));
        // A `..` after a name is refused: the name may be a symlink that already climbed.
        assert!(!symlink_stays_inside(Path::new("esc"), Path::new("a/b/c/up/../../../..")));
        assert!(!symlink_stays_inside(Path::new("a/x"), Path::new("b/../c")));
        assert!(symlink_stays_inside(Path::new("a/b/c/up"), Path::new("../../..")));
        assert!(symlink_stays_inside(Path::new("a/b/x"), Path::new("../../c/./d")));
    }
}
