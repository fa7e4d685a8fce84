//! A root filesystem tarball as a normalized layer: entries sorted by path (hard links after
//! everything else, so their targets exist), one fixed mtime, numeric owners, modes and
//! extended attributes (`security.capability`, ...) kept as the tarball has them. The same
//! tarball gives the same layer, whatever order or timestamps the tool that made it wrote.
//!
//! The tarball may be plain, gzip or zstd; compressed ones are unpacked to a temporary file
//! first so entries can be read in sorted order without holding any in memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use tar::EntryType;

use crate::base_files::{ACCOUNT_FILES, BaseFiles, Kind, MAX_ACCOUNT_FILE, clean_path};
use crate::error::{Error, Result};
use crate::layer::{LayerFile, LayerWriter, Meta};

/// One entry as indexed.
struct Entry {
    kind: EntryType,
    meta: Meta,
    size: u64,
    data_at: u64,
    link: Option<Vec<u8>>,
    device: (u32, u32),
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Write the normalized layer of the rootfs tarball `input` to `out`; `work` holds the
/// unpacked copy of a compressed tarball.
pub fn normalize(input: &Path, out: &Path, work: &Path, mtime: u64) -> Result<(LayerFile, BaseFiles)> {
    let bad = |reason: String| Error::Rootfs { path: input.to_owned(), reason };
    let plain = decompressed(input, work)?;
    let tar_path = plain.as_ref().map_or(input, |t| t.path());
    let (entries, hardlinks, files) = index(tar_path).map_err(bad)?;
    if entries.is_empty() {
        return Err(bad("has no entries".into()));
    }
    let mut data = File::open(tar_path).map_err(Error::io("cannot read", tar_path))?;
    let mut layer = LayerWriter::create(out, mtime)?;
    for (path, e) in entries.iter().chain(hardlinks.iter()) {
        match e.kind {
            EntryType::Directory => layer.dir_with(path, e.meta, &e.xattrs)?,
            EntryType::Regular | EntryType::Continuous => {
                data.seek(SeekFrom::Start(e.data_at)).map_err(Error::io("cannot read", tar_path))?;
                layer.file_from(path, e.meta, e.size, BufReader::new(&mut data), &e.xattrs)?;
            }
            EntryType::Symlink | EntryType::Link => layer.link(e.kind, path, e.link.as_deref().unwrap_or_default(), e.meta, &e.xattrs)?,
            kind => layer.special(kind, path, e.meta, e.device, &e.xattrs)?,
        }
    }
    Ok((layer.finish()?, files))
}

/// A gzip or zstd tarball unpacked to a temporary file; `None` for a plain tar.
fn decompressed(input: &Path, work: &Path) -> Result<Option<tempfile::NamedTempFile>> {
    let mut file = File::open(input).map_err(Error::io("cannot read", input))?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(Error::io("cannot read", input))?;
    file.seek(SeekFrom::Start(0)).map_err(Error::io("cannot read", input))?;
    let reader: Box<dyn Read> = match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(BufReader::new(file))),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::stream::read::Decoder::new(file).map_err(Error::io("cannot read", input))?),
        [0xfd, b'7', b'z', b'X'] => return Err(Error::Rootfs { path: input.to_owned(), reason: "is xz-compressed; give it plain, gzip or zstd".into() }),
        _ => return Ok(None),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(work).map_err(Error::io("cannot create a temporary file in", work))?;
    let mut reader = reader;
    std::io::copy(&mut reader, tmp.as_file_mut()).map_err(|e| Error::Rootfs { path: input.to_owned(), reason: format!("cannot decompress: {e}") })?;
    Ok(Some(tmp))
}

type Index = (BTreeMap<String, Entry>, BTreeMap<String, Entry>, BaseFiles);

