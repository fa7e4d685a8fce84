//! `images.yaml`: where images go, where packs come from, the base, and the variants.
//!
//! ```yaml
//! registry: docker://harbor.internal/aibox        # where images go
//! store: docker://harbor.internal/toolpacks       # where packs come from
//! source: https://git.internal/platform/aibox     # org.opencontainers.image.source (optional)
//! base:
//!   name: aibox-base
//!   tag: "24.04"
//!   rootfs: ./ubuntu-24.04-rootfs.tar             # or image: docker://harbor.internal/library/ubuntu:24.04
//!   aibox: true                                   # or a path to the aibox binary; false: the rootfs as it is
//!   policy: ./policy.yaml                         # becomes /etc/aibox/policy.yaml
//!   keys: [./toolpacks.pub]                       # become /etc/aibox/keys/<file name>
//! variants:
//!   - name: aibox-java
//!     tag: "21-24.04"
//!     packs: [java@21]
//! ```
//!
//! Relative paths are relative to the file. Unknown keys are errors.

use std::path::{Path, PathBuf};

use aibox_pkgmgr::resolve::PackSpec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesFile {
    /// Where images are pushed (`docker://HOST/NAMESPACE`, or `oci:DIR`).
    pub registry: String,
    /// Where packs come from.
    pub store: String,
    /// `org.opencontainers.image.source` of every image.
    #[serde(default)]
    pub source: Option<String>,
    /// The base image.
    pub base: Base,
    /// Images made of the base plus packs.
    #[serde(default)]
    pub variants: Vec<Variant>,
}

/// `base`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    /// Repository name under `registry`.
    pub name: String,
    /// Tag (a date-stamped one is pushed too).
    pub tag: String,
    /// A tar of the root filesystem (plain, gzip or zstd).
    #[serde(default)]
    pub rootfs: Option<PathBuf>,
    /// An existing image whose layers are reused (`docker://HOST/NS/NAME:TAG`, `oci:DIR:NAME:TAG`).
    #[serde(default)]
    pub image: Option<String>,
    /// `true` (default): add aibox (the binary beside `aibox-image`), its policy, keys and
    /// configuration, the user and `/opt/toolpacks`; a path: that aibox binary; `false`: nothing.
    #[serde(default)]
    pub aibox: Aibox,
    /// Becomes `/etc/aibox/policy.yaml`; packs baked into variants are checked against it
    /// (with `aibox: false`, it is only used for that).
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// Become `/etc/aibox/keys/<file name>`.
    #[serde(default)]
    pub keys: Vec<PathBuf>,
    /// Becomes `/etc/aibox/config.yaml` (default: one naming `store`).
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// The user images run as.
    #[serde(default)]
    pub user: User,
    /// The command images run by default (default: the base image's, else a login shell).
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
}

/// `base.aibox`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Aibox {
    /// `true`: the `aibox` beside this program (or on PATH); `false`: no aibox layer.
    Enabled(bool),
    /// The `aibox` binary to put in `/usr/local/bin`.
    Binary(PathBuf),
}

impl Default for Aibox {
    fn default() -> Self {
        Aibox::Enabled(true)
    }
}

impl Aibox {
    /// Whether the aibox layer is added.
    pub fn enabled(&self) -> bool {
        !matches!(self, Aibox::Enabled(false))
    }
}

/// `base.user`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Account name.
    #[serde(default = "default_user")]
    pub name: String,
    /// uid, also the gid of its group.
    #[serde(default = "default_uid")]
    pub uid: u32,
}

fn default_user() -> String {
    "dev".into()
}

fn default_uid() -> u32 {
    1000
}

impl Default for User {
    fn default() -> Self {
        Self { name: default_user(), uid: default_uid() }
    }
}

/// One variant.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Repository name under `registry`.
    pub name: String,
    /// Tag.
    pub tag: String,
    /// Packs baked in (`java@21`); their dependencies come too.
    pub packs: Vec<String>,
}

