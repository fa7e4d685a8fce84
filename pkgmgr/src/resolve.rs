//! What users ask for (`java`, `java@21`, `java@21.0`, `java@21.0.2`, `java@latest`,
//! `java@sha256:...`) and which published tag satisfies it.
//!
//! `@21` means the highest published `21.x.y` that is not a pre-release, in semver order (never
//! string order). Pre-releases are chosen only when asked for exactly. Tags write semver `+` as
//! `_`. Tags that are not versions (signatures, `latest`) are ignored, except that `@latest`
//! takes a `latest` tag when the store has one.

use std::fmt;
use std::str::FromStr;

use aibox_schema::PackName;
use aibox_schema::PackManifest;
use oci_client::manifest::OciImageManifest;
use semver::Version;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::{self, Store};

/// Pack manifests (config blobs) larger than this are refused.
const MAX_CONFIG: u64 = 4 << 20;

/// What was asked for after `@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionReq {
    /// Nothing or `@latest`: the newest release.
    Latest,
    /// `@21`, `@21.0`: the newest release with these leading components.
    Prefix(Vec<u64>),
    /// `@21.0.2`, `@1.0.0-rc.1`, `@1.0.0+b1`: exactly this version.
    Exact(Version),
    /// `@sha256:...`: exactly this manifest.
    Digest(Digest),
}

/// A pack request: `name[@version]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackSpec {
    /// The pack.
    pub name: PackName,
    /// Which version.
    pub req: VersionReq,
}

impl FromStr for PackSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidReference { reference: s.to_owned(), reason };
        let (name, version) = match s.split_once('@') {
            Some((n, v)) => (n, Some(v)),
            None => (s, None),
        };
        let name: PackName = name.parse().map_err(|e: aibox_schema::NameError| invalid(e.to_string()))?;
        let req = match version {
            None | Some("latest") => VersionReq::Latest,
            Some(v) if v.starts_with("sha256:") => VersionReq::Digest(v.parse().map_err(invalid)?),
            Some(v) => parse_version_req(v).ok_or_else(|| invalid("expected NAME, NAME@MAJOR[.MINOR[.PATCH]], NAME@latest or NAME@sha256:...".into()))?,
        };
        Ok(Self { name, req })
    }
}

fn parse_version_req(v: &str) -> Option<VersionReq> {
    if let Ok(exact) = Version::parse(&v.replace('_', "+")) {
        return Some(VersionReq::Exact(exact));
    }
    let parts: Vec<u64> = v.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    (1..=2).contains(&parts.len()).then_some(VersionReq::Prefix(parts))
}

impl fmt::Display for PackSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.req {
            VersionReq::Latest => write!(f, "{}", self.name),
            VersionReq::Prefix(p) => write!(f, "{}@{}", self.name, p.iter().map(u64::to_string).collect::<Vec<_>>().join(".")),
            VersionReq::Exact(v) => write!(f, "{}@{v}", self.name),
            VersionReq::Digest(d) => write!(f, "{}@{d}", self.name),
        }
    }
}

impl VersionReq {
    /// From a `depends` entry's version prefix (`20`, `20.11`, `20.11.1`).
    pub fn from_dependency(version: Option<&str>) -> Self {
        version.and_then(parse_version_req).unwrap_or(VersionReq::Latest)
    }

    /// Whether `version` satisfies this request (digests are matched by the caller).
    pub fn matches(&self, version: &Version) -> bool {
        match self {
            VersionReq::Latest => version.pre.is_empty(),
            VersionReq::Prefix(p) => version.pre.is_empty() && [version.major, version.minor].iter().zip(p).all(|(a, b)| a == b),
            VersionReq::Exact(v) => version == v,
            VersionReq::Digest(_) => false,
        }
    }
}

/// Pick the tag that best satisfies `req` among `tags`: the highest matching version.
pub fn select_tag<'a>(req: &VersionReq, tags: &'a [String]) -> Option<&'a str> {
    let best = tags
        .iter()
        .filter_map(|t| Version::parse(&t.replace('_', "+")).ok().map(|v| (v, t.as_str())))
        .filter(|(v, _)| req.matches(v))
        .max_by(|(a, _), (b, _)| a.cmp(b).then_with(|| a.build.cmp(&b.build)));
    match best {
        Some((_, t)) => Some(t),
        None if *req == VersionReq::Latest => tags.iter().find(|t| *t == "latest").map(String::as_str),
        None => None,
    }
}

