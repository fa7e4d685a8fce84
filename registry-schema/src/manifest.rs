//! `pack.yaml`: the manifest of a tool pack or an MCP pack.
//!
//! One type serves both kinds: a manifest with a `command` (stdio) or a `transport: http` plus
//! `url` is an MCP pack; every other manifest is a tool pack. Unknown fields are errors.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::{PackName, Requirement, parse_version};

/// The manifest of a pack, as written in `pack.yaml` and published (as canonical JSON) as the
/// config blob of the pack's OCI manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "aibox pack manifest (pack.yaml)")]
pub struct PackManifest {
    /// Pack name, also its repository name in a store: `^[a-z][a-z0-9-]*$`.
    pub name: PackName,
    /// Semantic version of this release, e.g. `21.0.5` or `1.0.0+build.3`.
    #[schemars(regex(pattern = r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"))]
    pub version: String,
    /// One line saying what the pack holds.
    pub description: String,
    /// Who maintains the pack (name and email, or a team).
    pub maintainer: String,
    /// How the pack is installed.
    #[serde(default, skip_serializing_if = "Install::is_default")]
    pub install: Install,
    /// Network endpoints the pack needs at run time.
    #[serde(default, skip_serializing_if = "Network::is_empty")]
    pub network: Network,
    /// Filesystem paths the pack creates or uses.
    #[serde(default, skip_serializing_if = "Filesystem::is_empty")]
    pub filesystem: Filesystem,
    /// Memory the tools need.
    #[serde(default, skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
    /// Integrity requirements.
    #[serde(default, skip_serializing_if = "Security::is_empty")]
    pub security: Security,
    /// Free-form keywords, e.g. `[jdk, build]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Packs this one needs, installed first: `[node@20]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends: Vec<Requirement>,
    /// Directories relative to the pack root put on PATH, e.g. `[bin]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
    /// Environment variables. Values may use `${PACK_ROOT}`; for MCP packs, `${WORKSPACE}` and
    /// `${HOME}` too, and this is the environment the server starts with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Named cache volumes (`aibox-<tool>-cache`) and the paths they are mounted at.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub caches: BTreeMap<String, String>,
    /// Platforms the pack is built for, as `os/arch` (`linux/amd64`, `linux/arm64`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// Content fetched at build time, each pinned by sha256 (or a lockfile).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
    /// Shell steps run on the build host after sources are placed, with `$PACK_ROOT` set to the
    /// staging tree (and `$PACK_PLATFORM` to the platform built for). They run without network
    /// unless `build_network` is true.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build: Vec<String>,
    /// The build steps need the network (e.g. coursier fetching from a repository).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub build_network: bool,

    /// MCP: the server executable. Makes this an MCP pack. A path with a `/` is relative to the
    /// pack root (or absolute); a bare name (`node`, `python3`) is looked up on the PATH of the
    /// pack, then of its dependencies, then of the system, and written into agent configs as an
    /// absolute path through the packs' `current` links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// MCP: arguments; may use `${PACK_ROOT}`, `${WORKSPACE}`, `${HOME}` and `${env:NAME}` (a
    /// value the agent takes from its environment, e.g. a token).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// MCP: how agents talk to the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// MCP: the endpoint of a remote (`http`, `sse`) server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// MCP: HTTP headers sent to a remote server; values may use `${env:NAME}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// MCP: seconds an agent waits for the server to start (written in each agent's own unit
    /// where the agent has such a setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_timeout: Option<u32>,
    /// MCP: network endpoints (`host:port`) the server reaches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_requires: Vec<String>,
    /// MCP: paths the server reads or writes; may use `${WORKSPACE}` and `${HOME}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filesystem_requires: Vec<String>,
    /// MCP: what the server may do.
    #[serde(default, skip_serializing_if = "McpPermissions::is_empty")]
    pub permissions: McpPermissions,
}

/// `install`: how the pack gets onto a machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Install {
    /// `docker-layer` (default): the pack's OCI layer is extracted. `nix` and `script` need
    /// the policy to allow them.
    #[serde(default)]
    pub method: InstallMethod,
    /// Image the pack was built for (informational for `docker-layer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<String>,
    /// System packages the tools expect on the base image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// `script` packs: the script (relative to the pack root) `aibox install` runs in the
    /// unpacked tree, once the policy allows this release's script by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// `nix` packs: the Nix expression file (relative to the pack root) installed into a
    /// profile in the pack's directory (`profile/bin` then goes on `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

