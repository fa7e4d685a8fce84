//! `aibox verify-installed` and `aibox repair`: every installed file compared with what its
//! pack's layer says (the layer is the record: digest-checked, from the cache or the store),
//! naming changed, missing and extra files; damaged packs reinstalled from verified bytes.
//!
//! The comparison reads the layer again rather than hashing at install time, so installs stay
//! as fast as they are. `script` and `nix` packs change their tree on install by design and are
//! reported as not checked.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digest::{Digest, HashingReader, HashingWriter, digest_file};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::toolpacks::{InstalledPack, Toolpacks};

/// What was found for one pack.
#[derive(Debug, Clone, Serialize)]
pub struct PackCheck {
    /// Pack name.
    pub name: String,
    /// Installed version.
    pub version: String,
    /// Files whose content, size, mode, type or link target differ.
    pub changed: Vec<String>,
    /// Files the layer has and the tree does not.
    pub missing: Vec<String>,
    /// Files in the tree the layer does not have.
    pub extra: Vec<String>,
    /// Why it was not checked, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unchecked: Option<String>,
}

impl PackCheck {
    /// Whether anything differs.
    pub fn damaged(&self) -> bool {
        !self.changed.is_empty() || !self.missing.is_empty() || !self.extra.is_empty()
    }
}

/// What one layer entry says.
#[derive(Debug, PartialEq, Eq)]
enum Expected {
    Dir,
    File { size: u64, executable: bool, sha256: Digest },
    Symlink(PathBuf),
}

/// Check every installed pack; the layer comes from the cache, else from `store`.
pub async fn verify_installed(toolpacks: &Toolpacks, store: Option<&dyn Store>) -> Result<Vec<PackCheck>> {
    let state = toolpacks.state()?;
    let mut out = Vec::new();
    for (name, pack) in &state.packs {
        out.push(check_pack(toolpacks, store, name, pack).await?);
    }
    Ok(out)
}

async fn check_pack(toolpacks: &Toolpacks, store: Option<&dyn Store>, name: &str, pack: &InstalledPack) -> Result<PackCheck> {
    let mut check = PackCheck { name: name.to_owned(), version: pack.version.clone(), changed: Vec::new(), missing: Vec::new(), extra: Vec::new(), unchecked: None };
    if pack.manifest.as_ref().is_some_and(|m| m.install.method != aibox_schema::InstallMethod::DockerLayer) {
        check.unchecked = Some(format!("a {} pack: its install step changes the tree", pack.manifest.as_ref().map(|m| m.install.method.to_string()).unwrap_or_default()));
        return Ok(check);
    }
    let layer: Digest = pack.layer.parse().map_err(|e| Error::Corrupt { store: "state.json".into(), reason: e })?;
    let cached = toolpacks.cache().blob(&layer);
    let reader: Box<dyn Read + Send> = if cached.is_file() {
        Box::new(std::fs::File::open(&cached).map_err(Error::io("cannot read", &cached))?)
    } else if let Some(store) = store {
        Box::new(tokio_util::io::SyncIoBridge::new(store.open_blob(name, &layer, None).await?))
    } else {
        check.unchecked = Some("its layer is not cached and no store was reachable".into());
        return Ok(check);
    };
    let prefix = format!("opt/toolpacks/{name}/{}", pack.version);
    let dir = toolpacks.pack_dir(name, &pack.version);
    let label = format!("{name}@{}", pack.version);
    tokio::task::spawn_blocking(move || {
        let expected = read_expected(reader, &layer, &prefix, &label)?;
        compare(&dir, &expected, &mut check);
        Ok(check)
    })
    .await
    .expect("verification does not panic")
}

