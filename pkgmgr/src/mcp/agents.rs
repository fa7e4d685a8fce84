//! The AI agents aibox configures: one table of client profiles (where each keeps its MCP
//! servers, in which format, under which key, how it is detected). How an entry looks for each
//! client is in [`super::render`]. Facts from `shared/research/mcp-clients.md`.

use std::path::{Path, PathBuf};

/// Where a server is enabled: for the user (agents' user config files) or for one project
/// (the project files agents read: `.mcp.json`, `.vscode/mcp.json`, ...).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// The user's own agent configs.
    User,
    /// A project directory (absolute).
    Project(PathBuf),
}

impl Scope {
    /// The key of this scope in aibox's MCP state: `user` or the project path.
    pub fn key(&self) -> String {
        match self {
            Self::User => "user".into(),
            Self::Project(dir) => dir.display().to_string(),
        }
    }

    /// The scope a state key names.
    pub fn from_key(key: &str) -> Self {
        if key == "user" { Self::User } else { Self::Project(PathBuf::from(key)) }
    }
}

/// The environment paths are resolved in: home, XDG and the agents' own variables.
#[derive(Debug, Clone)]
pub struct AgentEnv {
    /// `$HOME`.
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME`, else `~/.config`.
    pub config_home: PathBuf,
    /// `$CODEX_HOME`, else `~/.codex`.
    pub codex_home: PathBuf,
    /// `$CLAUDE_CONFIG_DIR` when set (Claude Code then keeps `.claude.json` there).
    pub claude_config_dir: Option<PathBuf>,
    /// `$CLINE_DIR`, else `~/.cline`.
    pub cline_dir: PathBuf,
}

impl AgentEnv {
    /// From this process's environment.
    pub fn from_process() -> Option<Self> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = var("HOME").or_else(std::env::home_dir)?;
        Some(Self {
            config_home: var("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config")),
            codex_home: var("CODEX_HOME").unwrap_or_else(|| home.join(".codex")),
            claude_config_dir: var("CLAUDE_CONFIG_DIR"),
            cline_dir: var("CLINE_DIR").unwrap_or_else(|| home.join(".cline")),
            home,
        })
    }

    /// aibox's own folder: `~/.config/aibox`.
    pub fn aibox_dir(&self) -> PathBuf {
        self.config_home.join("aibox")
    }
}

/// File formats of agent configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Strict JSON (edited through the same comment-keeping editor, so comments some clients
    /// tolerate survive too).
    Json,
    /// JSON with comments and trailing commas.
    Jsonc,
    /// TOML.
    Toml,
    /// YAML.
    Yaml,
}

/// Where in the file the servers live.
#[derive(Debug, Clone, Copy)]
pub enum Container {
    /// A map keyed by server name at this key path (`["mcpServers"]`, `["mcp_servers"]`).
    Map(&'static [&'static str]),
    /// A list under this key whose items carry the server name in `name` (Continue).
    NamedList(&'static str),
}

/// The shape of a server entry for a client; see [`super::render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `command`/`args`/`env` or `url`/`headers`, with the given type names and URL key.
    Standard(Keys),
    /// Codex `[mcp_servers.<name>]`: no type; secrets by passthrough.
    Codex,
    /// Goose `extensions.<name>`: `cmd`, `envs`, `env_keys`, `uri`.
    Goose,
    /// opencode `mcp.<name>`: `type: local|remote`, `command: [cmd, ...args]`, `environment`.
    Opencode,
    /// A Continue `mcpServers` list item.
    Continue,
}

/// The parts of a [`Shape::Standard`] entry that vary by client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    /// `type` written on stdio entries (`None`: no type field).
    pub stdio_type: Option<&'static str>,
    /// Streamable HTTP: (`type` value or none, URL key); `None`: not supported.
    pub http: Option<(Option<&'static str>, &'static str)>,
    /// SSE: as for `http`.
    pub sse: Option<(Option<&'static str>, &'static str)>,
}