impl Install {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The install methods of the pack spec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum InstallMethod {
    /// Extract the pack's OCI layer.
    #[default]
    DockerLayer,
    /// Install a Nix derivation into a profile.
    Nix,
    /// Run the pack's script.
    Script,
}

impl fmt::Display for InstallMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DockerLayer => "docker-layer",
            Self::Nix => "nix",
            Self::Script => "script",
        })
    }
}

/// `network`: endpoints the tools reach at run time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Required endpoints as `host:port` (e.g. `repo.maven.apache.org:443`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
}

impl Network {
    fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }
}

/// `filesystem`: paths outside the pack root the tools create or use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filesystem {
    /// Paths the tools create (absolute; may use `${HOME}`, `${WORKSPACE}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Cache directories the tools fill.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caches: Vec<String>,
}

impl Filesystem {
    fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.caches.is_empty()
    }
}

/// `resources`: memory the tools need, as Kubernetes-style quantities (`512Mi`, `2Gi`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Least memory the tools run with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(Ki|Mi|Gi|Ti)?$"))]
    pub min_memory: Option<String>,
    /// Memory the tools run well with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(Ki|Mi|Gi|Ti)?$"))]
    pub recommended_memory: Option<String>,
}

impl Resources {
    fn is_empty(&self) -> bool {
        self.min_memory.is_none() && self.recommended_memory.is_none()
    }
}

/// `security`: integrity requirements of the pack.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// Checksum algorithm the pack content is addressed by (`sha256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Signature requirement (`cosign`): installs refuse the pack unless signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Security {
    fn is_empty(&self) -> bool {
        self.checksum.is_none() && self.signature.is_none()
    }
}

/// One source of pack content, fetched at build time. Exactly one of `url`, `npm`, `pypi`,
/// `deb` is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// An archive or file (`file://` or `https://`); needs `sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// An npm package at an exact version: `@angular/cli@18.2.12`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npm: Option<String>,
    /// A PyPI requirement pinned with `==`: `mcp-server-git==2025.1.14`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pypi: Option<String>,
    /// A Debian package: `name=version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deb: Option<String>,
    /// Hex sha256 of the downloaded file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[0-9a-f]{64}$"))]
    pub sha256: Option<String>,
    /// Where the content goes, relative to the pack root (default: the root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest: Option<String>,
    /// Leading path components dropped when extracting an archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_components: Option<u32>,
    /// Only for this platform (`linux/amd64`, `linux/arm64`): per-architecture downloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// How an MCP server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// The agent starts `command` and speaks over stdin/stdout.
    Stdio,
    /// A remote server at `url`, streamable HTTP.
    Http,
    /// A remote server at `url`, the older HTTP+SSE transport.
    Sse,
}

/// What an MCP server is allowed to do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpPermissions {
    /// The server only reads (no writes to `filesystem_requires`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// The server runs commands.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exec: bool,
}

impl McpPermissions {
    fn is_empty(&self) -> bool {
        !self.read_only && !self.exec
    }
}

/// Which kind of pack a manifest describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackKind {
    /// A tool pack (`java`, `node`, ...).
    Tool,
    /// An MCP server pack.
    Mcp,
}

/// A `pack.yaml` that could not be read, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// YAML syntax, a type error, an unknown field, or a value refused by a field's rule.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// What was wrong and what was expected.
        message: String,
    },
}

