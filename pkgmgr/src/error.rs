//! The one error type of the aibox library: what happened, with the context a user needs (which
//! pack, path, registry or key), and a hint saying what to do.

use std::path::PathBuf;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in aibox. Every variant is a refusal or a failure: the CLI exits 1.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `pack.yaml` is missing or invalid.
    #[error(transparent)]
    Manifest(#[from] aibox_schema::ManifestError),

    /// A store string that is not `docker://`, `oci:` or `oci-archive:`.
    #[error("unknown store `{0}`")]
    UnknownStore(String),

    /// A pack reference that cannot be parsed.
    #[error("invalid reference `{reference}`: {reason}")]
    InvalidReference {
        /// What was given.
        reference: String,
        /// Why it was refused.
        reason: String,
    },

    /// The registry could not be reached at all.
    #[error("cannot reach registry {registry}: {reason}")]
    RegistryUnreachable {
        /// host[:port]
        registry: String,
        /// The connection error chain.
        reason: String,
    },

    /// The registry refused our credentials (401/403).
    #[error("registry {registry} refused access to {repository} ({status}); credentials tried: {credentials}")]
    RegistryDenied {
        /// host[:port]
        registry: String,
        /// The repository asked for.
        repository: String,
        /// 401 or 403.
        status: u16,
        /// Where the credentials came from (never the secret itself).
        credentials: String,
    },

    /// The registry answered with an error.
    #[error("registry {registry} failed {operation}: {reason}")]
    Registry {
        /// host[:port]
        registry: String,
        /// What we asked.
        operation: String,
        /// What it said.
        reason: String,
    },

    /// A store location with `user:password@` in it: credentials would be shown and recorded.
    #[error("store location `{0}` carries credentials; aibox does not take them there (they would be shown in messages and recorded in state)")]
    CredentialsInStore(String),

    /// A registry request kept failing (server errors, rate limits, broken connections) until
    /// the last try.
    #[error("registry {registry}: {request} failed after {attempts} {tries}; last: {last}", tries = if *attempts == 1 { "try" } else { "tries" })]
    RegistryFailed {
        /// host[:port]
        registry: String,
        /// Method and path, e.g. `GET /v2/toolpacks/java/blobs/sha256:...`.
        request: String,
        /// Tries made.
        attempts: u32,
        /// The last status (`503 Service Unavailable`) or transport error.
        last: String,
    },

    /// A TLS certificate the registry presented is not trusted.
    #[error("TLS certificate of registry {registry} is not trusted: {reason}")]
    UntrustedCertificate {
        /// host[:port]
        registry: String,
        /// The TLS error.
        reason: String,
    },

    /// The tag or digest asked for is not in the store.
    #[error("{what} not found in {store}")]
    NotFound {
        /// What was looked up.
        what: String,
        /// The store.
        store: String,
    },

    /// The store holds content that is not what its digest says, or is malformed.
    #[error("corrupt content in {store}: {reason}")]
    Corrupt {
        /// The store.
        store: String,
        /// What was wrong.
        reason: String,
    },

    /// A write to a read-only store.
    #[error("{0} is read-only")]
    ReadOnlyStore(String),

    /// A key file is unusable.
    #[error("{}: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
        /// What to do.
        hint: &'static str,
    },

    /// The password does not decrypt the private key.
    #[error("{}: wrong password for this encrypted private key", path.display())]
    WrongPassword {
        /// The key file.
        path: PathBuf,
    },

    /// The pack has no signature at all.
    #[error("{reference} is not signed (no Cosign signature for {digest})")]
    Unsigned {
        /// The pack.
        reference: String,
        /// Its manifest digest.
        digest: String,
    },

    /// Signatures exist but none verifies with the given keys.
    #[error("no valid signature on {reference} ({digest}): {}", reasons.join("; "))]
    SignatureInvalid {
        /// The pack.
        reference: String,
        /// Its manifest digest.
        digest: String,
        /// Why each signature was rejected.
        reasons: Vec<String>,
    },

    /// A lock pins a release that no longer satisfies what is asked.
    #[error("aibox.lock pins {name} {version} ({digest}), which does not satisfy {spec}")]
    PinConflict {
        /// The pack.
        name: String,
        /// The pinned version.
        version: String,
        /// The pinned digest.
        digest: String,
        /// What is asked.
        spec: String,
    },

    /// A `script` pack's install script failed; nothing was installed.
    #[error("the install script of {pack} {how}; nothing was installed (its output: {})", log.display())]
    ScriptFailed {
        /// `name@version`.
        pack: String,
        /// `exited with 3`, `was killed`.
        how: String,
        /// The log.
        log: PathBuf,
    },

    /// Building a pack failed.
    #[error("cannot build {}: {reason}", pack.display())]
    Build {
        /// The pack folder.
        pack: PathBuf,
        /// Why.
        reason: String,
    },

    /// A file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What we were doing ("cannot read", "cannot write", ...).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Refused to overwrite a file.
    #[error("{} already exists", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },

    /// A version tag already points at different content.
    #[error("{reference} is already published with digest {existing}; this build is {new}")]
    VersionExists {
        /// The pack reference.
        reference: String,
        /// What the tag points at.
        existing: String,
        /// What was built.
        new: String,
    },

    /// A configuration file does not parse.
    #[error("configuration {}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// The policy file does not parse.
    #[error("policy {}: {message}", path.display())]
    Policy {
        /// The policy file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A lower policy layer tries to allow more than a higher one.
    #[error("{lower}: {what}, which {upper} does not allow (a team or project policy may only tighten)")]
    PolicyLoosened {
        /// `FILE:LINE` of the loosening rule.
        lower: String,
        /// `FILE:LINE` of the rule it would loosen (or the file that has none).
        upper: String,
        /// What it would allow.
        what: String,
    },

    /// No key in the policy covers the store.
    #[error("no key in policy {} trusts store {store}{}", policy.display(), if *exists { "" } else { " (the policy file does not exist)" })]
    Untrusted {
        /// The store.
        store: String,
        /// The policy file.
        policy: PathBuf,
        /// Whether the file exists.
        exists: bool,
    },

    /// The pack declares something the policy does not allow.
    #[error("policy {} refuses {pack}: {what} is not allowed by `{rule}`", policy.display())]
    PolicyRefused {
        /// The pack.
        pack: String,
        /// What it declares.
        what: String,
        /// The policy entry that would have to change.
        rule: String,
        /// The policy file.
        policy: PathBuf,
    },

    /// A pack request cannot be satisfied.
    #[error("{0}")]
    Resolve(String),

    /// A tar entry broke the extraction rules.
    #[error("refused to install {pack}: {reason}")]
    UnsafeContent {
        /// The pack.
        pack: String,
        /// Which entry and why.
        reason: String,
    },

    /// A required input is missing (e.g. a password with no terminal to ask on).
    #[error("{0}")]
    Missing(String),

    /// An MCP server cannot be set up (not installed, not an MCP pack, command not found).
    #[error("{0}")]
    Mcp(String),

    /// An agent's config file does not parse; aibox left it unchanged.
    #[error("{}:{line}:{column}: {message}", path.display())]
    AgentConfig {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },

    /// Some agents could not be configured (each already reported).
    #[error("{0}")]
    Incomplete(String),
}

