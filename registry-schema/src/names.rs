//! Validated names used in pack manifests: pack names and dependency requirements.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a name or requirement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The pack name does not match `^[a-z][a-z0-9-]*$`.
    #[error("invalid pack name `{0}`: expected lowercase letters, digits and `-`, starting with a letter (^[a-z][a-z0-9-]*$)")]
    PackName(String),
    /// The version is not semver.
    #[error("invalid version `{value}`: expected a semantic version such as 1.2.3 ({reason})")]
    Version {
        /// What was given.
        value: String,
        /// What the semver parser said.
        reason: String,
    },
    /// A dependency requirement is malformed.
    #[error("invalid requirement `{value}`: expected NAME or NAME@VERSION such as node@20 ({reason})")]
    Requirement {
        /// What was given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

/// A pack name: `^[a-z][a-z0-9-]*$`, at most 128 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackName(String);

impl PackName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PackName {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, NameError> {
        let mut chars = value.chars();
        let ok = value.len() <= 128
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok { Ok(Self(value)) } else { Err(NameError::PackName(value)) }
    }
}

impl FromStr for PackName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::try_from(s.to_owned())
    }
}

impl From<PackName> for String {
    fn from(name: PackName) -> String {
        name.0
    }
}

impl fmt::Display for PackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for PackName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PackName".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[a-z][a-z0-9-]*$",
            "maxLength": 128,
            "description": "Pack name: lowercase letters, digits and `-`, starting with a letter."
        })
    }
}

/// A dependency on another pack: `node`, `node@20`, `node@20.11`, `node@20.11.1`.
///
/// The part after `@` is a version prefix: `@20` matches the newest `20.x.y`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Requirement {
    /// The pack depended on.
    pub name: PackName,
    /// The version prefix, if any (`20`, `20.11`, `20.11.1`).
    pub version: Option<String>,
}

impl TryFrom<String> for Requirement {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, NameError> {
        let fail = |reason: &str| NameError::Requirement { value: value.clone(), reason: reason.to_owned() };
        let (name, version) = match value.split_once('@') {
            Some((n, v)) => (n, Some(v)),
            None => (value.as_str(), None),
        };
        let name = PackName::from_str(name).map_err(|e| fail(&e.to_string()))?;
        if let Some(v) = version {
            let parts: Vec<&str> = v.split('.').collect();
            let numeric = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
            if parts.len() > 3 || !parts.iter().all(numeric) {
                return Err(fail("the version must be MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH"));
            }
        }
        Ok(Self { name, version: version.map(str::to_owned) })
    }
}

impl From<Requirement> for String {
    fn from(r: Requirement) -> String {
        r.to_string()
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

impl JsonSchema for Requirement {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Requirement".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[a-z][a-z0-9-]*(@[0-9]+(\\.[0-9]+){0,2})?$",
            "description": "A pack this one needs: NAME or NAME@VERSION-PREFIX, e.g. node@20."
        })
    }
}

/// Parse a semantic version, with the error aibox shows.
pub fn parse_version(value: &str) -> Result<semver::Version, NameError> {
    semver::Version::parse(value)
        .map_err(|e| NameError::Version { value: value.to_owned(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_names() {
        assert!(PackName::from_str("java").is_ok());
        assert!(PackName::from_str("filesystem-mcp").is_ok());
        assert!(PackName::from_str("a1").is_ok());
        for bad in ["", "Java", "1java", "-x", "ja_va", "ja.va", "ja/va"] {
            assert!(PackName::from_str(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn requirements() {
        let r = Requirement::try_from("node@20".to_owned()).unwrap();
        assert_eq!(r.name.as_str(), "node");
        assert_eq!(r.version.as_deref(), Some("20"));
        assert!(Requirement::try_from("node".to_owned()).unwrap().version.is_none());
        assert!(Requirement::try_from("node@20.1.2".to_owned()).is_ok());
        for bad in ["node@", "node@x", "node@1.2.3.4", "Node@20", "node@20-rc"] {
            assert!(Requirement::try_from(bad.to_owned()).is_err(), "{bad} accepted");
        }
    }
}