impl PackManifest {
    /// Read and validate a `pack.yaml`.
    pub fn from_file(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ManifestError::Read { path: path.to_owned(), source })?;
        Self::from_yaml(&text, path)
    }

    /// Parse and validate manifest text; `path` is only used in messages.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Self, ManifestError> {
        let manifest: Self = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            ManifestError::Invalid { path: path.to_owned(), line, column, message: plain_message(&e) }
        })?;
        manifest.validate().map_err(|(field, message)| {
            let (line, column) = locate_key(text, field);
            ManifestError::Invalid { path: path.to_owned(), line, column, message: format!("field `{field}`: {message}") }
        })?;
        Ok(manifest)
    }

    /// Parse a manifest from the canonical JSON config blob of a published pack, with the same
    /// rules as `pack.yaml` (a signed pack can still carry values a shell or a path must not
    /// take as they are).
    pub fn from_config_json(bytes: &[u8]) -> Result<Self, String> {
        let manifest: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        manifest.validate().map_err(|(field, message)| format!("field `{field}`: {message}"))?;
        Ok(manifest)
    }

    /// The manifest as canonical JSON (RFC 8785): the config blob of the published pack.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        let value = serde_json::to_value(self).expect("manifest serializes");
        serde_json_canonicalizer::to_vec(&value).expect("JSON value canonicalizes")
    }

    /// Tool pack or MCP pack.
    pub fn kind(&self) -> PackKind {
        if self.command.is_some() || self.transport.is_some() { PackKind::Mcp } else { PackKind::Tool }
    }

    /// The parsed semantic version (validated at load).
    pub fn semver(&self) -> semver::Version {
        semver::Version::parse(&self.version).expect("version validated at load")
    }

    /// The tag this version is published under: semver with `+` written `_` (OCI tags have no `+`).
    pub fn tag(&self) -> String {
        self.version.replace('+', "_")
    }

    /// Rules that the types alone do not express; returns the field and the message.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        parse_version(&self.version).map_err(|e| ("version", e.to_string()))?;
        for (field, value) in [("description", &self.description), ("maintainer", &self.maintainer)] {
            if value.trim().is_empty() {
                return Err((field, "must not be empty".into()));
            }
        }
        for endpoint in self.network.endpoints.iter().chain(&self.network_requires) {
            check_endpoint(endpoint).map_err(|m| ("network", m))?;
        }
        for dir in &self.path {
            check_relative(dir).map_err(|m| ("path", m))?;
        }
        match (self.install.method, &self.install.script) {
            (InstallMethod::Script, None) => return Err(("install", "method `script` needs `script`: the file (in the pack root) aibox runs".into())),
            (InstallMethod::Script, Some(script)) => check_relative(script).map_err(|m| ("install", m))?,
            (_, Some(_)) => return Err(("install", "`script` is for method `script`".into())),
            (_, None) => {}
        }
        match (self.install.method, &self.install.expression) {
            (InstallMethod::Nix, None) => return Err(("install", "method `nix` needs `expression`: the Nix file (in the pack root) to install".into())),
            (InstallMethod::Nix, Some(file)) => check_relative(file).map_err(|m| ("install", m))?,
            (_, Some(_)) => return Err(("install", "`expression` is for method `nix`".into())),
            (_, None) => {}
        }
        for key in self.env.keys() {
            if !is_env_name(key) {
                return Err(("env", format!("`{key}` is not a valid environment variable name")));
            }
        }
        for (volume, path) in &self.caches {
            let tool = volume.strip_prefix("aibox-").and_then(|v| v.strip_suffix("-cache"));
            let tool_ok = tool.is_some_and(|t| t.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) && t.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c)));
            if !tool_ok {
                return Err(("caches", format!("`{volume}`: cache volumes are named aibox-<tool>-cache, <tool> in lowercase letters, digits, `.`, `_` and `-`")));
            }
            let p = Path::new(path);
            if !p.is_absolute() || p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                return Err(("caches", format!("`{path}`: a cache path is absolute, without `..`")));
            }
            let under = ["/home/", "/root/", "/var/cache/", "/cache/"].iter().any(|prefix| path.starts_with(prefix) && path.len() > prefix.len());
            if !under {
                return Err(("caches", format!("`{path}`: a cache lives in a home (/home/USER/...) or under /var/cache")));
            }
        }
        for platform in &self.platforms {
            let ok = matches!(platform.split('/').collect::<Vec<_>>().as_slice(), [os, arch, ..] if !os.is_empty() && !arch.is_empty());
            if !ok {
                return Err(("platforms", format!("`{platform}`: expected os/arch such as linux/amd64")));
            }
        }
        for source in &self.sources {
            check_source(source).map_err(|m| ("sources", m))?;
            if let Some(platform) = &source.platform
                && !self.platforms.contains(platform)
            {
                return Err(("sources", format!("a source for `{platform}`, which `platforms` does not list")));
            }
        }
        // Per-platform downloads must cover every platform the pack claims.
        let covered: Vec<&String> = self.sources.iter().filter_map(|s| s.platform.as_ref()).collect();
        if let Some(missing) = self.platforms.iter().find(|p| !covered.is_empty() && !covered.contains(p)) {
            return Err(("sources", format!("`platforms` lists `{missing}`, but no source is for it while other platforms have their own")));
        }
        self.validate_mcp()
    }

    fn validate_mcp(&self) -> Result<(), (&'static str, String)> {
        let remote = matches!(self.transport, Some(Transport::Http | Transport::Sse));
        match (self.transport, &self.command, &self.url) {
            (Some(Transport::Http | Transport::Sse), _, None) => return Err(("url", "a remote MCP pack (`transport: http` or `sse`) needs `url`".into())),
            (Some(Transport::Http | Transport::Sse), Some(_), _) => return Err(("command", "a remote MCP pack has `url`, not `command`".into())),
            (Some(Transport::Stdio), None, _) => return Err(("command", "an MCP pack with `transport: stdio` needs `command`".into())),
            (None | Some(Transport::Stdio), Some(_), Some(_)) => return Err(("url", "`url` is only for `transport: http` or `sse`".into())),
            (None, None, _) if !self.args.is_empty() || !self.network_requires.is_empty() || !self.filesystem_requires.is_empty() || self.url.is_some() || !self.headers.is_empty() || self.startup_timeout.is_some() => {
                return Err(("command", "MCP fields (`args`, `url`, `headers`, `network_requires`, `filesystem_requires`, `startup_timeout`) need `command` or `transport`".into()));
            }
            _ => {}
        }
        if !remote && !self.headers.is_empty() {
            return Err(("headers", "`headers` are for remote servers (`transport: http` or `sse`)".into()));
        }
        if let Some(url) = &self.url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(("url", format!("`{url}`: expected an http:// or https:// URL")));
        }
        if let Some(command) = &self.command
            && (command.is_empty() || command.contains("${"))
        {
            return Err(("command", format!("`{command}`: a command is a path or a program name, without placeholders")));
        }
        if self.kind() == PackKind::Tool {
            for value in self.env.values() {
                env_segments(value).map_err(|m| ("env", m))?;
            }
            return Ok(());
        }
        let fields = [
            ("args", self.args.iter().collect::<Vec<_>>()),
            ("env", self.env.values().collect()),
            ("headers", self.headers.values().collect()),
            ("url", self.url.iter().collect()),
        ];
        for (field, values) in fields {
            for value in values {
                check_placeholders(value).map_err(|m| (field, m))?;
            }
        }
        for path in &self.filesystem_requires {
            check_placeholders(path).map_err(|m| ("filesystem_requires", m))?;
            if path.contains("${env:") || !(path.starts_with('/') || path.starts_with("${")) {
                return Err(("filesystem_requires", format!("`{path}`: an absolute path, or one under ${{WORKSPACE}} or ${{HOME}}")));
            }
        }
        Ok(())
    }
}