/// The tag (or digest) of pack `spec.name` in `store` that satisfies `spec`, or an error that
/// lists what is published.
pub async fn find_target(store: &dyn Store, spec: &PackSpec) -> Result<String> {
    let name = spec.name.as_str();
    let req = match &spec.req {
        VersionReq::Digest(d) => return Ok(d.to_string()),
        req => req,
    };
    let tags = store.list_tags(name).await?;
    if tags.is_empty() {
        return Err(Error::Resolve(format!("no pack `{name}` in {}", store.location())));
    }
    select_tag(req, &tags).map(str::to_owned).ok_or_else(|| {
        let mut versions: Vec<Version> = tags.iter().filter_map(|t| Version::parse(&t.replace('_', "+")).ok()).collect();
        versions.sort();
        let list = versions.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        Error::Resolve(format!("no version of `{name}` matches `{spec}` in {} (published: {list})", store.location()))
    })
}

/// The pack manifest (config blob, digest-checked and validated) of `name` at `target`, which
/// must name that pack.
pub async fn read_pack_manifest(store: &dyn Store, name: &str, target: &str, manifest: &OciImageManifest) -> Result<PackManifest> {
    let corrupt = |reason: String| Error::Corrupt { store: store.location().to_string(), reason };
    let config: Digest = manifest.config.digest.parse().map_err(corrupt)?;
    let bytes = store::read_blob(store, name, &config, MAX_CONFIG).await?;
    let pack = PackManifest::from_config_json(&bytes).map_err(|e| corrupt(format!("{name}:{target} is not an aibox pack: {e}")))?;
    if pack.name.as_str() != name {
        return Err(corrupt(format!("{name}:{target} contains pack `{}`", pack.name)));
    }
    Ok(pack)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_specs() {
        let s: PackSpec = "java@21".parse().unwrap();
        assert_eq!(s.req, VersionReq::Prefix(vec![21]));
        assert_eq!("java@21.0".parse::<PackSpec>().unwrap().req, VersionReq::Prefix(vec![21, 0]));
        assert_eq!("java@21.0.2".parse::<PackSpec>().unwrap().req, VersionReq::Exact(Version::new(21, 0, 2)));
        assert_eq!("java".parse::<PackSpec>().unwrap().req, VersionReq::Latest);
        assert_eq!("java@latest".parse::<PackSpec>().unwrap().req, VersionReq::Latest);
        assert!(matches!("java@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse::<PackSpec>().unwrap().req, VersionReq::Digest(_)));
        for bad in ["Java@21", "java@", "java@x", "java@1.2.3.4", "java@sha256:abc", ""] {
            assert!(bad.parse::<PackSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn resolution_table() {
        let published = tags(&["1.9.0", "1.10.0", "1.10.1-rc.1", "2.0.0-beta.1", "1.2.3_build.5", "1.2.3", "sha256-abc.sig", "latest", "21.0.2", "21.0.10", "21.1.0", "20.5.0"]);
        let cases: &[(&str, Option<&str>)] = &[
            ("p", Some("21.1.0")),
            ("p@latest", Some("21.1.0")),
            ("p@1", Some("1.10.0")),              // semver order, not string order; no pre-release
            ("p@1.9", Some("1.9.0")),
            ("p@1.10.1-rc.1", Some("1.10.1-rc.1")), // pre-release only when asked exactly
            ("p@2", None),                         // only a pre-release exists
            ("p@2.0.0-beta.1", Some("2.0.0-beta.1")),
            ("p@1.2.3", Some("1.2.3")),
            ("p@1.2.3+build.5", Some("1.2.3_build.5")),
            ("p@21", Some("21.1.0")),
            ("p@21.0", Some("21.0.10")),
            ("p@22", None),
        ];
        for (spec, expected) in cases {
            let spec: PackSpec = spec.parse().unwrap();
            assert_eq!(select_tag(&spec.req, &published), *expected, "{spec}");
        }
        assert_eq!(select_tag(&VersionReq::Latest, &tags(&["latest", "sha256-x.sig"])), Some("latest"));
    }
}
