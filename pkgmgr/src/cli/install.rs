//! `aibox install | uninstall | update | status | list | info | env`.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{Printer, human_bytes, progress, short};
use aibox_pkgmgr::config::Settings;
use aibox_pkgmgr::extract::Limits;
use aibox_pkgmgr::install::{Installer, PackOutcome};
use aibox_pkgmgr::resolve::{PackSpec, find_target};
use aibox_pkgmgr::store::{self, Store, StoreLocation};
use aibox_pkgmgr::toolpacks::{Shell, Toolpacks};
use aibox_pkgmgr::{Error, Result, cosign};

/// Extraction limits, shared by install and update.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Most bytes one pack may unpack to.
    #[arg(long, env = "AIBOX_MAX_PACK_BYTES", default_value_t = Limits::default().max_bytes)]
    max_pack_bytes: u64,
    /// Most entries one pack may hold.
    #[arg(long, env = "AIBOX_MAX_PACK_ENTRIES", default_value_t = Limits::default().max_entries)]
    max_pack_entries: u64,
    /// Longest path inside a pack, in bytes.
    #[arg(long, env = "AIBOX_MAX_PATH_LENGTH", default_value_t = Limits::default().max_path_len)]
    max_path_length: usize,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits { max_bytes: self.max_pack_bytes, max_entries: self.max_pack_entries, max_path_len: self.max_path_length }
    }
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Packs to install.
    #[arg(required = true, value_delimiter = ',')]
    packs: Vec<String>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Reinstall packs already installed, re-extracting them from verified bytes (repairs a
    /// damaged tree).
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Packs to remove.
    #[arg(required = true, value_delimiter = ',')]
    packs: Vec<String>,
    /// Remove even when installed packs depend on them.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Packs to update (default: every pack installed on request).
    packs: Vec<String>,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// Packs in the store, with their versions.
    Packs,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove cached layers that no installed pack uses.
    Gc,
    /// Remove every cached layer (installs download them again).
    Clean,
}

pub async fn cache(global: &Settings, cmd: CacheCommand, printer: Printer) -> Result<()> {
    let toolpacks = Toolpacks::new(&global.toolpacks_dir);
    // The project's lock counts as in use: its layers stay for the next `sync`.
    let locked: Vec<String> = match super::project::current_project()? {
        Some(p) => p.read_lock()?.map(|l| l.packs.into_iter().map(|p| p.layer).collect()).unwrap_or_default(),
        None => Vec::new(),
    };
    let collected = aibox_pkgmgr::install::collect_cache(&toolpacks, matches!(cmd, CacheCommand::Clean), &locked).await?;
    printer.status("Removed", format!("{} cached layer(s) and {} unpacked tree(s), {} freed", collected.blobs, collected.trees, human_bytes(collected.bytes)));
    printer.document(&collected);
    Ok(())
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// NAME or NAME@VERSION.
    pack: String,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// Shell syntax.
    #[arg(long, value_enum, default_value = "bash")]
    shell: ShellArg,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ShellArg {
    Bash,
    Zsh,
    Sh,
    Fish,
}

pub(super) async fn open_store(global: &Settings) -> Result<Box<dyn Store>> {
    let location = StoreLocation::parse(&global.store)?;
    if global.offline && matches!(location, StoreLocation::Registry { .. }) {
        return Err(Error::Missing(format!("--offline: store {location} needs the network; use an oci: layout or an oci-archive: bundle")));
    }
    store::open(&location, &global.registry.clone()).await
}

pub(super) async fn installer(global: &Settings, printer: Printer, limits: Limits, force: bool) -> Result<Installer> {
    Ok(Installer {
        store: open_store(global).await?,
        policy: aibox_pkgmgr::policy::layers::load(&global.policy)?,
        toolpacks: Toolpacks::new(&global.toolpacks_dir),
        limits,
        reporter: progress::reporter(printer),
        force,
        pins: std::collections::BTreeMap::new(),
    })
}

fn parse_specs(packs: &[String]) -> Result<Vec<PackSpec>> {
    packs.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).map(str::parse).collect()
}

pub async fn install(global: &Settings, args: InstallArgs, printer: Printer) -> Result<()> {
    let specs = parse_specs(&args.packs)?;
    if let Some(project) = super::project::current_project()? {
        return super::project::install_in_project(global, project, &specs, args.limits.limits(), args.force, printer).await;
    }
    let installer = installer(global, printer, args.limits.limits(), args.force).await?;
    let outcomes = installer.install(&specs).await?;
    report(&outcomes, printer, global);
    printer.document(&json!({"toolpacks": global.toolpacks_dir, "packs": outcomes}));
    mcp_after(global, &outcomes, printer)
}

