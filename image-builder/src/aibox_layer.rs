//! The layer `aibox: true` adds to a base: the `aibox` binary, `/etc/aibox` (configuration,
//! policy, trust keys), the user and its home, `/opt/toolpacks` owned by that user, and an
//! `/etc/profile.d` hook that puts installed packs on PATH in login shells.

use std::path::{Path, PathBuf};

use crate::accounts::{self, AccountFiles};
use crate::base_files::BaseFiles;
use crate::config::User;
use crate::error::{Error, Result};
use crate::layer::{LayerFile, Meta};
use crate::tree::{Item, Tree};

/// Where packs go inside images.
pub const TOOLPACKS: &str = "opt/toolpacks";

/// The login-shell hook.
pub const PROFILE_HOOK: &str = "# Added by aibox-image: what `aibox install` puts in /opt/toolpacks, on PATH in login shells.\nif [ -r /opt/toolpacks/env.sh ]; then\n  . /opt/toolpacks/env.sh\nfi\n";

/// What goes into the layer.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The `aibox` binary.
    pub binary: &'a Path,
    /// `/etc/aibox/config.yaml`.
    pub config_yaml: Vec<u8>,
    /// `/etc/aibox/policy.yaml`.
    pub policy: Option<&'a Path>,
    /// `/etc/aibox/keys/<file name>`.
    pub keys: &'a [PathBuf],
    /// The user.
    pub user: &'a User,
}

/// The written layer and what it did to the accounts.
#[derive(Debug)]
pub struct AiboxLayer {
    /// The layer.
    pub layer: LayerFile,
    /// Accounts removed because they held the user's uid.
    pub replaced: Vec<String>,
    /// The user's login shell.
    pub shell: String,
}

/// Write the aibox layer for a base whose filesystem is `base`.
pub fn write(base: &BaseFiles, inputs: &Inputs<'_>, out: &Path, mtime: u64) -> Result<AiboxLayer> {
    let shell = if base.exists("bin/bash") || base.exists("usr/bin/bash") { "/bin/bash" } else { "/bin/sh" };
    let AccountFiles { files, replaced } = accounts::add_user(base, inputs.user, shell)?;
    let owner = Meta { mode: 0o755, uid: u64::from(inputs.user.uid), gid: u64::from(inputs.user.uid) };
    let mut tree = Tree::default();
    for (path, content, meta) in files {
        tree.put(base, path, Item::File(meta, content))?;
    }
    tree.put(base, &format!("home/{}", inputs.user.name), Item::Dir(owner))?;
    tree.put(base, TOOLPACKS, Item::Dir(owner))?;
    tree.put(base, "usr/local/bin/aibox", Item::HostFile(Meta::root(0o755), inputs.binary.to_owned()))?;
    tree.put(base, "etc/profile.d/aibox.sh", Item::File(Meta::root(0o644), PROFILE_HOOK.as_bytes().to_vec()))?;
    tree.put(base, "etc/aibox", Item::Dir(Meta::root(0o755)))?;
    tree.put(base, "etc/aibox/config.yaml", Item::File(Meta::root(0o644), inputs.config_yaml.clone()))?;
    if let Some(policy) = inputs.policy {
        tree.put(base, "etc/aibox/policy.yaml", Item::HostFile(Meta::root(0o644), policy.to_owned()))?;
    }
    if !inputs.keys.is_empty() {
        tree.put(base, "etc/aibox/keys", Item::Dir(Meta::root(0o755)))?;
    }
    let mut seen = std::collections::BTreeSet::new();
    for key in inputs.keys {
        let name = key_file_name(key)?;
        if !seen.insert(name.clone()) {
            return Err(Error::ImagesFile { path: key.clone(), message: format!("base.keys: two keys are named `{name}`; they would overwrite each other in /etc/aibox/keys") });
        }
        tree.put(base, &format!("etc/aibox/keys/{name}"), Item::HostFile(Meta::root(0o644), key.clone()))?;
    }
    Ok(AiboxLayer { layer: tree.write(out, mtime)?, replaced, shell: shell.to_owned() })
}

/// The name a key file gets in `/etc/aibox/keys`.
pub fn key_file_name(key: &Path) -> Result<String> {
    key.file_name().and_then(|n| n.to_str()).map(str::to_owned).ok_or_else(|| Error::ImagesFile { path: key.to_owned(), message: "base.keys: not a file name".into() })
}