/// How a client lets an entry take a value from the environment (`${env:NAME}` in a pack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// `${NAME}` in command, args, env, url and headers (Claude Code).
    Dollar,
    /// `${env:NAME}` (Cursor, VS Code, Windsurf).
    DollarEnv,
    /// `{env:NAME}` (opencode).
    BraceEnv,
    /// `${NAME}` in `env` values only (Gemini).
    DollarEnvValuesOnly,
    /// `${{ secrets.NAME }}` (Continue; the secret comes from Continue's own secrets).
    ContinueSecrets,
    /// Only by passing a whole variable through (Codex `env_vars`, Goose `env_keys`).
    Passthrough,
    /// No interpolation at all.
    None,
}

/// Units of a client's per-server startup timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds.
    Seconds,
    /// Milliseconds.
    Millis,
}

/// One AI agent.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// Stable id (an interface): `claude-code`, `codex`, ...
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Format of the files.
    pub format: Format,
    /// Where the servers sit in the file.
    pub container: Container,
    /// Entry shape.
    pub shape: Shape,
    /// Secret syntax.
    pub secrets: Secrets,
    /// Startup timeout key and unit, when the client has one.
    pub timeout: Option<(&'static str, Unit)>,
    user_file: fn(&AgentEnv) -> PathBuf,
    detect: fn(&AgentEnv) -> PathBuf,
    /// Project file relative to the project root; `None`: the client has no project scope.
    project_file: Option<&'static str>,
    /// Text of a new file, before the first server goes in.
    pub new_file: &'static str,
}

const JSON_NEW: &str = "";
const CONTINUE_NEW: &str = "name: Local Config\nversion: 1.0.0\nschema: v1\n";
const CONTINUE_BLOCK_NEW: &str = "name: aibox MCP servers\nversion: 1.0.0\nschema: v1\n";

fn std_keys(stdio_type: Option<&'static str>, http: Option<(Option<&'static str>, &'static str)>, sse: Option<(Option<&'static str>, &'static str)>) -> Shape {
    Shape::Standard(Keys { stdio_type, http, sse })
}