/// Agent configs that point into these packs are rendered again. Unchanged packs too: a run
/// killed after installing them may not have rendered them (a failure to render those is not
/// this run's, and does not fail it).
pub(super) fn mcp_after(global: &Settings, outcomes: &[PackOutcome], printer: Printer) -> Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = outcomes.iter().map(|o| o.name.clone()).collect();
    let rendered = super::mcp::packs_changed(global, &names, printer);
    if outcomes.iter().any(|o| o.action != "already-installed") { rendered } else { Ok(()) }
}

pub(super) fn report(outcomes: &[PackOutcome], printer: Printer, global: &Settings) {
    for o in outcomes {
        let verb = match o.action {
            "already-installed" => "Unchanged",
            "upgraded" => "Upgraded",
            _ => "Installed",
        };
        let size = if o.bytes > 0 { format!(", {}", human_bytes(o.bytes)) } else { String::new() };
        printer.status(verb, format!("{} {} ({}{size}) in {}", o.name, o.version, short(&o.digest), o.path.display()));
        for (volume, path) in &o.caches {
            match aibox_pkgmgr::toolpacks::prepare_cache(std::path::Path::new(path)) {
                aibox_pkgmgr::toolpacks::CacheDir::Skipped(why) => printer.status("Cache", format!("volume {volume} -> {path} (not created: {why})")),
                _ => printer.status("Cache", format!("volume {volume} -> {path}")),
            }
        }
    }
    if outcomes.iter().any(|o| o.action != "already-installed") {
        printer.detail(format!("activate with: . {}", global.toolpacks_dir.join("env.sh").display()));
    }
}

pub async fn uninstall(global: &Settings, args: UninstallArgs, printer: Printer) -> Result<()> {
    let removed = match aibox_pkgmgr::install::uninstall(&Toolpacks::new(&global.toolpacks_dir), &args.packs, args.force).await {
        Ok(removed) => removed,
        Err(e) => {
            // A run killed after writing the state left agents pointing into removed packs:
            // servers whose pack is gone come out now (also when this run is refused).
            let _ = super::mcp::packs_changed(global, &[], printer);
            return Err(e);
        }
    };
    for name in &removed {
        printer.status("Removed", name);
    }
    printer.document(&json!({"removed": removed}));
    if let Some(project) = super::project::current_project()? {
        super::project::uninstalled_in_project(global, project, &removed, printer).await?;
    }
    super::mcp::packs_changed(global, &removed, printer)
}

pub async fn update(global: &Settings, args: UpdateArgs, printer: Printer) -> Result<()> {
    let toolpacks = Toolpacks::new(&global.toolpacks_dir);
    let state = toolpacks.state()?;
    let mut specs = Vec::new();
    for (name, pack) in &state.packs {
        if !args.packs.is_empty() && !args.packs.contains(name) {
            continue;
        }
        let spec = match &pack.requested {
            Some(r) => r.clone(),
            None if args.packs.is_empty() => continue, // dependencies move with what needs them
            None => format!("{name}@{}", semver::Version::parse(&pack.version).map(|v| v.major.to_string()).unwrap_or_default()),
        };
        specs.push(spec.parse::<PackSpec>()?);
    }
    for name in &args.packs {
        if !state.packs.contains_key(name) {
            return Err(Error::Resolve(format!("`{name}` is not installed; install it first")));
        }
    }
    if specs.is_empty() {
        printer.status("Unchanged", "nothing installed to update");
        printer.document(&json!({"packs": []}));
        return Ok(());
    }
    let installer = installer(global, printer, args.limits.limits(), false).await?;
    let outcomes = installer.install(&specs).await?;
    report(&outcomes, printer, global);
    printer.document(&json!({"packs": outcomes}));
    mcp_after(global, &outcomes, printer)
}

