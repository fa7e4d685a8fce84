//! What the builder needs to know of a base's filesystem: which directories exist (and their
//! owners and modes, so the aibox layer never changes them), which other paths exist, and the
//! account files it extends (`/etc/passwd`, `/etc/group`, `/etc/shadow`).

use std::collections::{BTreeMap, BTreeSet};

use crate::layer::Meta;

/// The account files, by path.
pub const ACCOUNT_FILES: [&str; 4] = ["etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"];

/// Account files larger than this are not read.
pub const MAX_ACCOUNT_FILE: u64 = 4 << 20;

/// What an entry is, as far as the builder cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A symlink.
    Symlink,
    /// Anything else.
    Other,
}

impl Kind {
    /// The kind of a tar entry type.
    pub fn of(kind: tar::EntryType) -> Self {
        match kind {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        }
    }
}

/// A base's filesystem, as far as the builder looks.
#[derive(Debug, Clone, Default)]
pub struct BaseFiles {
    /// Directories (paths without a leading or trailing slash) and their owner and mode.
    pub dirs: BTreeMap<String, Meta>,
    /// Every other path (symlinks included).
    pub others: BTreeSet<String>,
    /// Symlinks and their targets.
    pub links: BTreeMap<String, String>,
    /// Account files: content and owner/mode.
    pub accounts: BTreeMap<String, (Vec<u8>, Meta)>,
}

impl BaseFiles {
    /// Whether `path` exists.
    pub fn exists(&self, path: &str) -> bool {
        self.dirs.contains_key(path) || self.others.contains(path)
    }

    /// Record an entry of a layer (later layers call this after earlier ones). `content` is
    /// given for account files, `link` for symlinks. A directory over a directory only changes
    /// its owner and mode; anything else replaces what was at the path, and below it.
    pub fn add(&mut self, path: &str, kind: Kind, meta: Meta, content: Option<Vec<u8>>, link: Option<String>) {
        if kind == Kind::Dir && self.dirs.contains_key(path) {
            self.dirs.insert(path.to_owned(), meta);
            return;
        }
        self.remove(path, false);
        match kind {
            Kind::Dir => {
                self.dirs.insert(path.to_owned(), meta);
            }
            Kind::Symlink | Kind::Other => {
                self.others.insert(path.to_owned());
                if let Some(link) = link {
                    self.links.insert(path.to_owned(), link);
                }
                if let Some(content) = content {
                    self.accounts.insert(path.to_owned(), (content, meta));
                }
            }
        }
    }

    /// The first of `path` and its ancestors that is a symlink in the base (writing there would
    /// go through it), with its target.
    pub fn symlink_on(&self, path: &str) -> Option<(&str, &str)> {
        let mut at = Some(path);
        let mut found = None;
        while let Some(p) = at {
            if let Some((k, v)) = self.links.get_key_value(p) {
                found = Some((k.as_str(), v.as_str()));
            }
            at = p.rsplit_once('/').map(|(parent, _)| parent);
        }
        found
    }

    /// Apply a whiteout: `path` and everything under it are gone (`only_children`: an opaque
    /// directory, whose own entry stays).
    pub fn remove(&mut self, path: &str, only_children: bool) {
        let under = format!("{path}/");
        // The root's opaque marker (`.wh..wh..opq` at the top) empties everything.
        let gone = |p: &String| path.is_empty() || p.starts_with(&under) || (!only_children && p == path);
        self.dirs.retain(|p, _| !gone(p));
        self.others.retain(|p| !gone(p));
        self.links.retain(|p, _| !gone(p));
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
        f.add("etc", Kind::Dir, Meta::root(0o755), None, None);
        f.add("etc/passwd", Kind::Other, Meta::root(0o644), Some(b"root:x:0:0::/root:/bin/sh\n".to_vec()), None);
        f.add("etc/x", Kind::Other, Meta::root(0o644), None, None);
        // A later layer's `etc/` entry keeps what is under it.
        f.add("etc", Kind::Dir, Meta::root(0o700), None, None);
        assert!(f.exists("etc/passwd") && f.dirs["etc"].mode == 0o700);
        f.remove("etc", true);
        assert!(f.exists("etc") && !f.exists("etc/passwd") && f.accounts.is_empty());
        f.remove("etc", false);
        assert!(!f.exists("etc"));
        f.add("opt", Kind::Symlink, Meta::root(0o777), None, Some("var/opt".into()));
        assert_eq!(f.symlink_on("opt/toolpacks/x"), Some(("opt", "var/opt")));
        f.remove("", true);
        assert!(!f.exists("opt"));
    }
}