/// An environment variable name: a letter or `_`, then letters, digits and `_`.
pub fn is_env_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A piece of a tool pack's `env` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSegment<'a> {
    /// Text as is (`${PACK_ROOT}` included: it is replaced by the pack's path).
    Literal(&'a str),
    /// `${NAME}` or `${NAME:-default}`: the variable from the user's environment when
    /// `env.sh` is sourced, else the default (e.g. `${AIBOX_LLM_PROXY:-http://localhost:8443}`).
    Variable {
        /// The variable.
        name: &'a str,
        /// Its default.
        default: Option<&'a str>,
    },
}

/// Split a tool pack's `env` value into text and `${NAME[:-default]}` references. Defaults are
/// plain text: no `$`, quotes, backquotes, backslashes or braces.
pub fn env_segments(value: &str) -> Result<Vec<EnvSegment<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("`{value}`: unclosed `${{`"));
        };
        let inner = &rest[start + 2..start + len];
        if start > 0 {
            out.push(EnvSegment::Literal(&rest[..start]));
        }
        if inner == "PACK_ROOT" {
            out.push(EnvSegment::Literal(&rest[start..=start + len]));
        } else {
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if !is_env_name(name) || default.is_some_and(|d| d.contains(['$', '"', '\'', '`', '\\', '{'])) {
                return Err(format!("`{value}`: `${{{inner}}}` is not ${{PACK_ROOT}}, ${{NAME}} or ${{NAME:-plain default}}"));
            }
            out.push(EnvSegment::Variable { name, default });
        }
        rest = &rest[start + len + 1..];
    }
    if !rest.is_empty() {
        out.push(EnvSegment::Literal(rest));
    }
    Ok(out)
}

