//! Packs in images: each pack's layer blob goes into the image exactly as published, so it is
//! held to the rules an install applies before it is used, and read once to learn what the
//! image config and the state layer need (its `diff_id`, its directories, its size).
//!
//! The rules: every entry passes the extractor `aibox install` uses (paths under
//! `opt/toolpacks/<name>/<version>/`, symlinks inside, no devices, bounded), and, because here
//! the tar is applied as it is rather than extracted, also: the directories above the pack's
//! own are directories, no mode has setuid/setgid/sticky or group/other write, and no entry is
//! a whiteout (which would delete files of the base).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aibox_pkgmgr::digest::{Digest, HashingReader, VerifyingReader};
use aibox_pkgmgr::extract::{self, Limits};
use aibox_pkgmgr::install::Resolved;
use aibox_pkgmgr::progress::{Reporter, ReportingReader};
use aibox_pkgmgr::store::Store;
use aibox_pkgmgr::toolpacks::{Shell, State, Toolpacks};
use aibox_schema::media_types as mt;
use tokio::io::AsyncWriteExt;

use crate::aibox_layer::TOOLPACKS;
use crate::base_files::{BaseFiles, clean_path};
use crate::error::{Error, Result};
use crate::layer::{LayerFile, Meta};
use crate::tree::{Item, Tree};

/// A pack layer, fetched, checked and read.
#[derive(Debug, Clone)]
pub struct PackLayer {
    /// The blob, on disk.
    pub blob: PathBuf,
    /// Its digest (as published).
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its media type (as published).
    pub media_type: String,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Directories of the pack tree (clean paths) and their modes.
    pub dirs: Vec<(String, u32)>,
    /// Bytes of file content.
    pub bytes: u64,
    /// Entries.
    pub entries: u64,
}

/// Fetch the layer of `r` from `store` into `work` (checked against its digest) and read it.
pub async fn fetch(store: &dyn Store, r: &Resolved, work: &Path, reporter: &Arc<dyn Reporter>) -> Result<PackLayer> {
    let name = r.pack.name.as_str();
    let label = format!("{name}@{}", r.pack.version);
    let corrupt = |reason: String| aibox_pkgmgr::Error::Corrupt { store: store.location().to_string(), reason };
    let digest: Digest = r.layer.digest.parse().map_err(corrupt)?;
    let size = u64::try_from(r.layer.size).unwrap_or(0);
    let blob = work.join(format!("{}.layer", digest.hex()));
    let id = reporter.start("Downloading", &label, size);
    let reader = VerifyingReader::new(store.open_blob(name, &digest, Some(size)).await?, digest.clone(), size);
    let mut reader = ReportingReader::new(reader, reporter.clone(), id);
    let mut file = tokio::fs::File::create(&blob).await.map_err(Error::io("cannot create", &blob))?;
    let copied = tokio::io::copy(&mut reader, &mut file).await;
    reporter.finish(id);
    copied.map_err(|e| corrupt(format!("layer {digest} of {label}: {e}")))?;
    file.flush().await.map_err(Error::io("cannot write", &blob))?;
    let (blob_path, media_type, work) = (blob.clone(), r.layer.media_type.clone(), work.to_owned());
    let prefix = format!("{TOOLPACKS}/{name}/{}", r.pack.version);
    let scanned = tokio::task::spawn_blocking(move || read_layer(&blob_path, &media_type, &prefix, &work, &label))
        .await
        .expect("layer reading does not panic")?;
    let (diff_id, dirs, bytes, entries) = scanned;
    Ok(PackLayer { blob, digest, size, media_type: r.layer.media_type.clone(), diff_id, dirs, bytes, entries })
}

fn decompress<'a>(file: impl Read + 'a, media_type: &str) -> Result<Box<dyn Read + 'a>, String> {
    Ok(match media_type {
        mt::LAYER_TAR_ZSTD => Box::new(zstd::stream::read::Decoder::new(file).map_err(|e| e.to_string())?),
        mt::LAYER_TAR_GZIP => Box::new(flate2::read::GzDecoder::new(file)),
        mt::LAYER_TAR => Box::new(file),
        other => return Err(format!("layer media type {other} is not a tar")),
    })
}

type Read_ = (Digest, Vec<(String, u32)>, u64, u64);

