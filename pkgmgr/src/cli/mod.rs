//! The `aibox` command line: argument definitions and dispatch. Each command group has its own
//! module; all real work is in the library.

mod bundle;
mod config;
mod doctor;
mod install;
mod key;
mod mcp;
mod pack;
mod policy;
mod project;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use aibox_pkgmgr::Result;
use aibox_pkgmgr::config::{Overrides, Settings};
pub use aibox_pkgmgr::term::{Printer, human_bytes, progress, short};

/// aibox: signed tool packs and MCP servers for AI sandboxes.
#[derive(Debug, Parser)]
#[command(name = "aibox", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes (also from the environment).
#[derive(Debug, clap::Args)]
#[allow(clippy::struct_excessive_bools)] // flags, as clap declares them
pub struct Global {
    /// Print one machine-readable JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but warnings and errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more detail.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Where packs come from: docker://HOST/NAMESPACE, oci:DIR or oci-archive:FILE
    /// [default: config `store`, else oci:/srv/aibox/layout].
    #[arg(long, global = true, env = "AIBOX_STORE")]
    pub store: Option<String>,
    /// Where packs are installed [default: config `toolpacks_dir`, else /opt/toolpacks].
    #[arg(long, global = true, env = "AIBOX_TOOLPACKS_DIR")]
    pub toolpacks_dir: Option<PathBuf>,
    /// The policy: trusted stores and keys, allowed endpoints and install methods
    /// [default: config `policy`, else /etc/aibox/policy.yaml].
    #[arg(long, global = true, env = "AIBOX_POLICY")]
    pub policy: Option<PathBuf>,
    /// Use no network: only oci: and oci-archive: stores.
    #[arg(long, global = true, env = "AIBOX_OFFLINE")]
    pub offline: bool,
}

impl Global {
    /// How to print, from `--json`, `-q`, `-v`.
    pub fn printer(&self) -> Printer {
        Printer { quiet: self.quiet, json: self.json, verbose: self.verbose }
    }

    /// The settings in force: these flags and variables over the configuration files.
    fn settings(&self) -> Result<Settings> {
        Settings::resolve(Overrides { store: self.store.clone(), toolpacks_dir: self.toolpacks_dir.clone(), policy: self.policy.clone(), offline: self.offline })
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install packs: NAME, NAME@21, NAME@21.0.2, NAME@latest, NAME@sha256:... (also comma-separated).
    Install(install::InstallArgs),
    /// Remove installed packs.
    Uninstall(install::UninstallArgs),
    /// Move installed packs to the newest release matching what was asked.
    Update(install::UpdateArgs),
    /// Install what the project's aibox.yaml asks, pinned by aibox.lock (written when missing or stale).
    Sync(project::SyncArgs),
    /// Resolve aibox.yaml to exact releases in aibox.lock; install nothing.
    Lock(project::LockArgs),
    /// Installed packs: version, digest, signer, size, when.
    Status,
    /// Compare every installed file with its pack's layer: changed, missing and extra files.
    VerifyInstalled,
    /// Reinstall damaged packs (same release) from the cache or the store; --check only looks.
    Repair(install::RepairArgs),
    /// What the store offers.
    #[command(subcommand)]
    List(install::ListCommand),
    /// A pack's manifest: description, dependencies, network, paths, env, versions.
    Info(install::InfoArgs),
    /// The environment installed packs add (what env.sh sets).
    Env(install::EnvArgs),
    /// The install cache: `gc` keeps what installed packs use, `clean` empties it.
    #[command(subcommand)]
    Cache(install::CacheCommand),
    /// Air-gap bundles: create, inspect, verify, push.
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
    /// Copy packs with their signatures between stores (registry to registry, to a layout, ...).
    Copy(bundle::CopyArgs),
    /// MCP servers for every AI agent: enable, disable, list, regenerate.
    #[command(subcommand)]
    Mcp(mcp::McpCommand),
    /// What is wrong here (toolpacks dir, state, policy, store, shell, agent configs, project) and how to fix it.
    Doctor,
    /// The configuration files: get, set, unset keys.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// The layered policy: validate it, explain where each rule comes from.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Cosign-compatible signing keys.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Author, build, publish, sign, verify and inspect packs.
    #[command(subcommand)]
    Pack(pack::PackCommand),
}

impl Cli {
    /// How to print.
    pub fn printer(&self) -> Printer {
        self.global.printer()
    }

    /// Run the command.
    pub async fn run(self) -> Result<()> {
        let printer = self.printer();
        let global = self.global.settings()?;
        match self.command {
            Command::Install(args) => install::install(&global, args, printer).await,
            Command::Uninstall(args) => install::uninstall(&global, args, printer).await,
            Command::Update(args) => install::update(&global, args, printer).await,
            Command::Sync(args) => project::sync(&global, args, printer).await,
            Command::Lock(args) => project::lock(&global, args, printer).await,
            Command::Status => install::status(&global, printer),
            Command::VerifyInstalled => install::verify_installed(&global, printer).await,
            Command::Repair(args) => install::repair(&global, args, printer).await,
            Command::List(cmd) => install::list(&global, cmd, printer).await,
            Command::Info(args) => install::info(&global, args, printer).await,
            Command::Env(args) => install::env(&global, &args, printer),
            Command::Cache(cmd) => install::cache(&global, cmd, printer).await,
            Command::Bundle(cmd) => bundle::run(cmd, &global, printer).await,
            Command::Copy(args) => bundle::copy(&global, args, printer).await,
            Command::Mcp(cmd) => mcp::run(cmd, &global, printer).await,
            Command::Policy(cmd) => policy::run(cmd, &global, printer),
            Command::Config(cmd) => config::run(cmd, &global, printer),
            Command::Doctor => doctor::run(&global, printer).await,
            Command::Key(cmd) => key::run(cmd, printer),
            Command::Pack(cmd) => pack::run(cmd, &global, printer).await,
        }
    }
}
