//! aibox's own MCP state, `~/.config/aibox/mcp-state.json`: which servers are enabled in which
//! scope, and, per file, the hash of every entry aibox wrote there. Ownership lives here, never
//! as marker keys inside agents' files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};

/// The state file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct McpState {
    /// Format version.
    #[serde(default)]
    pub version: u32,
    /// Scope key (`user` or a project path) → enabled server names.
    #[serde(default)]
    pub enabled: BTreeMap<String, BTreeSet<String>>,
    /// File → what aibox wrote there.
    #[serde(default)]
    pub written: BTreeMap<PathBuf, Written>,
    /// Scope key → `${WORKSPACE}` as it was when servers were enabled there, so a later
    /// re-render (from `aibox install` run elsewhere) resolves the same paths.
    #[serde(default)]
    pub workspaces: BTreeMap<String, PathBuf>,
}

/// What aibox wrote into one file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Written {
    /// Agent id (`aibox` for the canonical file).
    pub agent: String,
    /// Scope key.
    pub scope: String,
    /// Server name → sha256 of the entry as written (canonical JSON).
    pub entries: BTreeMap<String, String>,
    /// aibox created the servers' container (`mcpServers`, ...): it goes when it is empty again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created_container: bool,
    /// aibox created the file: it goes when nothing but aibox's empty skeleton is left.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created_file: bool,
    /// While an edit of the file is being written, the record from before it: a run killed
    /// mid-write leaves it, and the next one settles from the file which of the two holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Box<Written>>,
}

/// The held MCP lock; released on drop.
pub struct McpLock {
    _file: File,
}

impl McpState {
    /// Lock `dir/mcp.lock` (blocks while another aibox holds it).
    pub fn lock(dir: &Path) -> Result<McpLock> {
        std::fs::create_dir_all(dir).map_err(Error::io("cannot create", dir))?;
        let path = dir.join("mcp.lock");
        let file = File::options().create(true).truncate(false).write(true).open(&path).map_err(Error::io("cannot open", &path))?;
        file.lock().map_err(Error::io("cannot lock", &path))?;
        Ok(McpLock { _file: file })
    }

    /// Read `dir/mcp-state.json` (empty when absent).
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("mcp-state.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Config { path, message: format!("aibox's MCP state does not parse: {e}") }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self { version: 1, ..Self::default() }),
            Err(e) => Err(Error::io("cannot read", path)(e)),
        }
    }

    /// Write it atomically.
    pub fn save(&self, dir: &Path, _lock: &McpLock) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("state serializes");
        bytes.push(b'\n');
        write_atomic(&dir.join("mcp-state.json"), &bytes)
    }
}

/// The hash an entry is recorded by: sha256 of its canonical JSON (RFC 8785), so key order and
/// formatting do not matter.
pub fn entry_hash(entry: &Value) -> String {
    let bytes = serde_json_canonicalizer::to_vec(entry).expect("JSON value canonicalizes");
    hex::encode(Sha256::digest(&bytes))
}