pub fn status(global: &Settings, printer: Printer) -> Result<()> {
    let toolpacks = Toolpacks::new(&global.toolpacks_dir);
    let state = toolpacks.state()?;
    if printer.json {
        printer.document(&json!({"toolpacks": global.toolpacks_dir, "packs": state.packs}));
        return Ok(());
    }
    if state.packs.is_empty() {
        printer.data(&format!("No packs installed in {}\n", global.toolpacks_dir.display()));
        return Ok(());
    }
    let mut out = format!("{:<20} {:<14} {:<20} {:<20} {:>10}  {}\n", "PACK", "VERSION", "DIGEST", "SIGNER", "SIZE", "INSTALLED");
    for (name, p) in &state.packs {
        out.push_str(&format!(
            "{:<20} {:<14} {:<20} {:<20} {:>10}  {}{}\n",
            name,
            p.version,
            short(&p.digest),
            short(&p.signer),
            human_bytes(p.size),
            p.installed_at,
            if p.requested.is_none() { "  (dependency)" } else { "" }
        ));
    }
    printer.data(&out);
    Ok(())
}

pub async fn list(global: &Settings, cmd: ListCommand, printer: Printer) -> Result<()> {
    let ListCommand::Packs = cmd;
    let store = open_store(global).await?;
    let mut packs = BTreeMap::new();
    for name in store.list_packs().await? {
        let mut versions: Vec<semver::Version> = store.list_tags(&name).await?.iter().filter_map(|t| semver::Version::parse(&t.replace('_', "+")).ok()).collect();
        versions.sort();
        packs.insert(name, versions.iter().rev().map(ToString::to_string).collect::<Vec<_>>());
    }
    if printer.json {
        printer.document(&json!({"store": store.location().to_string(), "packs": packs}));
    } else {
        let mut out = String::new();
        for (name, versions) in &packs {
            out.push_str(&format!("{name:<24} {}\n", versions.join(", ")));
        }
        if packs.is_empty() {
            out = format!("No packs in {}\n", store.location());
        }
        printer.data(&out);
    }
    Ok(())
}

