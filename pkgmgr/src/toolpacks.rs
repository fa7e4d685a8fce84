//! The toolpacks directory (`/opt/toolpacks`): installed pack trees, the `current` links,
//! `env.sh`, and aibox's own state under `.aibox/`.
//!
//! ```text
//! /opt/toolpacks/
//! ├── env.sh                     # sourced by shells: PATH and env of every installed pack
//! ├── hello/
//! │   ├── 1.0.0/                 # the pack tree
//! │   └── current -> 1.0.0
//! └── .aibox/
//!     ├── state.json             # what is installed, by digest (the source of truth)
//!     ├── lock                   # held by every command that changes anything
//!     ├── staging/               # extraction in progress (same filesystem: rename is atomic)
//!     └── cache/                 # blobs/sha256/<hex> (layers), trees/<hex> (hardlinked trees)
//! ```
//!
//! `state.json` is written atomically; the `current` links and `env.sh` are derived from it and
//! re-derived by every changing command, so a crash at any point leaves the old state or the
//! new one, and the next run repairs links and env.sh.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use aibox_schema::manifest::is_env_name;
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};

/// One installed pack, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstalledPack {
    /// Installed version.
    pub version: String,
    /// Manifest digest.
    pub digest: String,
    /// The store it came from.
    pub store: String,
    /// What the user asked for (`java@21`); `update` re-resolves it. `None` for dependencies.
    #[serde(default)]
    pub requested: Option<String>,
    /// Fingerprint of the key whose signature verified.
    pub signer: String,
    /// The `docker-reference` the signature names (where it was signed).
    pub signed_as: String,
    /// Layer digest.
    pub layer: String,
    /// Bytes of file content.
    pub size: u64,
    /// Entries in the layer.
    pub entries: u64,
    /// RFC 3339 install time.
    pub installed_at: String,
    /// Packs this one depends on (`node@20`).
    #[serde(default)]
    pub depends: Vec<String>,
    /// Dirs on PATH, relative to the pack root.
    #[serde(default)]
    pub path: Vec<String>,
    /// Environment, values may use `${PACK_ROOT}`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Cache volumes: name → path.
    #[serde(default)]
    pub caches: BTreeMap<String, String>,
    /// The pack's manifest as verified at install (what `aibox mcp` renders MCP servers from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<aibox_schema::PackManifest>,
}

/// `state.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Format version.
    #[serde(default = "state_version")]
    pub version: u32,
    /// Installed packs by name.
    #[serde(default)]
    pub packs: BTreeMap<String, InstalledPack>,
}

impl State {
    /// `state.json` as written (also by the image builder, into variant images).
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("state serializes");
        bytes.push(b'\n');
        bytes
    }
}

fn state_version() -> u32 {
    1
}

/// The toolpacks directory.
#[derive(Debug, Clone)]
pub struct Toolpacks {
    root: PathBuf,
}

/// Proof that the lock is held; released on drop.
pub struct LockGuard {
    _file: File,
}