impl ImagesFile {
    /// Read and check `path`; relative paths in it become relative to its directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io("cannot read", path))?;
        let invalid = |message: String| Error::ImagesFile { path: path.to_owned(), message };
        let mut file: ImagesFile = serde_saphyr::from_str(&text).map_err(|e| invalid(aibox_pkgmgr::error::yaml_error(&e)))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        file.base.resolve_paths(dir);
        file.check().map_err(invalid)?;
        Ok(file)
    }

    /// The rules a file must follow (every message names the field).
    fn check(&self) -> Result<(), String> {
        aibox_pkgmgr::StoreLocation::parse(&self.registry).map_err(|e| format!("registry: {e}"))?;
        aibox_pkgmgr::StoreLocation::parse(&self.store).map_err(|e| format!("store: {e}"))?;
        let base = &self.base;
        match (&base.rootfs, &base.image) {
            (Some(_), Some(_)) => return Err("base: give `rootfs` or `image`, not both".into()),
            (None, None) => return Err("base: give `rootfs` (a tar of the root filesystem) or `image` (an existing image)".into()),
            _ => {}
        }
        if let Some(image) = &base.image {
            aibox_pkgmgr::PackRef::parse(image).map_err(|e| format!("base.image: {e}"))?;
        }
        if !base.aibox.enabled() && base.config.is_some() {
            return Err("base.config goes into the aibox layer; with `aibox: false` there is none".into());
        }
        if !self.variants.is_empty() && base.policy.is_none() {
            return Err("base.policy: variants need a policy (with the keys that trust `store`): packs baked in are verified against it, as `aibox install` would".into());
        }
        if base.user.name.is_empty() || !base.user.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') || base.user.uid == 0 {
            return Err(format!("base.user: `{}` (uid {}) is not a plain account name with a non-zero uid", base.user.name, base.user.uid));
        }
        let mut names = vec![base.name.as_str()];
        check_image("base", &base.name, &base.tag)?;
        for (i, v) in self.variants.iter().enumerate() {
            let field = format!("variants[{i}]");
            check_image(&field, &v.name, &v.tag)?;
            if names.contains(&v.name.as_str()) {
                return Err(format!("{field}.name: `{}` is used twice (each image has its own repository)", v.name));
            }
            names.push(&v.name);
            if v.packs.is_empty() {
                return Err(format!("{field}.packs: a variant bakes at least one pack"));
            }
            for p in &v.packs {
                p.parse::<PackSpec>().map_err(|e| format!("{field}.packs: {e}"))?;
            }
        }
        Ok(())
    }
}

impl Base {
    fn resolve_paths(&mut self, dir: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        for p in self.rootfs.iter_mut().chain(self.policy.iter_mut()).chain(self.config.iter_mut()).chain(self.keys.iter_mut()) {
            join(p);
        }
        if let Aibox::Binary(p) = &mut self.aibox {
            join(p);
        }
    }
}

/// An image name is a repository path component; a tag must leave room for `-YYYYMMDD`.
fn check_image(field: &str, name: &str, tag: &str) -> Result<(), String> {
    name.parse::<aibox_schema::PackName>().map_err(|e| format!("{field}.name: {e}"))?;
    let tag_ok = !tag.is_empty()
        && tag.len() <= 128 - 9
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !tag.starts_with(['.', '-']);
    if !tag_ok {
        return Err(format!("{field}.tag: `{tag}` is not a tag (1-119 of [A-Za-z0-9._-], not starting with . or -)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<ImagesFile> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.yaml");
        std::fs::write(&path, text).unwrap();
        ImagesFile::load(&path)
    }

    const GOOD: &str = "registry: docker://r/aibox\nstore: docker://r/toolpacks\nbase:\n  name: aibox-base\n  tag: \"24.04\"\n  rootfs: ./root.tar\n  policy: ./policy.yaml\nvariants:\n  - name: aibox-java\n    tag: 21-24.04\n    packs: [java@21]\n";

    #[test]
    fn reads_the_minimal_form() {
        let f = load(GOOD).unwrap();
        assert!(f.base.rootfs.unwrap().ends_with("root.tar"));
        assert_eq!(f.base.aibox, Aibox::Enabled(true));
        assert_eq!(f.base.user, User::default());
        assert_eq!(f.variants[0].packs, ["java@21"]);
    }

    #[test]
    fn names_what_is_wrong() {
        let cases = [
            (GOOD.replace("  rootfs: ./root.tar\n", ""), "give `rootfs`"),
            (GOOD.replace("  rootfs: ./root.tar\n", "  rootfs: a\n  image: docker://r/x/u:1\n"), "not both"),
            (GOOD.replace("java@21", "Java@21"), "variants[0].packs"),
            (GOOD.replace("21-24.04", "-bad"), "variants[0].tag"),
            (GOOD.replace("aibox-java", "aibox-base"), "used twice"),
            (GOOD.replace("  policy: ./policy.yaml\n", ""), "base.policy"),
            (GOOD.replace("registry:", "registri:"), "unknown field"),
            (GOOD.replace("store: docker://r/toolpacks", "store: s3://x"), "store:"),
        ];
        for (text, expected) in cases {
            let err = load(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}

#[cfg(test)]
mod shipped {
    use std::path::Path;

    /// The production images.yaml and its policy are valid as shipped.
    #[test]
    fn production_files_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let file = super::ImagesFile::load(&dir.join("images.yaml")).unwrap();
        let names: Vec<&str> = std::iter::once(file.base.name.as_str()).chain(file.variants.iter().map(|v| v.name.as_str())).collect();
        assert_eq!(names, ["aibox-base", "aibox-java", "aibox-node", "aibox-full"]);
        let policy = aibox_pkgmgr::policy::Policy::load(&dir.join("policy.yaml")).unwrap();
        assert!(policy.exists && !policy.file.trust.is_empty());
    }
}
