//! What the builder needs to know of a base's filesystem: which directories exist (and their
//! owners and modes, so the aibox layer never changes them), which other paths exist, and the
//! account files it extends (`/etc/passwd`, `/etc/group`, `/etc/shadow`).

use std::collections::{BTreeMap, BTreeSet};

use crate::layer::Meta;

/// The account files, by path.
pub const ACCOUNT_FILES: [&str; 3] = ["etc/passwd", "etc/group", "etc/shadow"];

/// Account files larger than this are not read.
pub const MAX_ACCOUNT_FILE: u64 = 4 << 20;

/// A base's filesystem, as far as the builder looks.
#[derive(Debug, Clone, Default)]
pub struct BaseFiles {
    /// Directories (paths without a leading or trailing slash) and their owner and mode.
    pub dirs: BTreeMap<String, Meta>,
    /// Every other path.
    pub others: BTreeSet<String>,
    /// Account files: content and owner/mode.
    pub accounts: BTreeMap<String, (Vec<u8>, Meta)>,
}

impl BaseFiles {
    /// Whether `path` exists.
    pub fn exists(&self, path: &str) -> bool {
        self.dirs.contains_key(path) || self.others.contains(path)
    }

    /// Record an entry of a layer (later layers call this after earlier ones). `content` is
    /// given for account files.
    pub fn add(&mut self, path: &str, is_dir: bool, meta: Meta, content: Option<Vec<u8>>) {
        self.remove(path, false);
        if is_dir {
            self.dirs.insert(path.to_owned(), meta);
        } else {
            self.others.insert(path.to_owned());
            if let Some(content) = content {
                self.accounts.insert(path.to_owned(), (content, meta));
            }
        }
    }

    /// Apply a whiteout: `path` and everything under it are gone (`only_children`: an opaque
    /// directory, whose own entry stays).
    pub fn remove(&mut self, path: &str, only_children: bool) {
        let under = format!("{path}/");
        let gone = |p: &String| p.starts_with(&under) || (!only_children && p == path);
        self.dirs.retain(|p, _| !gone(p));
        self.others.retain(|p| !gone(p));
        self.accounts.retain(|p, _| !gone(p));
    }
}

/// A tar entry path as a clean relative path: no leading `/` or `./`, no `.` components, no
/// trailing slash; `None` for the root itself. A `..` component is an error.
pub fn clean_path(raw: &[u8]) -> Result<Option<String>, String> {
    let text = std::str::from_utf8(raw).map_err(|_| format!("entry {:?}: path is not UTF-8", String::from_utf8_lossy(raw)))?;
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("entry `{text}` climbs out of the root (`..`)")),
            p => parts.push(p),
        }
    }
    Ok(if parts.is_empty() { None } else { Some(parts.join("/")) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_paths() {
        assert_eq!(clean_path(b"./etc/passwd").unwrap().as_deref(), Some("etc/passwd"));
        assert_eq!(clean_path(b"/usr//bin/").unwrap().as_deref(), Some("usr/bin"));
        assert_eq!(clean_path(b"./").unwrap(), None);
        assert!(clean_path(b"a/../../etc").is_err());
    }

    #[test]
    fn whiteouts_remove_trees() {
        let mut f = BaseFiles::default();
        f.add("etc", true, Meta::root(0o755), None);
        f.add("etc/passwd", false, Meta::root(0o644), Some(b"root:x:0:0::/root:/bin/sh\n".to_vec()));
        f.add("etc/x", false, Meta::root(0o644), None);
        f.remove("etc", true);
        assert!(f.exists("etc") && !f.exists("etc/passwd") && f.accounts.is_empty());
        f.remove("etc", false);
        assert!(!f.exists("etc"));
    }
}