/// The placeholders a value of an MCP pack may use.
pub const PLACEHOLDERS: [&str; 3] = ["PACK_ROOT", "WORKSPACE", "HOME"];

/// `${PACK_ROOT}`, `${WORKSPACE}`, `${HOME}` and `${env:NAME}` are the only `${...}` allowed.
fn check_placeholders(value: &str) -> Result<(), String> {
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("`{value}`: unclosed `${{`"));
        };
        let inner = &rest[start + 2..start + len];
        let env_ok = inner.strip_prefix("env:").is_some_and(is_env_name);
        if !env_ok && !PLACEHOLDERS.contains(&inner) {
            return Err(format!("`{value}`: unknown placeholder `${{{inner}}}`; use ${{PACK_ROOT}}, ${{WORKSPACE}}, ${{HOME}} or ${{env:NAME}}"));
        }
        rest = &rest[start + len + 1..];
    }
    Ok(())
}

fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let port_ok = |p: &str| p.parse::<u16>().is_ok_and(|p| p > 0);
    match endpoint.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port_ok(port) && !host.contains('/') => Ok(()),
        _ => Err(format!("`{endpoint}`: expected host:port such as repo.maven.apache.org:443")),
    }
}

fn check_relative(dir: &str) -> Result<(), String> {
    let p = Path::new(dir);
    if p.is_absolute() || p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        Err(format!("`{dir}` must be relative to the pack root, without `..`"))
    } else {
        Ok(())
    }
}

fn check_source(source: &Source) -> Result<(), String> {
    let kinds = [&source.url, &source.npm, &source.pypi, &source.deb].iter().filter(|k| k.is_some()).count();
    if kinds != 1 {
        return Err("each source sets exactly one of `url`, `npm`, `pypi`, `deb`".into());
    }
    if let Some(url) = &source.url {
        match &source.sha256 {
            None => return Err(format!("`{url}` needs `sha256` (the pinned hash of the download)")),
            Some(h) if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) => {
                return Err(format!("`{h}` is not a lowercase hex sha256"));
            }
            Some(_) => {}
        }
        if !(url.starts_with("file://") || url.starts_with("https://")) {
            return Err(format!("`{url}`: sources are `https://` or `file://` URLs"));
        }
    }
    if let Some(spec) = &source.npm {
        split_npm_spec(spec).ok_or_else(|| format!("npm source `{spec}`: expected <package>@<exact version>, e.g. left-pad@1.3.0"))?;
    }
    if let Some(spec) = &source.pypi {
        split_pypi_spec(spec).ok_or_else(|| format!("pypi source `{spec}`: expected <name>==<exact version>, e.g. mcp-server-git==2026.10.19"))?;
    }
    if let Some(spec) = &source.deb {
        split_deb_spec(spec).ok_or_else(|| format!("deb source `{spec}`: expected <package>=<exact version>, e.g. hello=2.10-3"))?;
    }
    if (source.npm.is_some() || source.pypi.is_some()) && source.sha256.is_some() {
        return Err("npm and PyPI sources are pinned by their lock beside pack.yaml (package-lock.json, requirements.lock), not `sha256`".into());
    }
    if let Some(h) = source.sha256.as_ref().filter(|_| source.deb.is_some())
        && (h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
    {
        return Err(format!("`{h}` is not a lowercase hex sha256"));
    }
    if source.url.is_none() && source.deb.is_none() && source.strip_components.is_some() {
        return Err("`strip_components` is for `url` and `deb` sources".into());
    }
    if let Some(dest) = &source.dest {
        check_relative(dest)?;
    }
    Ok(())
}

/// `@scope/name@1.2.3` → (`@scope/name`, `1.2.3`).
pub fn split_npm_spec(spec: &str) -> Option<(&str, &str)> {
    let at = spec.get(1..)?.rfind('@')? + 1;
    let (name, version) = (&spec[..at], &spec[at + 1..]);
    // A name never starts like an option (`--registry=...`): specs go to npm's command line.
    let name_ok = name.starts_with(|c: char| c == '@' || c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "@/._-~".contains(c));
    (name_ok && semver::Version::parse(version).is_ok()).then_some((name, version))
}

/// `hello=2.10-3` → (`hello`, `2.10-3`): a Debian package at an exact version.
pub fn split_deb_spec(spec: &str) -> Option<(&str, &str)> {
    let (name, version) = spec.split_once('=')?;
    let name_ok = name.len() > 1
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    let version_ok = version.chars().next().is_some_and(|c| c.is_ascii_digit()) && version.chars().all(|c| c.is_ascii_alphanumeric() || ".+~:-".contains(c));
    (name_ok && version_ok).then_some((name, version))
}

