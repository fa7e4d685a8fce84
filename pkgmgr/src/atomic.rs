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
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(Error::io("cannot write to", dir))?;
    tmp.write_all(bytes).map_err(Error::io("cannot write", path))?;
    make_public(tmp.as_file(), path)?;
    tmp.as_file().sync_all().map_err(Error::io("cannot sync", path))?;
    tmp.persist(path).map_err(|e| Error::io("cannot write", path)(e.error))?;
    sync_dir(dir);
    Ok(())
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

/// Replace a user's file atomically, the way an editor should: through symlinks (the link's
/// target is replaced, the link stays), keeping the file's mode (a new file gets 0600, as it
/// may hold tokens), creating missing parent directories.
pub fn write_through(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => Path::new(".").to_owned(),
    };
    std::fs::create_dir_all(&dir).map_err(Error::io("cannot create", &dir))?;
    let mode = std::fs::metadata(&target).map_or(0o600, |m| m.permissions().mode() & 0o7777);
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(Error::io("cannot write to", &dir))?;
    tmp.write_all(bytes).map_err(Error::io("cannot write", path))?;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode)).map_err(Error::io("cannot set mode of", path))?;
    tmp.as_file().sync_all().map_err(Error::io("cannot sync", path))?;
    tmp.persist(&target).map_err(|e| Error::io("cannot write", path)(e.error))?;
    sync_dir(&dir);
    Ok(())
}
