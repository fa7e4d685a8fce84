//! References to one pack in a store, as users write them:
//! `docker://HOST/NAMESPACE/NAME:TAG`, `...NAME@sha256:...`, and for layouts and archives the
//! skopeo form `oci:DIR:NAME:TAG` / `oci-archive:FILE:NAME@sha256:...`.

use std::fmt;

use crate::error::{Error, Result};
use crate::store::StoreLocation;

/// A pack in a store, at an optional tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackRef {
    /// The store.
    pub store: StoreLocation,
    /// The pack (repository) name.
    pub name: String,
    /// Tag or `sha256:` digest; `None` when not given.
    pub target: Option<String>,
}

impl PackRef {
    /// Parse a pack reference.
    pub fn parse(s: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidReference { reference: s.to_owned(), reason: reason.to_owned() };
        let (store, rest) = if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (path, pack) = rest.split_once(':').ok_or_else(|| invalid("expected oci-archive:FILE:NAME[:TAG]"))?;
            (StoreLocation::parse(&format!("oci-archive:{path}"))?, pack)
        } else if let Some(rest) = s.strip_prefix("oci:") {
            let (path, pack) = rest.split_once(':').ok_or_else(|| invalid("expected oci:DIR:NAME[:TAG]"))?;
            (StoreLocation::parse(&format!("oci:{path}"))?, pack)
        } else {
            let (store, pack) = s.rsplit_once('/').ok_or_else(|| invalid("expected docker://HOST/NAMESPACE/NAME[:TAG]"))?;
            // Checked as the store will be shown (trailing `/` dropped): `h/ns:/NAME` would
            // print as `docker://h/ns:/NAME`, which is refused here.
            let store = store.trim_end_matches('/');
            if store.ends_with(':') || store.is_empty() {
                return Err(invalid("expected docker://HOST/NAMESPACE/NAME[:TAG]"));
            }
            (StoreLocation::parse(store)?, pack)
        };
        let (name, target) = if let Some((n, d)) = rest.split_once('@') {
            d.parse::<crate::digest::Digest>().map_err(|e| invalid(&e))?;
            (n, Some(d.to_owned()))
        } else if let Some((n, t)) = rest.split_once(':') {
            if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) || t.len() > 128 {
                return Err(invalid("a tag is 1-128 of [A-Za-z0-9._-]"));
            }
            (n, Some(t.to_owned()))
        } else {
            (rest, None)
        };
        name.parse::<aibox_schema::PackName>().map_err(|e| invalid(&e.to_string()))?;
        Ok(Self { store, name: name.to_owned(), target })
    }

    /// The tag or digest, or fail naming what is missing.
    pub fn require_target(&self) -> Result<&str> {
        self.target.as_deref().ok_or_else(|| Error::InvalidReference {
            reference: self.to_string(),
            reason: "give a version tag (NAME:1.0.0) or a digest (NAME@sha256:...)".into(),
        })
    }
}

impl fmt::Display for PackRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Some(t) => f.write_str(&self.store.pack_display(&self.name, t)),
            None => match &self.store {
                StoreLocation::Registry { .. } => write!(f, "{}/{}", self.store, self.name),
                _ => write!(f, "{}:{}", self.store, self.name),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = PackRef::parse("docker://127.0.0.1:5000/toolpacks/hello:1.0.0").unwrap();
        assert_eq!(r.store.to_string(), "docker://127.0.0.1:5000/toolpacks");
        assert_eq!((r.name.as_str(), r.target.as_deref()), ("hello", Some("1.0.0")));
        assert_eq!(r.to_string(), "docker://127.0.0.1:5000/toolpacks/hello:1.0.0");

        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = PackRef::parse(&format!("oci:./out:hello@{d}")).unwrap();
        assert_eq!(r.store, StoreLocation::Layout("./out".into()));
        assert_eq!(r.target.as_deref(), Some(d));

        let r = PackRef::parse("harbor.internal/toolpacks/java").unwrap();
        assert_eq!(r.target, None);
        assert!(r.require_target().is_err());

        for bad in ["hello", "docker://hello", "oci:./out", "docker://h/ns/Hello:1", "docker://h/ns/hello@sha256:12", "docker://h/ns/hello:"] {
            assert!(PackRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn what_parses_prints_back_to_itself() {
        // Found by fuzzing (fuzz/fuzz_targets/reference.rs): a store ending in `:/` parsed, but
        // printed as `...:/NAME`, which did not.
        for bad in ["h/ns:/x", "h/ns://x", "docker://h/ns:/x", "docker://h:/x", "docker:///x"] {
            assert!(PackRef::parse(bad).is_err(), "{bad}");
        }
        for good in ["h/ns//x", "docker://h//x:1", "localhost:5000/x", "oci:-archive:y@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"] {
            let r = PackRef::parse(good).unwrap();
            assert_eq!(PackRef::parse(&r.to_string()).unwrap(), r, "{good}");
        }
    }
}