/// Every agent aibox knows, in a stable order.
#[allow(clippy::too_many_lines)] // one table, one entry per agent
pub fn profiles() -> &'static [Profile] {
    static PROFILES: std::sync::OnceLock<Vec<Profile>> = std::sync::OnceLock::new();
    PROFILES.get_or_init(|| {
        vec![
            Profile {
                id: "claude-code",
                name: "Claude Code",
                format: Format::Json,
                container: Container::Map(&["mcpServers"]),
                shape: std_keys(Some("stdio"), Some((Some("http"), "url")), Some((Some("sse"), "url"))),
                secrets: Secrets::Dollar,
                timeout: None,
                user_file: |e| e.claude_config_dir.as_ref().map_or_else(|| e.home.join(".claude.json"), |d| d.join(".claude.json")),
                detect: |e| e.claude_config_dir.clone().unwrap_or_else(|| e.home.join(".claude")),
                project_file: Some(".mcp.json"),
                new_file: JSON_NEW,
            },
            Profile {
                id: "claude-desktop",
                name: "Claude Desktop",
                format: Format::Json,
                container: Container::Map(&["mcpServers"]),
                shape: std_keys(None, None, None),
                secrets: Secrets::None,
                timeout: None,
                user_file: |e| e.config_home.join("Claude/claude_desktop_config.json"),
                detect: |e| e.config_home.join("Claude"),
                project_file: None,
                new_file: JSON_NEW,
            },
            Profile {
                id: "codex",
                name: "Codex CLI",
                format: Format::Toml,
                container: Container::Map(&["mcp_servers"]),
                shape: Shape::Codex,
                secrets: Secrets::Passthrough,
                timeout: Some(("startup_timeout_sec", Unit::Seconds)),
                user_file: |e| e.codex_home.join("config.toml"),
                detect: |e| e.codex_home.clone(),
                project_file: Some(".codex/config.toml"),
                new_file: "",
            },
            Profile {
                id: "cursor",
                name: "Cursor",
                format: Format::Json,
                container: Container::Map(&["mcpServers"]),
                shape: std_keys(None, Some((None, "url")), Some((None, "url"))),
                secrets: Secrets::DollarEnv,
                timeout: None,
                user_file: |e| e.home.join(".cursor/mcp.json"),
                detect: |e| e.home.join(".cursor"),
                project_file: Some(".cursor/mcp.json"),
                new_file: JSON_NEW,
            },
            Profile {
                id: "vscode",
                name: "VS Code",
                format: Format::Jsonc,
                container: Container::Map(&["servers"]),
                shape: std_keys(Some("stdio"), Some((Some("http"), "url")), Some((Some("sse"), "url"))),
                secrets: Secrets::DollarEnv,
                timeout: None,
                user_file: |e| e.config_home.join("Code/User/mcp.json"),
                detect: |e| e.config_home.join("Code/User"),
                project_file: Some(".vscode/mcp.json"),
                new_file: JSON_NEW,
            },
            Profile {
                id: "continue",
                name: "Continue",
                format: Format::Yaml,
                container: Container::NamedList("mcpServers"),
                shape: Shape::Continue,
                secrets: Secrets::ContinueSecrets,
                timeout: Some(("connectionTimeout", Unit::Millis)),
                user_file: |e| e.home.join(".continue/config.yaml"),
                detect: |e| e.home.join(".continue"),
                project_file: Some(".continue/mcpServers/aibox.yaml"),
                new_file: CONTINUE_NEW,
            },
            Profile {
                id: "gemini",
                name: "Gemini CLI",
                format: Format::Jsonc,
                container: Container::Map(&["mcpServers"]),
                shape: std_keys(None, Some((None, "httpUrl")), Some((None, "url"))),
                secrets: Secrets::DollarEnvValuesOnly,
                timeout: Some(("timeout", Unit::Millis)),
                user_file: |e| e.home.join(".gemini/settings.json"),
                detect: |e| e.home.join(".gemini"),
                project_file: Some(".gemini/settings.json"),
                new_file: JSON_NEW,
            },
            Profile {
                id: "goose",
                name: "Goose",
                format: Format::Yaml,
                container: Container::Map(&["extensions"]),
                shape: Shape::Goose,
                secrets: Secrets::Passthrough,
                timeout: Some(("timeout", Unit::Seconds)),
                user_file: |e| e.config_home.join("goose/config.yaml"),
                detect: |e| e.config_home.join("goose"),
                project_file: None,
                new_file: "",
            },
            Profile {
                id: "zed",
                name: "Zed",
                format: Format::Jsonc,
                container: Container::Map(&["context_servers"]),
                shape: std_keys(None, Some((None, "url")), None),
                secrets: Secrets::None,
                timeout: Some(("timeout", Unit::Seconds)),
                user_file: |e| e.config_home.join("zed/settings.json"),
                detect: |e| e.config_home.join("zed"),
                project_file: Some(".zed/settings.json"),
                new_file: JSON_NEW,
            },
            Profile {
                id: "windsurf",
                name: "Windsurf",
                format: Format::Json,
                container: Container::Map(&["mcpServers"]),
                shape: std_keys(None, Some((None, "serverUrl")), Some((None, "serverUrl"))),
                secrets: Secrets::DollarEnv,
                timeout: None,
                user_file: |e| e.home.join(".codeium/windsurf/mcp_config.json"),
                detect: |e| e.home.join(".codeium/windsurf"),
                project_file: None,
                new_file: JSON_NEW,
            },
            Profile {
                id: "cline",
                name: "Cline",
                format: Format::Json,
                container: Container::Map(&["mcpServers"]),
                shape: std_keys(Some("stdio"), Some((Some("streamableHttp"), "url")), Some((Some("sse"), "url"))),
                secrets: Secrets::None,
                timeout: Some(("timeout", Unit::Seconds)),
                user_file: |e| e.cline_dir.join("data/settings/cline_mcp_settings.json"),
                detect: |e| e.cline_dir.clone(),
                project_file: None,
                new_file: JSON_NEW,
            },
            Profile {
                id: "opencode",
                name: "opencode",
                format: Format::Jsonc,
                container: Container::Map(&["mcp"]),
                shape: Shape::Opencode,
                secrets: Secrets::BraceEnv,
                timeout: Some(("timeout", Unit::Millis)),
                user_file: |e| prefer_jsonc(&e.config_home.join("opencode/opencode.json")),
                detect: |e| e.config_home.join("opencode"),
                project_file: Some("opencode.json"),
                new_file: JSON_NEW,
            },
            Profile {
                id: "amazon-q",
                name: "Amazon Q Developer CLI",
                format: Format::Json,
                container: Container::Map(&["mcpServers"]),
                shape: std_keys(Some("stdio"), Some((Some("http"), "url")), None),
                secrets: Secrets::None,
                timeout: Some(("timeout", Unit::Millis)),
                user_file: |e| e.home.join(".aws/amazonq/mcp.json"),
                detect: |e| e.home.join(".aws/amazonq"),
                project_file: Some(".amazonq/mcp.json"),
                new_file: JSON_NEW,
            },
            Profile {
                id: "junie",
                name: "Junie",
                format: Format::Json,
                container: Container::Map(&["mcpServers"]),
                shape: std_keys(None, Some((None, "url")), None),
                secrets: Secrets::None,
                timeout: None,
                user_file: |e| e.home.join(".junie/mcp/mcp.json"),
                detect: |e| e.home.join(".junie"),
                project_file: Some(".junie/mcp/mcp.json"),
                new_file: JSON_NEW,
            },
        ]
    })
}