/// Check the layer at `blob` and return its diff_id, directories, content bytes and entries.
fn read_layer(blob: &Path, media_type: &str, prefix: &str, work: &Path, label: &str) -> Result<Read_> {
    let refused = |reason: String| Error::PackLayer { pack: label.to_owned(), reason };
    let open = || std::fs::File::open(blob).map(std::io::BufReader::new).map_err(Error::io("cannot read", blob));
    // 1. The extractor `aibox install` uses, into a scratch directory, hashing the tar as it goes.
    let scratch = tempfile::tempdir_in(work).map_err(Error::io("cannot create a scratch directory in", work))?;
    let mut hashing = HashingReader::new(decompress(open()?, media_type).map_err(refused)?, u64::MAX, None);
    let extracted = extract::extract(&mut hashing, scratch.path(), prefix, &Limits::default()).map_err(|e| match e {
        // The local disk, not the pack.
        extract::ExtractError::Write { path, source } => Error::io("cannot write", path)(source),
        other => refused(other.to_string()),
    })?;
    let (diff_id, _, _) = hashing.finish().map_err(|e| refused(format!("cannot read the layer: {e}")))?;
    drop(scratch);
    // 2. What applying the tar as it is adds to those rules.
    let mut archive = tar::Archive::new(decompress(open()?, media_type).map_err(refused)?);
    let mut dirs: BTreeMap<String, u32> = BTreeMap::new();
    for entry in archive.entries().map_err(|e| refused(e.to_string()))? {
        let mut entry = entry.map_err(|e| refused(e.to_string()))?;
        let Some(path) = clean_path(&entry.path_bytes()).map_err(refused)? else { continue };
        check_entry(&mut entry, &path, prefix).map_err(|reason| refused(format!("entry `{path}` {reason}")))?;
        if path == prefix || path.starts_with(&format!("{prefix}/")) {
            // Every directory of the tree, also those only implied by a deeper entry.
            let mut at = path.as_str();
            while let Some((parent, _)) = at.rsplit_once('/') {
                if parent.len() < prefix.len() {
                    break;
                }
                dirs.entry(parent.to_owned()).or_insert(0o755);
                at = parent;
            }
            if entry.header().entry_type() == tar::EntryType::Directory {
                dirs.insert(path, entry.header().mode().unwrap_or(0o755) & 0o755);
            }
        }
    }
    Ok((diff_id, dirs.into_iter().collect(), extracted.bytes, extracted.entries))
}

/// The rules an entry applied as it is must follow, beyond the extractor's.
fn check_entry<R: Read>(entry: &mut tar::Entry<'_, R>, path: &str, prefix: &str) -> Result<(), String> {
    if path.rsplit('/').next().is_some_and(|n| n.starts_with(".wh.")) {
        return Err("is a whiteout (it would delete files of the base image)".into());
    }
    if let Some(pax) = entry.pax_extensions().map_err(|e| e.to_string())? {
        for ext in pax {
            let key = ext.map_err(|e| e.to_string())?.key().unwrap_or_default().to_owned();
            if key.starts_with("SCHILY.xattr.") || key.starts_with("LIBARCHIVE.xattr.") || key.starts_with("SCHILY.acl.") {
                return Err(format!("carries the extended attribute or ACL record `{key}` (file capabilities, overlay markers)"));
            }
        }
    }
    let header = entry.header();
    let kind = header.entry_type();
    let mode = header.mode().map_err(|e| e.to_string())? & 0o7777;
    // A symlink's mode means nothing (0777 by convention).
    if kind != tar::EntryType::Symlink && mode & !0o755 != 0 {
        return Err(format!("has mode {mode:o} (setuid, setgid, sticky or group/other write)"));
    }
    if header.uid().map_err(|e| e.to_string())? != 0 || header.gid().map_err(|e| e.to_string())? != 0 {
        return Err("is not owned by 0:0 (aibox pack layers are)".into());
    }
    let under = path.starts_with(&format!("{prefix}/"));
    if !under && kind != tar::EntryType::Directory {
        return Err("is the pack's directory or above it, and not a directory".into());
    }
    if !under && path != prefix && mode != 0o755 {
        return Err(format!("is above the pack's directory with mode {mode:o}, not 755"));
    }
    Ok(())
}