impl Toolpacks {
    /// A toolpacks directory at `root` (created on first change). Made absolute: env.sh and
    /// agent configs name paths inside it.
    pub fn new(root: &Path) -> Self {
        Self { root: std::path::absolute(root).unwrap_or_else(|_| root.to_owned()) }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn meta(&self) -> PathBuf {
        self.root.join(".aibox")
    }

    /// Where pack `name` at `version` is installed.
    pub fn pack_dir(&self, name: &str, version: &str) -> PathBuf {
        self.root.join(name).join(version)
    }

    /// The stable path of pack `name` (through its `current` link).
    pub fn current(&self, name: &str) -> PathBuf {
        self.root.join(name).join("current")
    }

    /// The install cache (layer blobs and unpacked trees).
    pub fn cache(&self) -> crate::cache::Cache {
        crate::cache::Cache::new(self.meta().join("cache"))
    }

    /// Take the lock every changing command holds (blocks while another process has it), and
    /// remove staging left by a process that died.
    pub fn lock(&self) -> Result<LockGuard> {
        let meta = self.meta();
        fs::create_dir_all(meta.join("staging")).map_err(Error::io("cannot create", &meta))?;
        let path = meta.join("lock");
        let file = File::options().create(true).truncate(false).write(true).open(&path).map_err(Error::io("cannot open", &path))?;
        file.lock().map_err(Error::io("cannot lock", &path))?;
        if let Ok(entries) = fs::read_dir(meta.join("staging")) {
            for e in entries.flatten() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        Ok(LockGuard { _file: file })
    }

    /// A fresh staging directory (same filesystem as the packs, so activation is a rename).
    pub fn staging(&self, _lock: &LockGuard, name: &str) -> Result<tempfile::TempDir> {
        let dir = self.meta().join("staging");
        tempfile::Builder::new().prefix(&format!("{name}-")).tempdir_in(&dir).map_err(Error::io("cannot create staging in", &dir))
    }

    /// Read the state (empty when nothing is installed).
    pub fn state(&self) -> Result<State> {
        let path = self.meta().join("state.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt { store: path.display().to_string(), reason: format!("state does not parse: {e}") }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State { version: 1, packs: BTreeMap::new() }),
            Err(e) => Err(Error::io("cannot read", path)(e)),
        }
    }

    /// Write the state atomically.
    pub fn save_state(&self, _lock: &LockGuard, state: &State) -> Result<()> {
        write_atomic(&self.meta().join("state.json"), &state.to_json())
    }

    /// Move a finished staging tree to its version directory (replacing a stale one).
    pub fn place(&self, _lock: &LockGuard, staging: tempfile::TempDir, name: &str, version: &str) -> Result<()> {
        let target = self.pack_dir(name, version);
        let parent = target.parent().expect("pack dir has a parent");
        fs::create_dir_all(parent).map_err(Error::io("cannot create", parent))?;
        if target.exists() {
            // The same version again (`--force`), or a tree an interrupted run left: move it
            // aside (staging is cleaned by the next run) so the swap is two renames, not a delete.
            let aside = self.meta().join("staging").join(format!("{name}-{version}-replaced-{}", std::process::id()));
            let _ = fs::remove_dir_all(&aside);
            fs::rename(&target, &aside).map_err(Error::io("cannot move aside", &target))?;
        }
        let staged = staging.keep();
        fs::set_permissions(&staged, std::os::unix::fs::PermissionsExt::from_mode(0o755)).map_err(Error::io("cannot set mode of", &staged))?;
        fs::rename(&staged, &target).map_err(Error::io("cannot move into place", &target))?;
        // A new pack gets its `current` link before the state names it: a run killed after
        // writing the state never leaves an installed pack without one (MCP servers and
        // commands resolve through it). `sync_to_state` removes it with the tree otherwise.
        let link = self.current(name);
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(version, &link).map_err(Error::io("cannot create", &link))?;
        }
        Ok(())
    }

    /// Make links, env.sh and version directories match `state`: flip each `current` link,
    /// rewrite env.sh, remove versions and packs the state no longer has.
    pub fn sync_to_state(&self, _lock: &LockGuard, state: &State) -> Result<()> {
        for (name, pack) in &state.packs {
            let link = self.current(name);
            if fs::read_link(&link).ok().as_deref() != Some(Path::new(&pack.version)) {
                let tmp = self.root.join(name).join(".current.tmp");
                let _ = fs::remove_file(&tmp);
                std::os::unix::fs::symlink(&pack.version, &tmp).map_err(Error::io("cannot create", &tmp))?;
                fs::rename(&tmp, &link).map_err(Error::io("cannot update", &link))?;
            }
        }
        write_atomic(&self.root.join("env.sh"), self.env_script(state, Shell::Posix).as_bytes())?;
        // Remove what the state no longer names: old versions, uninstalled packs.
        let Ok(entries) = fs::read_dir(&self.root) else { return Ok(()) };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "env.sh" || !entry.path().is_dir() || aibox_schema::PackName::try_from(name.clone()).is_err() {
                continue;
            }
            match state.packs.get(&name) {
                None => {
                    // Only what aibox made: a `current` link and version directories.
                    let ours = fs::read_dir(entry.path()).into_iter().flatten().flatten().all(|c| {
                        let n = c.file_name().to_string_lossy().into_owned();
                        n == "current" || n == ".current.tmp" || (semver::Version::parse(&n).is_ok() && c.path().is_dir())
                    });
                    if ours {
                        fs::remove_dir_all(entry.path()).map_err(Error::io("cannot remove", entry.path()))?;
                    }
                }
                Some(pack) => {
                    for version in fs::read_dir(entry.path()).into_iter().flatten().flatten() {
                        let v = version.file_name().to_string_lossy().into_owned();
                        if v != pack.version && v != "current" && version.path().is_dir() && semver::Version::parse(&v).is_ok() {
                            fs::remove_dir_all(version.path()).map_err(Error::io("cannot remove", version.path()))?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The environment the installed packs add, for `shell`.
    pub fn env_script(&self, state: &State, shell: Shell) -> String {
        let mut out = String::from(match shell {
            Shell::Posix => "# Generated by aibox from .aibox/state.json; do not edit.\n# Source it: . /opt/toolpacks/env.sh\n",
            Shell::Fish => "# Generated by aibox; source it from fish: aibox env --shell fish | source\n",
        });
        for (name, pack) in &state.packs {
            let root = self.current(name);
            let root = root.to_string_lossy();
            for dir in pack.path.iter().rev() {
                let dir = format!("{root}/{}", dir.trim_start_matches("./").trim_end_matches('/'));
                out.push_str(&match shell {
                    Shell::Posix => format!("case \":${{PATH}}:\" in *:{q}:*) ;; *) PATH={q}\"${{PATH:+:$PATH}}\" ;; esac\n", q = shell.quote(&dir)),
                    Shell::Fish => format!("contains -- {q} $PATH; or set -gx PATH {q} $PATH\n", q = shell.quote(&dir)),
                });
            }
            // Keys were validated when the pack was read; never emit one that is not a name.
            for (key, value) in pack.env.iter().filter(|(k, _)| is_env_name(k)) {
                let value = shell.value(value, &root);
                out.push_str(&match shell {
                    Shell::Posix => format!("export {key}={value}\n"),
                    Shell::Fish => format!("set -gx {key} {value}\n"),
                });
            }
        }
        if shell == Shell::Posix {
            out.push_str("export PATH\n");
        }
        out
    }
}

/// What became of a pack's cache directory (the mount point of its `aibox-<tool>-cache` volume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "detail")]
pub enum CacheDir {
    /// Created now, owned like the home it is in.
    Created,
    /// Already there.
    Exists,
    /// Not created, and why (its user's home does not exist here, or no permission).
    Skipped(String),
}

/// Create a cache directory declared by a pack, so the sandbox launcher can mount the volume
/// there. Only inside a directory that exists other than `/` and `/home` (the image's user's
/// home): aibox does not invent homes. New directories get the owner of that directory.
pub fn prepare_cache(path: &Path) -> CacheDir {
    use std::os::unix::fs::MetadataExt;
    if path.is_dir() {
        return CacheDir::Exists;
    }
    let Some(base) = path.ancestors().skip(1).find(|a| a.is_dir()) else { return CacheDir::Skipped("no parent directory exists".into()) };
    if base == Path::new("/") || base == Path::new("/home") {
        return CacheDir::Skipped(format!("{} does not exist here", path.ancestors().find(|a| a.parent() == Some(base)).unwrap_or(path).display()));
    }
    let owner = fs::metadata(base).map(|m| (m.uid(), m.gid())).ok();
    if let Err(e) = fs::create_dir_all(path) {
        return CacheDir::Skipped(format!("cannot create it: {e}"));
    }
    if let Some((uid, gid)) = owner {
        for dir in path.ancestors().take_while(|a| *a != base) {
            // Only root can give a directory away; anyone else already owns what they made.
            // lchown: a symlink swapped in meanwhile is not followed.
            let _ = std::os::unix::fs::lchown(dir, Some(uid), Some(gid));
        }
    }
    CacheDir::Created
}

/// Shell syntax for [`Toolpacks::env_script`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    /// sh, dash, bash, zsh.
    Posix,
    /// fish.
    Fish,
}

impl Shell {
    /// An `env` value as a shell word: text single-quoted (`${PACK_ROOT}` replaced by `root`),
    /// `${NAME:-default}` references expanded by the shell when env.sh is sourced. A value that
    /// does not parse (written by an older aibox) is quoted as plain text.
    fn value(self, value: &str, root: &str) -> String {
        let Ok(segments) = aibox_schema::env_segments(value) else { return self.quote(&value.replace("${PACK_ROOT}", root)) };
        let mut out = String::new();
        for segment in segments {
            match segment {
                aibox_schema::EnvSegment::Literal(text) => out.push_str(&self.quote(&text.replace("${PACK_ROOT}", root))),
                aibox_schema::EnvSegment::Variable { name, default } => out.push_str(&match (self, default) {
                    (Shell::Posix, Some(d)) => format!("\"${{{name}:-{d}}}\""),
                    (Shell::Posix, None) => format!("\"${{{name}}}\""),
                    (Shell::Fish, Some(d)) => format!("(if set -q {name}; and test -n \"${name}\"; printf '%s' \"${name}\"; else; printf '%s' {}; end)", self.quote(d)),
                    (Shell::Fish, None) => format!("\"${name}\""),
                }),
            }
        }
        if out.is_empty() { self.quote("") } else { out }
    }

    /// Single-quote `s` for this shell (values come from packs: never let them run code).
    /// sh has no escapes inside single quotes; fish treats `\\` and `\'` as escapes there.
    fn quote(self, s: &str) -> String {
        match self {
            Shell::Posix => format!("'{}'", s.replace('\'', r"'\''")),
            Shell::Fish => format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'")),
        }
    }
}


#[cfg(test)]
mod tests {
    use super::Shell;

    #[test]
    fn caches_only_inside_existing_homes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("dev/.m2/repository");
        std::fs::create_dir_all(dir.path().join("dev")).unwrap();
        assert_eq!(super::prepare_cache(&cache), super::CacheDir::Created);
        assert!(cache.is_dir());
        assert_eq!(super::prepare_cache(&cache), super::CacheDir::Exists);
        assert!(matches!(super::prepare_cache(std::path::Path::new("/home/nobody-aibox-test/.npm")), super::CacheDir::Skipped(_)));
        assert!(!std::path::Path::new("/home/nobody-aibox-test").exists());
    }

    #[test]
    fn quoting_never_lets_a_value_out() {
        assert_eq!(Shell::Posix.quote("a'b"), r"'a'\''b'");
        assert_eq!(Shell::Fish.quote("a'b"), r"'a\'b'");
        assert_eq!(Shell::Fish.quote("end\\"), r"'end\\'");
        assert!(!super::is_env_name("X=$(evil)"));
        assert_eq!(Shell::Posix.value("${PACK_ROOT}/x", "/opt/toolpacks/p/current"), "'/opt/toolpacks/p/current''/x'");
        assert_eq!(Shell::Posix.value("${AIBOX_LLM_PROXY:-http://localhost:8443}/v1", "/r"), "\"${AIBOX_LLM_PROXY:-http://localhost:8443}\"'/v1'");
        assert!(super::is_env_name("JAVA_HOME"));
    }
}