/// The profile with this id.
pub fn profile(id: &str) -> Option<&'static Profile> {
    profiles().iter().find(|p| p.id == id)
}

/// Every agent id, for messages.
pub fn ids() -> Vec<&'static str> {
    profiles().iter().map(|p| p.id).collect()
}

/// `x.json` → `x.jsonc` when only the latter exists (opencode reads either).
fn prefer_jsonc(json: &Path) -> PathBuf {
    let jsonc = json.with_extension("jsonc");
    if !json.exists() && jsonc.exists() { jsonc } else { json.to_owned() }
}

impl Profile {
    /// The file this agent keeps its servers in for `scope`; `None` when the agent has no
    /// such scope (Claude Desktop, Goose, Windsurf and Cline have no project files).
    pub fn file(&self, scope: &Scope, env: &AgentEnv) -> Option<PathBuf> {
        match scope {
            Scope::User => Some((self.user_file)(env)),
            Scope::Project(dir) => self.project_file.map(|rel| if rel == "opencode.json" { prefer_jsonc(&dir.join(rel)) } else { dir.join(rel) }),
        }
    }

    /// Whether the agent looks installed for `scope`: its config file or folder exists.
    pub fn detected(&self, scope: &Scope, env: &AgentEnv) -> bool {
        let Some(file) = self.file(scope, env) else { return false };
        file.exists()
            || match scope {
                Scope::User => (self.detect)(env).is_dir(),
                Scope::Project(dir) => {
                    // The agent's project folder (`.vscode`, `.cursor`, ...), not the project itself.
                    let rel = file.strip_prefix(dir).ok().and_then(|r| r.components().next()).map(|c| dir.join(c));
                    rel.is_some_and(|first| first != file && first.is_dir())
                }
            }
    }

    /// Text of a new file for `scope`.
    pub fn new_text(&self, scope: &Scope) -> &'static str {
        match (self.id, scope) {
            ("continue", Scope::Project(_)) => CONTINUE_BLOCK_NEW,
            _ => self.new_file,
        }
    }
}