/// Read every header (skipping the data) into path order; the last entry for a path wins.
fn index(tar_path: &Path) -> Result<Index, String> {
    let file = File::open(tar_path).map_err(|e| format!("cannot read: {e}"))?;
    let length = file.metadata().map_err(|e| format!("cannot read: {e}"))?.len();
    let mut archive = tar::Archive::new(file);
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let mut hardlinks: BTreeMap<String, Entry> = BTreeMap::new();
    let mut files = BaseFiles::default();
    let not_tar = |e: std::io::Error| format!("is not a readable tar: {e}");
    for entry in archive.entries_with_seek().map_err(not_tar)? {
        let mut entry = entry.map_err(not_tar)?;
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            continue;
        }
        if matches!(kind, EntryType::GNUSparse) {
            return Err("holds a sparse file; re-create it without --sparse".into());
        }
        let Some(path) = clean_path(&entry.path_bytes())? else { continue };
        let header = entry.header();
        let meta = Meta {
            mode: header.mode().map_err(not_tar)? & 0o7777,
            uid: header.uid().map_err(not_tar)?,
            gid: header.gid().map_err(not_tar)?,
        };
        let device = (header.device_major().ok().flatten().unwrap_or(0), header.device_minor().ok().flatten().unwrap_or(0));
        let link = match kind {
            EntryType::Symlink => Some(entry.link_name_bytes().ok_or_else(|| format!("symlink `{path}` has no target"))?.into_owned()),
            EntryType::Link => {
                let target = entry.link_name_bytes().ok_or_else(|| format!("hard link `{path}` has no target"))?;
                let target = clean_path(&target)?.ok_or_else(|| format!("hard link `{path}` points at the root"))?;
                Some(target.into_bytes())
            }
            _ => None,
        };
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions().map_err(not_tar)? {
            for ext in pax {
                let ext = ext.map_err(not_tar)?;
                if let Ok(key) = ext.key()
                    && key.starts_with("SCHILY.xattr.")
                {
                    xattrs.push((key.to_owned(), ext.value_bytes().to_vec()));
                }
            }
        }
        let size = if matches!(kind, EntryType::Regular | EntryType::Continuous) { entry.size() } else { 0 };
        if entry.raw_file_position().saturating_add(size) > length {
            return Err(format!("is truncated: `{path}` ends past the end of the file"));
        }
        xattrs.sort();
        let content = if ACCOUNT_FILES.contains(&path.as_str()) && kind == EntryType::Regular && size <= MAX_ACCOUNT_FILE {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).map_err(not_tar)?;
            Some(buf)
        } else {
            None
        };
        let symlink_target = (kind == EntryType::Symlink).then(|| String::from_utf8_lossy(link.as_deref().unwrap_or_default()).into_owned());
        files.add(&path, Kind::of(kind), meta, content, symlink_target);
        let e = Entry { kind, meta, size, data_at: entry.raw_file_position(), link, device, xattrs };
        // What was at the path goes; a directory replaced by something else takes its tree along.
        if entries.remove(&path).is_some_and(|old: Entry| old.kind == EntryType::Directory) && kind != EntryType::Directory {
            let under = format!("{path}/");
            entries.retain(|p, _| !p.starts_with(&under));
            hardlinks.retain(|p, _| !p.starts_with(&under));
        }
        hardlinks.remove(&path);
        if kind == EntryType::Link {
            hardlinks.insert(path, e);
        } else {
            entries.insert(path, e);
        }
    }
    for (path, e) in &hardlinks {
        let target = String::from_utf8_lossy(e.link.as_deref().unwrap_or_default()).into_owned();
        if !entries.get(&target).is_some_and(|t| matches!(t.kind, EntryType::Regular | EntryType::Continuous)) {
            return Err(format!("hard link `{path}` points at `{target}`, which is not a file in the tarball"));
        }
    }
    Ok((entries, hardlinks, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(entries: &[(&str, &[u8], u64)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data, mtime) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(*mtime);
            h.set_uid(7);
            h.set_gid(0);
            h.set_entry_type(if path.ends_with('/') { EntryType::Directory } else { EntryType::Regular });
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn order_and_times_do_not_change_the_layer() {
        let dir = tempfile::tempdir().unwrap();
        let a = tarball(&[("./etc/", b"", 5), ("./etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 9), ("./bin/", b"", 1), ("./bin/sh", b"#!", 3)]);
        let b = tarball(&[("bin/", b"", 100), ("bin/sh", b"#!", 200), ("etc/", b"", 300), ("etc/passwd", b"old\n", 1), ("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 400)]);
        std::fs::write(dir.path().join("a.tar"), a).unwrap();
        std::fs::write(dir.path().join("b.tar"), b).unwrap();
        let (la, fa) = normalize(&dir.path().join("a.tar"), &dir.path().join("a.zst"), dir.path(), 0).unwrap();
        let (lb, _) = normalize(&dir.path().join("b.tar"), &dir.path().join("b.zst"), dir.path(), 0).unwrap();
        assert_eq!(la.digest, lb.digest);
        assert_eq!(la.diff_id, lb.diff_id);
        assert_eq!(fa.accounts["etc/passwd"].0, b"root:x:0:0::/root:/bin/sh\n");
        assert_eq!(fa.accounts["etc/passwd"].1.uid, 7, "owners are kept");
        assert!(fa.dirs.contains_key("bin"));
    }

    #[test]
    fn refuses_what_is_not_a_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_entry_type(EntryType::Regular);
        h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"a/../../etc/x");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        std::fs::write(dir.path().join("evil.tar"), b.into_inner().unwrap()).unwrap();
        let err = normalize(&dir.path().join("evil.tar"), &dir.path().join("o"), dir.path(), 0).unwrap_err().to_string();
        assert!(err.contains("climbs out of the root"), "{err}");
        std::fs::write(dir.path().join("junk.tar"), b"not a tar at all, just text that goes on long enough").unwrap();
        assert!(normalize(&dir.path().join("junk.tar"), &dir.path().join("o"), dir.path(), 0).is_err());
    }
}