/// `name==1.2.3` → (`name`, `1.2.3`).
pub fn split_pypi_spec(spec: &str) -> Option<(&str, &str)> {
    let (name, version) = spec.split_once("==")?;
    let ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !version.is_empty()
        && version.chars().all(|c| c.is_ascii_alphanumeric() || "._+!".contains(c));
    ok.then_some((name, version))
}

/// serde-saphyr's message without its own location prefix or snippet (we add file:line:col).
fn plain_message(e: &serde_saphyr::Error) -> String {
    let full = e.to_string();
    let first = full.lines().next().unwrap_or(&full).trim();
    // Drop a trailing " at line L, column C" that the parser may append.
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_owned(),
        None => first.to_owned(),
    }
}

/// The line and column of a top-level key in the YAML text (for semantic errors).
fn locate_key(text: &str, key: &str) -> (u64, u64) {
    text.lines()
        .position(|l| l.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with(':')))
        .map_or((0, 0), |i| (i as u64 + 1, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<PackManifest, ManifestError> {
        PackManifest::from_yaml(&format!("name: p\nversion: 1.0.0\ndescription: d\nmaintainer: m\n{yaml}"), Path::new("pack.yaml"))
    }

    #[test]
    fn defaults_and_kinds() {
        let m = parse("").unwrap();
        assert_eq!(m.install.method, InstallMethod::DockerLayer);
        assert_eq!(m.kind(), PackKind::Tool);
        let mcp = parse("command: bin/server\nargs: [\"${WORKSPACE}\"]\ndepends: [node@20]\n").unwrap();
        assert_eq!(mcp.kind(), PackKind::Mcp);
        assert_eq!(parse("transport: http\nurl: https://mcp.internal/x\n").unwrap().kind(), PackKind::Mcp);
    }

    #[test]
    fn mcp_rules() {
        assert!(parse("transport: http\n").is_err());
        assert!(parse("transport: stdio\n").is_err());
        assert!(parse("args: [x]\n").is_err());
        assert!(parse("transport: http\ncommand: x\nurl: https://x\n").is_err());
        assert!(parse("transport: sse\nurl: https://mcp.internal/sse\nheaders:\n  Authorization: \"Bearer ${env:TOKEN}\"\n").is_ok());
        assert!(parse("command: x\nheaders:\n  A: b\n").is_err());
        assert!(parse("command: x\nargs: [\"${USER}\"]\n").unwrap_err().to_string().contains("unknown placeholder `${USER}`"));
        assert!(parse("command: x\nargs: [\"${WORKSPACE}\", \"${env:GH_TOKEN}\"]\nfilesystem_requires: [\"${WORKSPACE}\", /tmp]\n").is_ok());
        assert!(parse("command: x\nfilesystem_requires: [relative]\n").is_err());
    }

    #[test]
    fn url_placeholders() {
        // Found by fuzzing (fuzz/fuzz_targets/pack_manifest.rs): an unclosed `${env:` in `url`
        // was not checked, and went into agent configs as it was (not as the agent's syntax).
        assert!(parse("transport: http\nurl: \"https://mcp.internal/${env:TOKEN\"\n").unwrap_err().to_string().contains("unclosed"));
        assert!(parse("transport: http\nurl: \"https://mcp.internal/${USER}\"\n").unwrap_err().to_string().contains("unknown placeholder"));
        assert!(parse("transport: http\nurl: \"https://mcp.internal/${env:TENANT}/mcp?w=${WORKSPACE}\"\n").is_ok());
    }

    #[test]
    fn field_rules_have_locations() {
        let err = parse("caches:\n  maven: /home/dev/.m2\n").unwrap_err().to_string();
        assert!(err.starts_with("pack.yaml:5:1: field `caches`") && err.contains("aibox-<tool>-cache"), "{err}");
        assert!(parse("caches:\n  aibox-maven-cache: /home/dev/.m2\n").is_ok());
        assert!(parse("caches:\n  aibox-a/b c-cache: /home/dev/.x\n").is_err(), "not a volume name");
        assert!(parse("caches:\n  aibox-x-cache: /usr/bin\n").is_err(), "not a cache place");
        assert!(parse("sources:\n  - npm: left-pad@1.3.0\n    sha256: 0000000000000000000000000000000000000000000000000000000000000000\n").is_err());
        assert!(parse("path: [/usr/bin]\n").is_err());
        assert!(parse("path: [../x]\n").is_err());
        assert!(parse("platforms: [amd64]\n").is_err());
        assert!(parse("env:\n  1BAD: x\n").is_err());
        assert!(parse("sources:\n  - url: https://example.com/x.tar.gz\n").unwrap_err().to_string().contains("needs `sha256`"));
        assert!(parse("sources:\n  - npm: x@1\n    pypi: y==1\n").is_err());
        let err = parse("install:\n  method: brew\n").unwrap_err().to_string();
        assert!(err.contains("pack.yaml:6:") && err.contains("brew"), "{err}");
    }

    #[test]
    fn tool_env_references() {
        let segments = env_segments("${AIBOX_LLM_PROXY:-http://localhost:8443}/anthropic").unwrap();
        assert_eq!(segments, [EnvSegment::Variable { name: "AIBOX_LLM_PROXY", default: Some("http://localhost:8443") }, EnvSegment::Literal("/anthropic")]);
        assert_eq!(env_segments("${PACK_ROOT}/lib").unwrap(), [EnvSegment::Literal("${PACK_ROOT}"), EnvSegment::Literal("/lib")]);
        assert!(parse("env:\n  X: \"${Y:-$(rm -rf /)}\"\n").is_err());
        assert!(parse("env:\n  X: \"${1BAD}\"\n").is_err());
        assert!(parse("env:\n  X: \"${HOME}/.m2\"\n").is_ok());
    }

    #[test]
    fn source_specs() {
        assert_eq!(split_npm_spec("@modelcontextprotocol/server-filesystem@2026.8.31"), Some(("@modelcontextprotocol/server-filesystem", "2026.8.31")));
        assert_eq!(split_npm_spec("left-pad@1.3.0"), Some(("left-pad", "1.3.0")));
        assert_eq!(split_npm_spec("left-pad@^1.3.0"), None);
        assert_eq!(split_npm_spec("left-pad"), None);
        assert_eq!(split_npm_spec("@scope/x"), None);
        assert_eq!(split_pypi_spec("mcp-server-git==2026.10.19"), Some(("mcp-server-git", "2026.10.19")));
        assert_eq!(split_pypi_spec("mcp-server-git>=1"), None);
        assert_eq!(split_pypi_spec("x==1; rm -rf /"), None);
        assert_eq!(split_deb_spec("hello=2.10-3"), Some(("hello", "2.10-3")));
        assert_eq!(split_deb_spec("libc6=2.36-9+deb12u4"), Some(("libc6", "2.36-9+deb12u4")));
        assert_eq!(split_deb_spec("hello"), None);
        assert_eq!(split_deb_spec("hello=$(x)"), None);
        assert_eq!(split_deb_spec("-o=1"), None, "never an option");
        assert_eq!(split_npm_spec("--registry=x@1.0.0"), None);
        assert_eq!(split_pypi_spec("-r==1"), None);
        assert!(parse("sources:\n  - npm: left-pad@latest\n").unwrap_err().to_string().contains("exact version"));
        let sha = "0".repeat(64);
        assert!(parse(&format!("platforms: [linux/amd64]\nsources:\n  - url: https://x/a.tgz\n    sha256: {sha}\n    platform: linux/arm64\n")).is_err(), "a platform not listed");
        assert!(parse(&format!("platforms: [linux/amd64, linux/arm64]\nsources:\n  - url: https://x/a.tgz\n    sha256: {sha}\n    platform: linux/amd64\n")).is_err(), "arm64 uncovered");
    }

    #[test]
    fn tags_and_canonical_json() {
        let m = parse("").unwrap();
        assert_eq!(m.tag(), "1.0.0");
        let b = PackManifest::from_yaml("name: p\nversion: 1.0.0+build.5\ndescription: d\nmaintainer: m\n", Path::new("x")).unwrap();
        assert_eq!(b.tag(), "1.0.0_build.5");
        let json = String::from_utf8(m.to_canonical_json()).unwrap();
        assert_eq!(json, r#"{"description":"d","maintainer":"m","name":"p","version":"1.0.0"}"#);
        assert_eq!(PackManifest::from_config_json(json.as_bytes()).unwrap(), m);
    }
}