/// The entries of the layer under `prefix`, with the layer's digest checked to the last byte.
fn read_expected(reader: Box<dyn Read + Send>, layer: &Digest, prefix: &str, label: &str) -> Result<BTreeMap<PathBuf, Expected>> {
    let corrupt = |reason: String| Error::Corrupt { store: "the install cache".into(), reason: format!("layer {layer} of {label}: {reason}") };
    let mut hashing = HashingReader::new(reader, u64::MAX, None);
    let mut magic = [0u8; 4];
    let mut head = Vec::new();
    let n = hashing.read(&mut magic).map_err(|e| corrupt(e.to_string()))?;
    head.extend_from_slice(&magic[..n]);
    let chained = std::io::Cursor::new(head).chain(&mut hashing);
    let decoded: Box<dyn Read> = match &magic[..n] {
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::stream::read::Decoder::new(chained).map_err(|e| corrupt(e.to_string()))?),
        [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(chained)),
        _ => Box::new(chained),
    };
    let mut expected = BTreeMap::new();
    let mut archive = tar::Archive::new(decoded);
    for entry in archive.entries().map_err(|e| corrupt(e.to_string()))? {
        let mut entry = entry.map_err(|e| corrupt(e.to_string()))?;
        let path = entry.path().map_err(|e| corrupt(e.to_string()))?.into_owned();
        let Ok(rel) = path.strip_prefix(prefix) else { continue };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let rel = rel.to_owned();
        let kind = entry.header().entry_type();
        let value = match kind {
            tar::EntryType::Directory => Expected::Dir,
            tar::EntryType::Symlink => Expected::Symlink(entry.link_name().map_err(|e| corrupt(e.to_string()))?.unwrap_or_default().into_owned()),
            tar::EntryType::Link => {
                // A hard link has its target's content.
                let target = entry.link_name().map_err(|e| corrupt(e.to_string()))?.unwrap_or_default().into_owned();
                let target = target.strip_prefix(prefix).map(Path::to_path_buf).unwrap_or(target);
                match expected.get(&target) {
                    Some(Expected::File { size, executable, sha256 }) => Expected::File { size: *size, executable: *executable, sha256: sha256.clone() },
                    _ => continue,
                }
            }
            _ => {
                let mut hasher = HashingWriter::new(std::io::sink());
                std::io::copy(&mut entry, &mut hasher).map_err(|e| corrupt(e.to_string()))?;
                let (sha256, size, _) = hasher.finish();
                let executable = entry.header().mode().unwrap_or(0o644) & 0o111 != 0;
                Expected::File { size, executable, sha256 }
            }
        };
        expected.insert(rel, value);
    }
    drop(archive);
    let (actual, _, _) = hashing.finish().map_err(|e| corrupt(e.to_string()))?;
    if actual != *layer {
        return Err(corrupt(format!("the layer read as {actual} (damaged: delete it from .aibox/cache and repair from the store)")));
    }
    Ok(expected)
}

/// Compare the tree at `dir` with `expected`.
fn compare(dir: &Path, expected: &BTreeMap<PathBuf, Expected>, check: &mut PackCheck) {
    let mut seen = std::collections::BTreeSet::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false).min_depth(1).into_iter().flatten() {
        let rel = entry.path().strip_prefix(dir).expect("walk stays under dir").to_owned();
        let shown = rel.display().to_string();
        seen.insert(rel.clone());
        let Some(want) = expected.get(&rel) else {
            check.extra.push(shown);
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
        let same = match want {
            Expected::Dir => meta.is_dir(),
            Expected::Symlink(target) => meta.file_type().is_symlink() && std::fs::read_link(entry.path()).ok().as_deref() == Some(target.as_path()),
            Expected::File { size, executable, sha256 } => {
                meta.is_file()
                    && meta.len() == *size
                    && (meta.permissions().mode() & 0o111 != 0) == *executable
                    && meta.mode() & 0o022 == 0
                    && digest_file(entry.path()).is_ok_and(|(h, _)| h == *sha256)
            }
        };
        if !same {
            check.changed.push(shown);
        }
    }
    check.missing.extend(expected.keys().filter(|k| !seen.contains(*k)).map(|k| k.display().to_string()));
}