impl Error {
    /// What the user can do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Manifest(_) => "fix pack.yaml; `aibox pack lint DIR` checks it, docs/pack-schema.md lists every field".into(),
            Error::UnknownStore(_) => "stores are docker://HOST/NAMESPACE, oci:DIR or oci-archive:FILE.tar".into(),
            Error::InvalidReference { .. } => "references look like docker://HOST/NAMESPACE/NAME:TAG or oci:DIR:NAME:TAG".into(),
            Error::RegistryUnreachable { .. } => "check the address, that the registry is running, and proxy settings (HTTPS_PROXY, NO_PROXY)".into(),
            Error::CredentialsInStore(_) => "log in with `docker login HOST` (or an `auths` entry / credential helper in ~/.docker/config.json), or set AIBOX_REGISTRY_USERNAME and AIBOX_REGISTRY_PASSWORD".into(),
            Error::RegistryFailed { .. } => "the registry (or a proxy on the way) is failing; nothing was installed or cached, so run the command again later. `aibox config set registry_retries N` and `registry_read_timeout SECONDS` wait longer".into(),
            Error::RegistryDenied { .. } => "log in (`docker login`, or an `auths` entry / credential helper in ~/.docker/config.json), or set AIBOX_REGISTRY_USERNAME and AIBOX_REGISTRY_PASSWORD".into(),
            Error::UntrustedCertificate { registry, .. } => format!("add the registry's CA to /etc/docker/certs.d/{registry}/ca.crt or point SSL_CERT_FILE at it; for a test registry only, list it in AIBOX_INSECURE_REGISTRIES"),
            Error::NotFound { .. } => "check the name and version; `aibox pack inspect` shows what a store holds".into(),
            Error::Corrupt { .. } => "the store content was altered or damaged; re-publish the pack or use another mirror".into(),
            Error::ReadOnlyStore(_) => "publish to a docker:// registry or an oci: layout directory".into(),
            Error::Key { hint, .. } => (*hint).into(),
            Error::WrongPassword { .. } => "set COSIGN_PASSWORD to the password the key was generated with".into(),
            Error::Unsigned { .. } => "sign it with `aibox pack sign REF --key cosign.key` (or cosign sign --key)".into(),
            Error::SignatureInvalid { .. } => "verify with the public key matching the signing key; a tampered pack must be re-published".into(),
            Error::Exists { .. } => "remove it first, or pass --force".into(),
            Error::Policy { .. } => "fix the policy file".into(),
            Error::PinConflict { .. } => "run `aibox lock` to move the pin (and commit aibox.lock)".into(),
            Error::ScriptFailed { log, .. } => format!("read {} and report it to the pack's publisher", log.display()),
            Error::PolicyLoosened { .. } => "remove the rule from the lower layer, or ask the owner of the higher one to allow it; `aibox policy explain` shows every layer".into(),
            Error::Config { .. } => "fix the file; docs/configuration.md lists every key".into(),
            Error::Untrusted { store, .. } => format!("add a `trust` entry with `store: {store}` and the publisher's public key (keys: [/etc/aibox/keys/NAME.pub]) to the policy, or pass --policy / AIBOX_POLICY"),
            Error::PolicyRefused { rule, .. } => format!("ask the policy owner to allow it in `{rule}`, or use another pack"),
            Error::Resolve(_) => "`aibox list packs` shows what the store offers; `aibox info NAME` its versions".into(),
            Error::UnsafeContent { .. } => "the pack is malformed or malicious; nothing was installed. Report it to its publisher".into(),
            Error::VersionExists { .. } => "published versions are immutable: bump `version` in pack.yaml (or pass --force to move the tag)".into(),
            Error::AgentConfig { .. } => "aibox left the file unchanged; fix it (or move it away) and run `aibox mcp regenerate`".into(),
            Error::Mcp(_) => "`aibox mcp list` shows the MCP packs the store offers and what is enabled".into(),
            Error::Io { path, source, .. } if is_disk_full(source) => format!("the filesystem holding {} is full: free space there (`df -h`, `aibox cache gc`) and run the command again; nothing was changed", path.display()),
            Error::Build { .. } | Error::Io { .. } | Error::Registry { .. } | Error::Missing(_) | Error::Incomplete(_) => return None,
        })
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { action, path, source }
    }
}

/// Whether an I/O error means the disk (or the user's quota) is full.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
}

/// Where and why a YAML document (policy, configuration, aibox.yaml, aibox.lock, images.yaml)
/// does not parse: `line L, column C: <the parser's first line>`.
pub fn yaml_error(e: &serde_saphyr::Error) -> String {
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    format!("line {line}, column {column}: {}", e.to_string().lines().next().unwrap_or_default())
}