pub async fn info(global: &Settings, args: InfoArgs, printer: Printer) -> Result<()> {
    let spec: PackSpec = args.pack.parse()?;
    let store = open_store(global).await?;
    let name = spec.name.as_str();
    let tags = store.list_tags(name).await?;
    let target = find_target(store.as_ref(), &spec).await?;
    let inspection = aibox_pkgmgr::pack::inspect::inspect(store.as_ref(), name, &target, &[]).await?;
    let keys = aibox_pkgmgr::policy::layers::load(&global.policy).and_then(|p| p.keys_for(store.location()));
    let trust = match &keys {
        Ok(keys) => match cosign::verify(store.as_ref(), name, &inspection.digest, keys).await {
            Ok(v) => format!("verified by {}", v[0].key_source),
            Err(e) => format!("NOT verified: {e}"),
        },
        Err(e) => format!("not checked: {e}"),
    };
    let mut versions: Vec<semver::Version> = tags.iter().filter_map(|t| semver::Version::parse(&t.replace('_', "+")).ok()).collect();
    versions.sort();
    let versions: Vec<String> = versions.iter().rev().map(ToString::to_string).collect();
    let pack = inspection.pack.clone().unwrap_or_default();
    if printer.json {
        printer.document(&json!({"name": name, "digest": inspection.digest, "signature": trust, "versions": versions, "manifest": pack}));
        return Ok(());
    }
    let field = |k: &str| match &pack[k] {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let mut out = String::new();
    for (label, value) in [
        ("Name", field("name")),
        ("Version", field("version")),
        ("Description", field("description")),
        ("Maintainer", field("maintainer")),
        ("Digest", inspection.digest.to_string()),
        ("Signature", trust),
        ("Depends", field("depends")),
        ("Network", field("network")),
        ("Path", field("path")),
        ("Env", field("env")),
        ("Caches", field("caches")),
        ("Versions", versions.join(", ")),
    ] {
        out.push_str(&format!("{label:<12} {value}\n"));
    }
    printer.data(&out);
    Ok(())
}

pub fn env(global: &Settings, args: &EnvArgs, printer: Printer) -> Result<()> {
    let toolpacks = Toolpacks::new(&global.toolpacks_dir);
    let state = toolpacks.state()?;
    let shell = match args.shell {
        ShellArg::Fish => Shell::Fish,
        ShellArg::Bash | ShellArg::Zsh | ShellArg::Sh => Shell::Posix,
    };
    let script = toolpacks.env_script(&state, shell);
    if printer.json {
        let env: BTreeMap<&String, BTreeMap<&String, String>> = state
            .packs
            .iter()
            .map(|(n, p)| (n, p.env.iter().map(|(k, v)| (k, v.replace("${PACK_ROOT}", &toolpacks.current(n).to_string_lossy()))).collect()))
            .collect();
        let tp = &toolpacks;
        let path: Vec<String> = state.packs.iter().flat_map(|(n, p)| p.path.iter().map(move |d| format!("{}/{d}", tp.current(n).display()))).collect();
        printer.document_verbatim(&json!({"path": path, "env": env}));
    } else {
        printer.verbatim(&script);
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Only check (what `verify-installed` does).
    #[arg(long)]
    check: bool,
}

/// `aibox verify-installed`: every installed file against its pack's layer.
pub async fn verify_installed(global: &Settings, printer: Printer) -> Result<()> {
    let checks = run_checks(global).await?;
    print_checks(&checks, printer);
    printer.document(&json!({"packs": checks}));
    let damaged = checks.iter().filter(|c| c.damaged()).count();
    if damaged > 0 {
        return Err(Error::Incomplete(format!("{damaged} pack(s) differ from what was installed; `aibox repair` reinstalls them from verified bytes")));
    }
    Ok(())
}

/// `aibox repair`: reinstall damaged packs (same release) from the cache or the store.
pub async fn repair(global: &Settings, args: RepairArgs, printer: Printer) -> Result<()> {
    if args.check {
        return verify_installed(global, printer).await;
    }
    let checks = run_checks(global).await?;
    print_checks(&checks, printer);
    let toolpacks = Toolpacks::new(&global.toolpacks_dir);
    let state = toolpacks.state()?;
    let mut repaired = Vec::new();
    for check in checks.iter().filter(|c| c.damaged()) {
        let pack = &state.packs[&check.name];
        let name: aibox_schema::PackName = check.name.parse().map_err(|e: aibox_schema::NameError| Error::Resolve(e.to_string()))?;
        let version = semver::Version::parse(&pack.version).map_err(|e| Error::Resolve(e.to_string()))?;
        // The damaged tree shares inodes with its cached copy: that goes too.
        if let Ok(layer) = pack.layer.parse() {
            toolpacks.cache().forget_tree(&layer);
        }
        let mut installer = installer(global, printer, Limits::default(), true).await?;
        installer.pins.insert(check.name.clone(), pack.digest.parse().map_err(|e: String| Error::Resolve(e))?);
        installer.install(&[PackSpec { name, req: aibox_pkgmgr::resolve::VersionReq::Exact(version) }]).await?;
        // What asked for it stays as it was (a dependency stays a dependency).
        let lock = aibox_pkgmgr::install::lock(&toolpacks).await?;
        let mut now = toolpacks.state()?;
        if let Some(p) = now.packs.get_mut(&check.name) {
            p.requested.clone_from(&pack.requested);
        }
        toolpacks.save_state(&lock, &now)?;
        drop(lock);
        printer.status("Repaired", format!("{} {}", check.name, check.version));
        repaired.push(check.name.clone());
    }
    if repaired.is_empty() {
        printer.status("Verified", "nothing to repair");
    }
    printer.document(&json!({"repaired": repaired, "packs": checks}));
    Ok(())
}

async fn run_checks(global: &Settings) -> Result<Vec<aibox_pkgmgr::verify::PackCheck>> {
    let toolpacks = Toolpacks::new(&global.toolpacks_dir);
    // The store is only needed for layers no longer cached.
    let store = open_store(global).await.ok();
    aibox_pkgmgr::verify::verify_installed(&toolpacks, store.as_deref()).await
}

fn print_checks(checks: &[aibox_pkgmgr::verify::PackCheck], printer: Printer) {
    for c in checks {
        if let Some(why) = &c.unchecked {
            printer.warn(format!("{} {}: not checked ({why})", c.name, c.version));
        } else if c.damaged() {
            let list = |v: &[String]| {
                let mut s = v.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
                if v.len() > 10 {
                    s.push_str(&format!(" and {} more", v.len() - 10));
                }
                s
            };
            let mut parts = Vec::new();
            for (what, v) in [("changed", &c.changed), ("missing", &c.missing), ("extra", &c.extra)] {
                if !v.is_empty() {
                    parts.push(format!("{what}: {}", list(v)));
                }
            }
            printer.warn(format!("{} {} differs from its layer: {}", c.name, c.version, parts.join("; ")));
        } else {
            printer.status("Verified", format!("{} {}", c.name, c.version));
        }
    }
}