/// The state layer of a variant: `/opt/toolpacks` as `aibox install` would leave it with these
/// packs (state.json, `current` links, env.sh), and every directory of the pack trees owned by
/// `owner`, so the image's user can update and uninstall what was baked in.
pub fn state_layer(base: &BaseFiles, state: &State, layers: &BTreeMap<String, &PackLayer>, owner: Meta, out: &Path, mtime: u64) -> Result<LayerFile> {
    let dir = Meta { mode: 0o755, ..owner };
    let file = Meta { mode: 0o644, ..owner };
    let mut tree = Tree::default();
    tree.put(base, TOOLPACKS, Item::Dir(dir))?;
    tree.put(base, &format!("{TOOLPACKS}/.aibox"), Item::Dir(dir))?;
    tree.put(base, &format!("{TOOLPACKS}/.aibox/state.json"), Item::File(file, state.to_json()))?;
    let toolpacks = Toolpacks::new(&Path::new("/").join(TOOLPACKS));
    tree.put(base, &format!("{TOOLPACKS}/env.sh"), Item::File(file, toolpacks.env_script(state, Shell::Posix).into_bytes()))?;
    for (name, pack) in &state.packs {
        tree.put(base, &format!("{TOOLPACKS}/{name}"), Item::Dir(dir))?;
        tree.put(base, &format!("{TOOLPACKS}/{name}/current"), Item::Symlink(Meta { mode: 0o777, ..owner }, pack.version.clone()))?;
        if let Some(layer) = layers.get(name) {
            for (path, mode) in &layer.dirs {
                tree.put(base, path, Item::Dir(Meta { mode: *mode, ..owner }))?;
            }
        }
    }
    tree.write(out, mtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "opt/toolpacks/p/1.0.0";

    fn layer(dir: &Path, entries: &[(&str, tar::EntryType, u32, &str)]) -> PathBuf {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, mode, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(*mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(0);
            if link.is_empty() {
                b.append_data(&mut h, path, std::io::empty()).unwrap();
            } else {
                b.append_link(&mut h, path, link).unwrap();
            }
        }
        let path = dir.join("layer.tar");
        std::fs::write(&path, b.into_inner().unwrap()).unwrap();
        path
    }

    type Entries<'a> = &'a [(&'a str, tar::EntryType, u32, &'a str)];

    fn read(entries: Entries<'_>) -> Result<Read_, String> {
        let dir = tempfile::tempdir().unwrap();
        let blob = layer(dir.path(), entries);
        read_layer(&blob, mt::LAYER_TAR, PREFIX, dir.path(), "p@1.0.0").map_err(|e| e.to_string())
    }

    use tar::EntryType::{Directory as D, Regular as R, Symlink as S};

    #[test]
    fn reads_a_good_layer() {
        let (_, dirs, _, entries) = read(&[("opt/", D, 0o755, ""), ("opt/toolpacks/p/1.0.0/", D, 0o755, ""), ("opt/toolpacks/p/1.0.0/bin/", D, 0o700, ""), ("opt/toolpacks/p/1.0.0/bin/p", R, 0o755, ""), ("opt/toolpacks/p/1.0.0/lib/x/y.so", R, 0o644, "")]).unwrap();
        let expected = [("opt/toolpacks/p/1.0.0", 0o755), ("opt/toolpacks/p/1.0.0/bin", 0o700), ("opt/toolpacks/p/1.0.0/lib", 0o755), ("opt/toolpacks/p/1.0.0/lib/x", 0o755)];
        assert_eq!(dirs, expected.map(|(p, m)| (p.to_owned(), m)), "directories only implied are there too");
        assert_eq!(entries, 5);
    }

    #[test]
    fn refuses_what_would_reach_the_base() {
        let cases: &[(Entries<'_>, &str)] = &[
            (&[("etc/passwd", R, 0o644, "")], "outside the pack"),
            (&[("opt/toolpacks/p/1.0.0/bin/su", R, 0o4755, "")], "mode 4755"),
            (&[("opt/toolpacks/p/1.0.0/shared/", D, 0o777, "")], "mode 777"),
            (&[("opt/toolpacks/p/1.0.0/.wh.x", R, 0o644, "")], "whiteout"),
            (&[("opt/toolpacks", S, 0o777, "/etc")], "not a directory"),
            (&[("opt/toolpacks/p/1.0.0", S, 0o777, "/etc"), ("opt/toolpacks/p/1.0.0/profile.d/x.sh", R, 0o644, "")], "not a directory"),
            (&[("opt/", D, 0o700, "")], "mode 700"),
            (&[("opt/toolpacks/p/1.0.0/esc", S, 0o777, "../../../../etc")], "esc"),
        ];
        for (entries, expected) in cases {
            let err = read(entries).unwrap_err();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
