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
