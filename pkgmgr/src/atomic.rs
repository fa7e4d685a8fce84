//! Atomic file replacement: a reader sees the old file or the new one, never half.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Write a file atomically (mode 0644): temp file in the same directory, fsync, rename. A
/// symlink at `path` is replaced by a regular file (callers that must write through links
/// resolve them first).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = temp_beside(dir, path)?;
    tmp.write_all(bytes).map_err(Error::io("cannot write", path))?;
    make_public(tmp.as_file(), path)?;
    tmp.as_file().sync_all().map_err(Error::io("cannot sync", path))?;
    tmp.persist(path).map_err(|e| Error::io("cannot write", path)(e.error))?;
    sync_dir(dir);
    Ok(())
}

/// A temporary file for replacing `path`, in `dir`: `.<name>.aibox-XXXXXX.tmp`, so one a killed
/// process left can be told apart. Such leftovers older than ten minutes (no writer takes that
/// long) are removed first: they may be copies of a config holding tokens.
fn temp_beside(dir: &Path, path: &Path) -> Result<tempfile::NamedTempFile> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{name}.aibox-");
    if let Ok(entries) = std::fs::read_dir(dir) {
        let stale = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            if file.starts_with(&prefix) && file.ends_with(".tmp") && e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < stale) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    tempfile::Builder::new().prefix(&prefix).suffix(".tmp").tempfile_in(dir).map_err(Error::io("cannot write to", dir))
}

/// Make a rename in `dir` durable (best effort: some filesystems refuse to sync a directory).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Give a temp file (created 0600) the mode of ordinary shared content, 0644.
pub fn make_public(file: &std::fs::File, path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(Error::io("cannot set mode of", path))
}

/// Replace a user's file atomically, the way an editor should: through symlinks (the final
/// target is replaced, every link stays, a dangling link gets its target created), keeping the
/// file's mode and owner (a new file gets 0600, as it may hold tokens), creating missing parent
/// directories of the target.
pub fn write_through(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let target = resolve_links(path);
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => Path::new(".").to_owned(),
    };
    std::fs::create_dir_all(&dir).map_err(Error::io("cannot create", &dir))?;
    let old = std::fs::metadata(&target).ok();
    let mode = old.as_ref().map_or(0o600, |m| m.permissions().mode() & 0o7777);
    let mut tmp = temp_beside(&dir, &target)?;
    tmp.write_all(bytes).map_err(Error::io("cannot write", path))?;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode)).map_err(Error::io("cannot set mode of", path))?;
    if let Some(m) = &old {
        // Only root can give a file away; for anyone else the owner is already theirs.
        let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(m.uid()), Some(m.gid()));
    }
    tmp.as_file().sync_all().map_err(Error::io("cannot sync", path))?;
    tmp.persist(&target).map_err(|e| Error::io("cannot write", path)(e.error))?;
    sync_dir(&dir);
    Ok(())
}

/// Follow symlinks (at most 40, as the kernel does) to the file they end at, existing or not.
fn resolve_links(path: &Path) -> std::path::PathBuf {
    let mut at = path.to_owned();
    for _ in 0..40 {
        match std::fs::read_link(&at) {
            Ok(link) => at = if link.is_absolute() { link } else { at.parent().unwrap_or(Path::new("/")).join(link) },
            Err(_) => break,
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_killed_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let old = dir.path().join(".config.json.aibox-abc123.tmp");
        let fresh = dir.path().join(".config.json.aibox-def456.tmp");
        let other = dir.path().join(".other.json.aibox-abc123.tmp");
        for p in [&old, &fresh, &other] {
            std::fs::write(p, "{}").unwrap();
        }
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for p in [&old, &other] {
            std::fs::File::options().write(true).open(p).unwrap().set_modified(hour_ago).unwrap();
        }
        write_through(&path, b"{}").unwrap();
        assert!(!old.exists(), "a stale leftover of this file is removed");
        assert!(fresh.exists(), "a recent one may be another writer's: kept");
        assert!(other.exists(), "another file's leftovers are not this writer's business");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn writes_through_links_keeping_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles/config.json");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, "{}").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("config.json");
        std::os::unix::fs::symlink("dotfiles/config.json", &link).unwrap();
        write_through(&link, b"{\"a\": 1}").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "{\"a\": 1}");
        assert_eq!(std::fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o640);
        // A dangling link (dotfiles not checked out yet): the target is created, the link stays.
        let dangling = dir.path().join("other.json");
        std::os::unix::fs::symlink(dir.path().join("repo/other.json"), &dangling).unwrap();
        write_through(&dangling, b"{}").unwrap();
        assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(dir.path().join("repo/other.json")).unwrap(), "{}");
        assert_eq!(std::fs::metadata(&dangling).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
