//! An MCP server resolved from an installed pack: absolute command through the packs'
//! `current` links (valid across upgrades), placeholders expanded, secrets left as
//! `${env:NAME}` for each agent to express in its own syntax.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aibox_schema::Transport;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::toolpacks::{State, Toolpacks};

/// A server ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Server name in agent configs: the pack name.
    pub name: String,
    /// Version of the pack it comes from.
    pub version: String,
    /// The pack's description.
    pub description: String,
    /// How agents reach it.
    pub transport: Transport,
    /// Absolute command (stdio).
    pub command: Option<String>,
    /// Arguments (stdio).
    pub args: Vec<String>,
    /// Environment (stdio).
    pub env: BTreeMap<String, String>,
    /// Endpoint (remote).
    pub url: Option<String>,
    /// Headers (remote).
    pub headers: BTreeMap<String, String>,
    /// Startup timeout in seconds.
    pub startup_timeout: Option<u32>,
    /// Paths the server uses, expanded.
    pub filesystem_requires: Vec<String>,
}

/// Values of `${WORKSPACE}` and `${HOME}`.
#[derive(Debug, Clone)]
pub struct Placeholders {
    /// `${WORKSPACE}`: `AIBOX_WORKSPACE`, default `/workspace`.
    pub workspace: PathBuf,
    /// `${HOME}`.
    pub home: PathBuf,
}

impl Placeholders {
    /// Expand `${WORKSPACE}` and `${HOME}` (and `${PACK_ROOT}` when given).
    pub fn expand(&self, value: &str, pack_root: Option<&Path>) -> String {
        let mut out = value.replace("${WORKSPACE}", &self.workspace.to_string_lossy()).replace("${HOME}", &self.home.to_string_lossy());
        if let Some(root) = pack_root {
            out = out.replace("${PACK_ROOT}", &root.to_string_lossy());
        }
        out
    }
}

impl Server {
    /// Resolve the MCP pack `name` as installed in `toolpacks`.
    pub fn resolve(name: &str, state: &State, toolpacks: &Toolpacks, places: &Placeholders) -> Result<Self> {
        let installed = state.packs.get(name).ok_or_else(|| Error::Mcp(format!("`{name}` is not installed")))?;
        let manifest = installed.manifest.as_ref().ok_or_else(|| {
            Error::Mcp(format!("`{name}` was installed by an older aibox that did not keep its manifest; run `aibox install --force {name}`"))
        })?;
        let Some(transport) = manifest.transport.or(manifest.command.as_ref().map(|_| Transport::Stdio)) else {
            return Err(Error::Mcp(format!("`{name}` is a tool pack, not an MCP pack (it has no `command` or `transport`)")));
        };
        let root = toolpacks.current(name);
        let expand = |v: &String| places.expand(v, Some(&root));
        let command = match &manifest.command {
            Some(command) => Some(find_command(name, command, state, toolpacks)?),
            None => None,
        };
        Ok(Self {
            name: name.to_owned(),
            version: installed.version.clone(),
            description: manifest.description.clone(),
            transport,
            command,
            args: manifest.args.iter().map(expand).collect(),
            env: manifest.env.iter().map(|(k, v)| (k.clone(), expand(v))).collect(),
            url: manifest.url.as_ref().map(expand),
            headers: manifest.headers.iter().map(|(k, v)| (k.clone(), expand(v))).collect(),
            startup_timeout: manifest.startup_timeout,
            filesystem_requires: manifest.filesystem_requires.iter().map(expand).collect(),
        })
    }

    /// The packs this server's files live in: the pack and its dependencies (transitively).
    pub fn packs(name: &str, state: &State) -> Vec<String> {
        let mut seen = vec![name.to_owned()];
        let mut i = 0;
        while i < seen.len() {
            if let Some(pack) = state.packs.get(&seen[i]) {
                for dep in &pack.depends {
                    let dep = dep.split('@').next().unwrap_or(dep).to_owned();
                    if !seen.contains(&dep) {
                        seen.push(dep);
                    }
                }
            }
            i += 1;
        }
        seen
    }

    /// The entry in the canonical `mcp.json` (the de facto `mcpServers` format that Claude Code
    /// and the MCP SDKs read), with secrets as `${env:NAME}`.
    pub fn canonical(&self) -> Value {
        match self.transport {
            Transport::Stdio => {
                let mut entry = json!({"type": "stdio", "command": self.command, "args": self.args});
                if !self.env.is_empty() {
                    entry["env"] = json!(self.env);
                }
                entry
            }
            Transport::Http | Transport::Sse => {
                let kind = if self.transport == Transport::Http { "http" } else { "sse" };
                let mut entry = json!({"type": kind, "url": self.url});
                if !self.headers.is_empty() {
                    entry["headers"] = json!(self.headers);
                }
                entry
            }
        }
    }
}

/// A command with a `/` is relative to the pack root (or absolute); a bare name is looked up
/// on the PATH of the pack, its dependencies, then the system.
fn find_command(pack: &str, command: &str, state: &State, toolpacks: &Toolpacks) -> Result<String> {
    let candidates: Vec<PathBuf> = if command.contains('/') {
        vec![if Path::new(command).is_absolute() { PathBuf::from(command) } else { toolpacks.current(pack).join(command) }]
    } else {
        let mut dirs = Vec::new();
        for name in Server::packs(pack, state) {
            if let Some(installed) = state.packs.get(&name) {
                dirs.extend(installed.path.iter().map(|d| toolpacks.current(&name).join(d)));
            }
        }
        dirs.extend(std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default());
        dirs.into_iter().map(|d| d.join(command)).collect()
    };
    candidates.iter().find(|c| is_executable(c)).map(|c| c.display().to_string()).ok_or_else(|| {
        Error::Mcp(format!(
            "`{pack}` runs `{command}`, which is not an executable in the pack, its dependencies or on PATH (looked at {})",
            candidates.iter().take(4).map(|c| c.display().to_string()).collect::<Vec<_>>().join(", ")
        ))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
