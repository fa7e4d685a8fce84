//! `aibox pack`: lint, build, publish, sign, verify, inspect, schema.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;

use super::{Printer, human_bytes, short};
use aibox_pkgmgr::config::Settings;
use aibox_pkgmgr::cosign::{self, PublicKey};
use aibox_pkgmgr::pack::{self, BuildOptions, BuiltPack};
use aibox_pkgmgr::resolve::{PackSpec, find_target};
use aibox_pkgmgr::store::{self, RegistryConfig, Store, StoreLocation};
use aibox_pkgmgr::{Digest, Error, PackRef, Result};

#[derive(Debug, Subcommand)]
pub enum PackCommand {
    /// An MCP pack as the official MCP registry's server.json.
    ServerJson {
        /// The pack folder.
        dir: PathBuf,
        /// Reverse-DNS owner of the server name, e.g. io.github.example.
        #[arg(long, default_value = "io.aibox")]
        namespace: String,
        /// Where the pack is published (the package identifier), e.g. harbor.internal/toolpacks.
        #[arg(long, default_value = "harbor.internal/toolpacks")]
        store: String,
    },
    /// Check pack.yaml files against the schema; errors name file, line and column.
    Lint {
        /// Pack folders (each holding pack.yaml).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Also check that every dependency resolves: among the packs linted, or in this store
        /// (docker://HOST/NAMESPACE, oci:DIR, oci-archive:FILE).
        #[arg(long, value_name = "STORE")]
        deps_in: Option<String>,
    },
    /// Build a pack into a store (default: an OCI layout) without signing.
    Build {
        /// The pack folder.
        dir: PathBuf,
        /// Where to put it: oci:DIR (default oci:./out) or docker://HOST/NAMESPACE.
        #[arg(short = 'o', long = "output", default_value = "oci:./out")]
        output: String,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Build, push and sign a pack.
    Publish {
        /// The pack folder.
        dir: PathBuf,
        /// The store: docker://HOST/NAMESPACE or oci:DIR.
        #[arg(long)]
        to: String,
        /// Cosign private key to sign with (password from COSIGN_PASSWORD). Without it the pack
        /// is pushed unsigned and installs will refuse it.
        #[arg(long)]
        key: Option<PathBuf>,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Sign a published pack with a Cosign key.
    Sign {
        /// docker://HOST/NAMESPACE/NAME:TAG, NAME@sha256:..., or oci:DIR:NAME:TAG.
        reference: String,
        /// Cosign private key (password from COSIGN_PASSWORD).
        #[arg(long)]
        key: PathBuf,
    },
    /// Verify a pack's Cosign signature against public keys.
    Verify {
        /// docker://HOST/NAMESPACE/NAME:TAG, NAME@sha256:..., or oci:DIR:NAME:TAG.
        reference: String,
        /// Cosign public key(s); a signature by any of them is accepted.
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
    },
    /// Show a pack's manifest, digests, pack manifest and signatures.
    Inspect {
        /// docker://HOST/NAMESPACE/NAME:TAG, NAME@sha256:..., or oci:DIR:NAME:TAG.
        reference: String,
        /// Check signatures against these public keys.
        #[arg(long = "key")]
        keys: Vec<PathBuf>,
    },
    /// Print the JSON Schema of pack.yaml.
    Schema,
}

/// Options shared by build and publish.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Move an existing version tag to this build (published versions are otherwise immutable).
    #[arg(long)]
    force: bool,
    /// Value of the org.opencontainers.image.source annotation (default: the pack folder).
    #[arg(long)]
    source: Option<String>,
    /// The platform to build for (picks per-platform sources) [default: this machine's].
    #[arg(long)]
    platform: Option<String>,
    /// zstd compression level of the layer.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    compression_level: i32,
}

pub async fn run(cmd: PackCommand, settings: &Settings, printer: Printer) -> Result<()> {
    let registry = &settings.registry;
    match cmd {
        PackCommand::Lint { dirs, deps_in } => lint(&dirs, deps_in.as_deref(), registry, printer).await,
        PackCommand::Build { dir, output, build } => {
            let store = open_store_for_write(&output, registry).await?;
            let built = build_pack(&dir, &build, &settings.source_mirrors, printer)?;
            let outcome = push(store.as_ref(), &built, build.force, printer).await?;
            store.finish().await?;
            printer.document(&outcome);
            Ok(())
        }
        PackCommand::Publish { dir, to, key, build } => publish(&dir, &to, key.as_deref(), &build, settings, printer).await,
        PackCommand::Sign { reference, key } => {
            let reference = PackRef::parse(&reference)?;
            let signing_key = load_key(&key)?;
            let store = open_store(&reference.store.to_string(), registry).await?;
            let digest = resolve(store.as_ref(), &reference).await?;
            let outcome = cosign::sign(store.as_ref(), &reference.name, &digest, &signing_key).await?;
            if outcome.added {
                printer.status("Signed", format!("{reference} ({digest}) with key {}", short(&outcome.key)));
            } else {
                printer.status("Signed", format!("{reference} already carries a signature by key {}", short(&outcome.key)));
            }
            printer.document(&outcome);
            Ok(())
        }
        PackCommand::Verify { reference, keys } => {
            let reference = PackRef::parse(&reference)?;
            let keys = load_public_keys(&keys)?;
            let store = open_store(&reference.store.to_string(), registry).await?;
            let digest = resolve(store.as_ref(), &reference).await?;
            let verified = cosign::verify(store.as_ref(), &reference.name, &digest, &keys).await?;
            for v in &verified {
                printer.status("Verified", format!("{reference} ({digest}) signed by {} ({}), signed as {}", v.key_source, short(&v.key), v.docker_reference));
            }
            printer.document(&json!({"reference": reference.to_string(), "digest": digest, "verified": true, "signatures": verified}));
            Ok(())
        }
        PackCommand::Inspect { reference, keys } => {
            let reference = PackRef::parse(&reference)?;
            let keys = load_public_keys(&keys)?;
            let store = open_store(&reference.store.to_string(), registry).await?;
            let target = reference.require_target()?;
            let inspection = pack::inspect::inspect(store.as_ref(), &reference.name, target, &keys).await?;
            if printer.json {
                printer.document(&inspection);
            } else {
                printer.data(&render_inspection(&inspection));
            }
            Ok(())
        }
        PackCommand::ServerJson { dir, namespace, store } => {
            let manifest = aibox_pkgmgr::pack::load(&dir)?;
            let identifier = format!("{}/{}:{}", store.trim_start_matches("docker://").trim_end_matches('/'), manifest.name, manifest.tag());
            let server = aibox_schema::server_json::to_server_json(&manifest, &namespace, &identifier)
                .ok_or_else(|| aibox_pkgmgr::Error::Mcp(format!("{} is a tool pack; server.json describes MCP packs", manifest.name)))?;
            printer.data(&format!("{}\n", serde_json::to_string_pretty(&server).expect("JSON serializes")));
            Ok(())
        }
        PackCommand::Schema => {
            printer.data(&aibox_schema::schema::pack_schema_json());
            Ok(())
        }
    }
}

async fn lint(dirs: &[PathBuf], deps_in: Option<&str>, registry: &RegistryConfig, printer: Printer) -> Result<()> {
    let loaded: Vec<(PathBuf, Result<aibox_schema::PackManifest>)> = dirs.iter().map(|d| (d.clone(), pack::load(d))).collect();
    let locals: Vec<aibox_schema::PackManifest> = loaded.iter().filter_map(|(_, m)| m.as_ref().ok().cloned()).collect();
    let store = match deps_in {
        Some(s) => Some(open_store(s, registry).await?),
        None => None,
    };
    let mut results = Vec::new();
    let mut first_error = None;
    for (dir, manifest) in loaded {
        let checked = match manifest {
            Ok(m) => match recipe_problems(&dir, &m, &locals, store.as_deref()).await {
                Ok(()) => Ok(m),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match checked {
            Ok(m) => {
                printer.status("Checked", format!("{} {} ({})", m.name, m.version, dir.join("pack.yaml").display()));
                results.push(json!({"path": dir.join("pack.yaml"), "ok": true, "name": m.name, "version": m.version}));
            }
            Err(e) => {
                if dirs.len() > 1 {
                    printer.error(&e, None);
                }
                results.push(json!({"path": dir.join("pack.yaml"), "ok": false, "error": e.to_string()}));
                first_error.get_or_insert(e);
            }
        }
    }
    printer.document(&json!({"packs": results}));
    match first_error {
        None => Ok(()),
        Some(e) if dirs.len() > 1 => Err(Error::Missing(format!("{} of {} packs failed lint; first: {e}", results.iter().filter(|r| r["ok"] == false).count(), dirs.len()))),
        Some(e) => Err(e),
    }
}

/// What `lint` checks beyond the schema: npm and PyPI sources are pinned by a lock beside
/// pack.yaml, and every dependency resolves (among the packs linted, or in `store`) on every
/// platform the pack claims.
async fn recipe_problems(dir: &Path, m: &aibox_schema::PackManifest, locals: &[aibox_schema::PackManifest], store: Option<&dyn Store>) -> Result<()> {
    let unpinned = |what: &str, lock: &str| Error::Resolve(format!("{}: {what} sources are not pinned: add {lock} beside pack.yaml (docs/packs.md says how)", dir.join("pack.yaml").display()));
    if m.sources.iter().any(|s| s.npm.is_some()) && !dir.join(pack::sources::NPM_LOCK).is_file() {
        return Err(unpinned("npm", pack::sources::NPM_LOCK));
    }
    if m.sources.iter().any(|s| s.pypi.is_some()) && !dir.join(pack::sources::PIP_LOCK).is_file() {
        return Err(unpinned("PyPI", pack::sources::PIP_LOCK));
    }
    for dep in &m.depends {
        let spec: PackSpec = dep.to_string().parse()?;
        let local = locals.iter().find(|l| l.name.as_str() == spec.name.as_str() && spec.req.matches(&l.semver()));
        if let Some(l) = local {
            let missing: Vec<&String> = m.platforms.iter().filter(|p| !l.platforms.is_empty() && !l.platforms.contains(p)).collect();
            if !missing.is_empty() {
                return Err(Error::Resolve(format!(
                    "{} {} claims {}, but its dependency {} {} is not built for {}",
                    m.name,
                    m.version,
                    m.platforms.join(", "),
                    l.name,
                    l.version,
                    missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
            continue;
        }
        if let Some(store) = store
            && let Err(e) = find_target(store, &spec).await
        {
            return Err(Error::Resolve(format!("{} {} depends on {dep}, which neither the packs linted nor {} provide: {e}", m.name, m.version, store.location())));
        }
    }
    Ok(())
}

async fn publish(dir: &Path, to: &str, key: Option<&Path>, build: &BuildArgs, settings: &Settings, printer: Printer) -> Result<()> {
    // Load the key first: a wrong password must fail before anything is pushed.
    let signing_key = key.map(load_key).transpose()?;
    let store = open_store_for_write(to, &settings.registry).await?;
    let built = build_pack(dir, build, &settings.source_mirrors, printer)?;
    let outcome = push(store.as_ref(), &built, build.force, printer).await?;
    let signature = match &signing_key {
        Some(k) => {
            let s = cosign::sign(store.as_ref(), &outcome.name, &outcome.digest, k).await?;
            printer.status("Signed", format!("{} with key {}", outcome.reference, short(&s.key)));
            Some(s)
        }
        None => {
            printer.warn(format!("{} was published unsigned; installs refuse unsigned packs (sign it with `aibox pack sign {} --key cosign.key`)", outcome.reference, outcome.reference));
            None
        }
    };
    store.finish().await?;
    printer.document(&json!({"published": outcome, "signature": signature}));
    Ok(())
}

fn build_pack(dir: &Path, args: &BuildArgs, mirrors: &[String], printer: Printer) -> Result<BuiltPack> {
    let mirrors = mirrors.iter().map(|m| m.parse()).collect::<std::result::Result<Vec<_>, String>>().map_err(|reason| Error::Build { pack: dir.to_owned(), reason })?;
    let options = BuildOptions { source: args.source.clone(), compression_level: args.compression_level, fetch: pack::sources::Fetch::new(mirrors), platform: args.platform.clone().unwrap_or_else(pack::build::host_platform), ..BuildOptions::default() };
    let built = pack::build(dir, &options)?;
    printer.status("Built", format!("{} {} ({} entries, {} layer {})", built.manifest.name, built.manifest.version, built.entries, human_bytes(built.layer.size), short(built.layer.digest.as_str())));
    Ok(built)
}

async fn push(store: &dyn Store, built: &BuiltPack, force: bool, printer: Printer) -> Result<pack::PushOutcome> {
    let outcome = pack::push(store, built, force).await?;
    if outcome.unchanged {
        printer.status("Unchanged", format!("{} is already published with digest {}", outcome.reference, outcome.digest));
    } else {
        printer.status("Published", format!("{} ({}, uploaded {} blobs, {})", outcome.reference, outcome.digest, outcome.blobs_uploaded, human_bytes(outcome.bytes_uploaded)));
    }
    Ok(outcome)
}

async fn open_store(location: &str, registry: &RegistryConfig) -> Result<Box<dyn Store>> {
    store::open(&StoreLocation::parse(location)?, registry).await
}

async fn open_store_for_write(location: &str, registry: &RegistryConfig) -> Result<Box<dyn Store>> {
    store::open_for_write(&StoreLocation::parse(location)?, registry).await
}

async fn resolve(store: &dyn Store, reference: &PackRef) -> Result<Digest> {
    let target = reference.require_target()?;
    Ok(store::require_manifest(store, &reference.name, target).await?.digest)
}

fn load_key(path: &Path) -> Result<cosign::SigningKey> {
    if !path.exists() {
        return Err(Error::io("cannot read private key", path)(std::io::ErrorKind::NotFound.into()));
    }
    let password = cosign::password_from_env_or_prompt(false)?;
    cosign::load_signing_key(path, &password)
}

fn load_public_keys(paths: &[PathBuf]) -> Result<Vec<PublicKey>> {
    paths.iter().map(|p| PublicKey::from_file(p)).collect()
}

fn render_inspection(i: &pack::inspect::Inspection) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "Reference:     {}", i.reference);
    let _ = writeln!(s, "Digest:        {}", i.digest);
    let _ = writeln!(s, "Media type:    {}", i.media_type);
    let _ = writeln!(s, "Artifact type: {}", i.artifact_type.as_deref().unwrap_or("-"));
    let _ = writeln!(s, "Config:        {} {} ({} bytes)", i.config.media_type, i.config.digest, i.config.size);
    for l in &i.layers {
        let _ = writeln!(s, "Layer:         {} {} ({})", l.media_type, l.digest, human_bytes(u64::try_from(l.size).unwrap_or(0)));
    }
    for (k, v) in &i.annotations {
        let _ = writeln!(s, "Annotation:    {k}={v}");
    }
    if let Some(pack) = &i.pack {
        let _ = writeln!(s, "Pack:          {} {}: {}", pack["name"].as_str().unwrap_or("?"), pack["version"].as_str().unwrap_or("?"), pack["description"].as_str().unwrap_or(""));
    }
    if i.signatures.is_empty() {
        let _ = writeln!(s, "Signatures:    none");
    }
    for sig in &i.signatures {
        let status = match (&sig.verified_by, &sig.problem) {
            (Some(k), _) => format!("verified by {}", short(k)),
            (None, Some(p)) => format!("NOT verified: {p}"),
            (None, None) => "not checked (pass --key)".into(),
        };
        let _ = writeln!(s, "Signature:     payload {} for {} ({status})", sig.payload, sig.docker_reference.as_deref().unwrap_or("?"));
    }
    s
}
