//! `aibox lock` and `aibox sync`, and what `install` / `uninstall` do inside a project: keep
//! `aibox.yaml` and `aibox.lock` in step, as cargo add / remove do.

use clap::Args;
use serde_json::json;

use super::Printer;
use super::install::{installer, mcp_after, report};
use aibox_pkgmgr::config::Settings;
use aibox_pkgmgr::extract::Limits;
use aibox_pkgmgr::project::{self, Lock, Project};
use aibox_pkgmgr::resolve::PackSpec;
use aibox_pkgmgr::{Error, Result};

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Resolve every pack afresh (newest matching releases), not only what changed.
    #[arg(long)]
    update: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Fail instead of changing aibox.lock (it must match aibox.yaml).
    #[arg(long)]
    locked: bool,
    /// Use no network (the store must be an oci: layout or an oci-archive: bundle).
    #[arg(long)]
    offline: bool,
    /// --locked and --offline.
    #[arg(long)]
    frozen: bool,
}

/// The project of the current directory, or an error saying how to make one.
fn require_project() -> Result<Project> {
    let cwd = std::env::current_dir().map_err(Error::io("cannot read", "the current directory"))?;
    Project::find(&cwd)?.ok_or_else(|| Error::Missing(format!("no {} in {} or above: create one listing `packs: [java@21, ...]`", project::PROJECT_FILE, cwd.display())))
}

/// The project of the current directory, if any.
pub(super) fn current_project() -> Result<Option<Project>> {
    match std::env::current_dir() {
        Ok(cwd) => Project::find(&cwd),
        Err(_) => Ok(None),
    }
}

fn print_lock(old: Option<&Lock>, new: &Lock, printer: Printer) {
    for p in &new.packs {
        match old.and_then(|o| o.packs.iter().find(|q| q.name == p.name)) {
            Some(q) if q == p => {}
            Some(q) => printer.status("Updating", format!("{} {} -> {}", p.name, q.version, p.version)),
            None => printer.status("Locking", format!("{} {} ({})", p.name, p.version, super::short(&p.digest))),
        }
    }
    for q in old.map(|o| o.packs.as_slice()).unwrap_or_default() {
        if !new.packs.iter().any(|p| p.name == q.name) {
            printer.status("Removing", format!("{} {} from the lock", q.name, q.version));
        }
    }
}

pub async fn lock(global: &Settings, args: LockArgs, printer: Printer) -> Result<()> {
    let project = require_project()?;
    let previous = project.read_lock()?;
    let mut installer = installer(global, printer, Limits::default(), false).await?;
    let lock = project::resolve_lock(&mut installer, &project, previous.as_ref(), args.update).await?;
    print_lock(previous.as_ref(), &lock, printer);
    let written = project::write_lock(&project, &lock)?;
    printer.status(if written { "Wrote" } else { "Unchanged" }, project.lock_path().display());
    printer.document(&json!({"lock": project.lock_path(), "changed": written, "packs": lock.packs}));
    Ok(())
}

pub async fn sync(global: &Settings, args: SyncArgs, printer: Printer) -> Result<()> {
    let locked = args.locked || args.frozen;
    let mut settings = global.clone();
    settings.offline |= args.offline || args.frozen;
    let project = require_project()?;
    let specs = project.specs()?;
    let mut installer = installer(&settings, printer, Limits::default(), false).await?;
    let previous = project.read_lock()?;
    let stale = match &previous {
        None => Some("there is no aibox.lock".to_owned()),
        Some(l) => l.stale(&specs, installer.store.location()),
    };
    let lock = match (&stale, previous.as_ref()) {
        (None, Some(l)) => l.clone(),
        (Some(why), _) if locked => {
            return Err(Error::Resolve(format!("aibox.lock is out of date: {why}; run `aibox lock` and commit it (--locked and --frozen never change it)")));
        }
        _ => {
            let l = project::resolve_lock(&mut installer, &project, previous.as_ref(), false).await?;
            print_lock(previous.as_ref(), &l, printer);
            l
        }
    };
    installer.pins = lock.pins();
    let outcomes = installer.install(&specs).await?;
    for o in &outcomes {
        if let Some(p) = lock.packs.iter().find(|p| p.name == o.name)
            && p.digest != o.digest
        {
            return Err(Error::Resolve(format!("{} was installed at {}, the lock says {}", o.name, o.digest, p.digest)));
        }
    }
    if stale.is_some() && project::write_lock(&project, &lock)? {
        printer.status("Wrote", project.lock_path().display());
    }
    report(&outcomes, printer, &settings);
    printer.document(&json!({"toolpacks": settings.toolpacks_dir, "lock": project.lock_path(), "packs": outcomes}));
    let mcp = project.mcp_names()?;
    if !mcp.is_empty() {
        super::mcp::enable_for_project(&settings, &mcp, &project.dir, printer)?;
    }
    mcp_after(&settings, &outcomes, printer)
}

/// `aibox install` inside a project: resolve with the lock (pins of unchanged requests kept),
/// install exactly that, then write the request into aibox.yaml and the lock.
pub(super) async fn install_in_project(global: &Settings, mut project: Project, specs: &[PackSpec], limits: Limits, force: bool, printer: Printer) -> Result<()> {
    let mut installer = installer(global, printer, limits, force).await?;
    let previous = project.read_lock()?;
    let before = project.clone();
    project.edit_in_memory(specs, &[]);
    let lock = project::resolve_lock(&mut installer, &project, previous.as_ref(), false).await?;
    installer.pins = lock.pins();
    let outcomes = installer.install(specs).await?;
    before.write_edit(specs, &[])?;
    print_lock(previous.as_ref(), &lock, printer);
    project::write_lock(&project, &lock)?;
    report(&outcomes, printer, global);
    printer.document(&json!({"toolpacks": global.toolpacks_dir, "project": project.path(), "packs": outcomes}));
    mcp_after(global, &outcomes, printer)
}

/// `aibox uninstall` inside a project: also out of aibox.yaml and the lock.
pub(super) async fn uninstalled_in_project(global: &Settings, project: Project, names: &[String], printer: Printer) -> Result<()> {
    let mut edited = project.clone();
    edited.edit_in_memory(&[], names);
    if edited.file.packs.len() + edited.file.mcp.len() == project.file.packs.len() + project.file.mcp.len() {
        return Ok(());
    }
    let previous = project.read_lock()?;
    project.write_edit(&[], names)?;
    let mut installer = installer(global, printer, Limits::default(), false).await?;
    let lock = project::resolve_lock(&mut installer, &edited, previous.as_ref(), false).await?;
    print_lock(previous.as_ref(), &lock, printer);
    project::write_lock(&edited, &lock)?;
    Ok(())
}
