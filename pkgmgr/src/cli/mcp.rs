//! `aibox mcp enable | disable | list | regenerate`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::install::{installer, open_store};
use super::{Printer, short};
use aibox_pkgmgr::config::Settings;
use aibox_pkgmgr::extract::Limits;
use aibox_pkgmgr::mcp::agents::{self, profile};
use aibox_pkgmgr::mcp::{Action, AgentEnv, CANONICAL, Mcp, Placeholders, Profile, Report, Scope};
use aibox_pkgmgr::resolve::{PackSpec, find_target, read_pack_manifest};
use aibox_pkgmgr::toolpacks::Toolpacks;
use aibox_pkgmgr::{Error, Result};
use aibox_schema::PackKind;

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Install MCP packs if needed (with their dependencies), then configure every AI agent.
    Enable(EnableArgs),
    /// Take servers out of every agent config (only what aibox wrote).
    Disable(DisableArgs),
    /// MCP packs the store offers, enabled servers, and per agent: configured / missing / drifted.
    List(ListArgs),
    /// Rewrite every agent's entries from the enabled servers (resets entries edited by hand).
    Regenerate(RegenerateArgs),
    /// The agents aibox knows, where each keeps its config, and whether it was found.
    Agents(ScopeArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ScopeArg {
    /// The user's agent configs (~/.claude.json, ~/.codex/config.toml, ...).
    User,
    /// The project's files (.mcp.json, .vscode/mcp.json, .cursor/mcp.json, ...).
    Project,
}

#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// Which configs: the user's, or a project's.
    #[arg(long, value_enum, default_value = "user")]
    scope: ScopeArg,
    /// The project directory for --scope project [default: the current directory].
    #[arg(long)]
    project: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EnableArgs {
    /// MCP packs: NAME or NAME@VERSION (also comma-separated).
    #[arg(required = true, value_delimiter = ',')]
    packs: Vec<String>,
    /// Configure this agent even when its config does not exist yet (repeatable).
    #[arg(long = "agent", value_name = "ID")]
    agents: Vec<String>,
    #[command(flatten)]
    scope: ScopeArgs,
}

#[derive(Debug, Args)]
pub struct DisableArgs {
    /// Servers (pack names) to disable.
    #[arg(required = true, value_delimiter = ',')]
    packs: Vec<String>,
    #[command(flatten)]
    scope: ScopeArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this scope [default: every scope with enabled servers].
    #[arg(long, value_enum)]
    scope: Option<ScopeArg>,
    /// The project directory for --scope project [default: the current directory].
    #[arg(long)]
    project: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RegenerateArgs {
    /// Only this scope [default: every scope with enabled servers].
    #[arg(long, value_enum)]
    scope: Option<ScopeArg>,
    /// The project directory for --scope project [default: the current directory].
    #[arg(long)]
    project: Option<PathBuf>,
    /// Configure this agent too, even when its config does not exist yet (repeatable).
    #[arg(long = "agent", value_name = "ID")]
    agents: Vec<String>,
}

pub async fn run(cmd: McpCommand, global: &Settings, printer: Printer) -> Result<()> {
    match cmd {
        McpCommand::Enable(args) => enable(global, args, printer).await,
        McpCommand::Disable(args) => {
            let scope = scope(args.scope.scope, args.scope.project)?;
            let report = mcp(global)?.disable(&args.packs, &scope)?;
            finish(&report, printer)
        }
        McpCommand::List(args) => list(global, args, printer).await,
        McpCommand::Regenerate(args) => {
            let forced = forced_agents(&args.agents)?;
            let scope = args.scope.map(|s| scope(s, args.project)).transpose()?;
            let report = mcp(global)?.regenerate(scope.as_ref(), &forced)?;
            finish(&report, printer)
        }
        McpCommand::Agents(args) => agents_table(global, &scope(args.scope, args.project)?, printer),
    }
}

fn scope(arg: ScopeArg, project: Option<PathBuf>) -> Result<Scope> {
    Ok(match arg {
        ScopeArg::User => Scope::User,
        ScopeArg::Project => {
            let dir = match project {
                Some(d) => d,
                None => std::env::current_dir().map_err(Error::io("cannot read", "the current directory"))?,
            };
            Scope::Project(std::fs::canonicalize(&dir).map_err(Error::io("cannot find the project", &dir))?)
        }
    })
}

/// The MCP context of this user and machine.
pub fn mcp(global: &Settings) -> Result<Mcp> {
    let env = AgentEnv::from_process().ok_or_else(|| Error::Missing("HOME is not set: aibox cannot tell where agents keep their configs".into()))?;
    let workspace = std::env::var_os("AIBOX_WORKSPACE").filter(|v| !v.is_empty()).map_or_else(|| PathBuf::from("/workspace"), PathBuf::from);
    let places = Placeholders { workspace, home: env.home.clone() };
    Ok(Mcp { env, places, toolpacks: Toolpacks::new(&global.toolpacks_dir) })
}

fn forced_agents(ids: &[String]) -> Result<Vec<&'static Profile>> {
    ids.iter()
        .map(|id| profile(id).ok_or_else(|| Error::Missing(format!("unknown agent `{id}`; known agents: {}", agents::ids().join(", ")))))
        .collect()
}

async fn enable(global: &Settings, args: EnableArgs, printer: Printer) -> Result<()> {
    let forced = forced_agents(&args.agents)?;
    let scope = scope(args.scope.scope, args.scope.project)?;
    let specs: Vec<PackSpec> = args.packs.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).map(str::parse).collect::<Result<_>>()?;
    let mcp = mcp(global)?;
    let state = mcp.toolpacks.state()?;
    // Install what is missing, or installed at a version the request excludes, with its
    // dependencies, through the one install pipeline.
    let missing: Vec<PackSpec> = specs
        .iter()
        .filter(|s| !state.packs.get(s.name.as_str()).is_some_and(|p| semver::Version::parse(&p.version).is_ok_and(|v| s.req.matches(&v))))
        .cloned()
        .collect();
    let mut installed_now = Vec::new();
    if missing.is_empty() {
        // Installed by a run that was killed before it wrote env.sh: finish that. Best effort:
        // packs baked into an image may sit in a directory this user cannot write.
        let _ = aibox_pkgmgr::install::settle(&mcp.toolpacks).await;
    } else {
        let outcomes = installer(global, printer, Limits::default(), false).await?.install(&missing).await?;
        for o in &outcomes {
            if o.action != "already-installed" {
                printer.status("Installed", format!("{} {} ({})", o.name, o.version, short(&o.digest)));
                if !state.packs.contains_key(&o.name) {
                    installed_now.push(o.name.clone());
                }
            }
        }
    }
    let names: Vec<String> = specs.iter().map(|s| s.name.to_string()).collect();
    let policy = aibox_pkgmgr::policy::layers::load(&global.policy)?;
    let report = match mcp.enable(&names, &scope, &forced, &policy) {
        Ok(r) => r,
        Err(e) => {
            // Refused: leave the machine as it was, without the packs this command installed.
            if !installed_now.is_empty() {
                aibox_pkgmgr::install::uninstall(&mcp.toolpacks, &installed_now, true).await?;
                printer.status("Removed", format!("{} (installed for this request)", installed_now.join(", ")));
            }
            return Err(e);
        }
    };
    let result = finish(&report, printer);
    if report.changes.iter().all(|c| c.agent == CANONICAL) {
        printer.status("Note", "no AI agent config found; name agents with --agent ID (`aibox mcp agents` lists them)");
    }
    result
}

/// Enable installed MCP packs `names` for the agents of the project in `dir` (`aibox sync`).
pub(super) fn enable_for_project(global: &Settings, names: &[String], dir: &std::path::Path, printer: Printer) -> Result<()> {
    let mcp = mcp(global)?;
    let scope = Scope::Project(std::fs::canonicalize(dir).map_err(Error::io("cannot find the project", dir))?);
    let policy = aibox_pkgmgr::policy::layers::load(&global.policy)?;
    let report = mcp.enable(names, &scope, &[], &policy)?;
    print_changes(&report, printer);
    failure(&report)
}

fn agent_name(id: &str) -> &str {
    if id == CANONICAL { "aibox (canonical)" } else { profile(id).map_or(id, |p| p.name) }
}

fn tilde(path: &std::path::Path) -> String {
    match std::env::home_dir().and_then(|h| path.strip_prefix(h).ok().map(|r| format!("~/{}", r.display()))) {
        Some(s) => s,
        None => path.display().to_string(),
    }
}

/// Print a report and its `--json` document; exit 1 when a file or server could not be done.
fn finish(report: &Report, printer: Printer) -> Result<()> {
    print_changes(report, printer);
    printer.document(&json!({"changes": report.changes, "errors": report.errors}));
    failure(report)
}

fn failure(report: &Report) -> Result<()> {
    if report.failed() {
        let files = report.changes.iter().filter(|c| matches!(c.action, Action::Failed | Action::Conflict)).count() + report.errors.len();
        return Err(Error::Incomplete(format!("{files} problem(s) above; everything else was configured")));
    }
    Ok(())
}

fn print_changes(report: &Report, printer: Printer) {
    for c in &report.changes {
        let at = format!("{} ({})", agent_name(&c.agent), tilde(&c.file));
        let detail = c.detail.clone().unwrap_or_default();
        match c.action {
            Action::Added => printer.status("Configured", format!("{} for {at}", c.server)),
            Action::Updated => printer.status("Updated", format!("{} for {at}", c.server)),
            Action::Removed => printer.status("Removed", format!("{} from {at}", c.server)),
            Action::Unchanged if c.server.is_empty() => printer.status("Note", format!("{at}: {detail}")),
            Action::Unchanged => printer.detail(format!("{} unchanged in {at}", c.server)),
            Action::KeptEdited => printer.warn(format!("{} in {at}: {detail}", c.server)),
            Action::Unsupported => printer.warn(format!("{} is not configured for {at}: {detail}", c.server)),
            Action::Conflict => printer.error(format!("{} in {at}: {detail}", c.server), None),
            Action::Failed if detail.ends_with("; left unchanged") && detail.contains(':') => {
                printer.error(detail, Some("fix the file (or move it away), then run `aibox mcp regenerate`"));
            }
            Action::Failed => printer.error(format!("{at}: {detail}"), None),
        }
    }
    for e in &report.errors {
        printer.error(e, None);
    }
}

async fn list(global: &Settings, args: ListArgs, printer: Printer) -> Result<()> {
    let mcp = mcp(global)?;
    let scope = args.scope.map(|s| scope(s, args.project)).transpose()?;
    let enabled = mcp.status(scope.as_ref())?;
    let (available, store_note) = match available(global).await {
        Ok(a) => (a, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    if printer.json {
        printer.document(&json!({"available": available, "store_error": store_note, "enabled": enabled}));
        return Ok(());
    }
    let mut out = String::new();
    match &store_note {
        Some(e) => out.push_str(&format!("MCP packs in the store: unavailable ({e})\n")),
        None if available.is_empty() => out.push_str("MCP packs in the store: none\n"),
        None => {
            out.push_str("MCP packs in the store:\n");
            for a in &available {
                out.push_str(&format!("  {:<22} {:<14} {}\n", a["name"].as_str().unwrap_or_default(), a["version"].as_str().unwrap_or_default(), a["description"].as_str().unwrap_or_default()));
            }
        }
    }
    if enabled.is_empty() {
        out.push_str("No MCP servers enabled.\n");
    }
    for s in &enabled {
        out.push_str(&format!("\n{} {} (scope: {})\n", s.name, s.version.as_deref().unwrap_or("(not installed)"), s.scope));
        for a in &s.agents {
            let detail = a.detail.as_deref().map(|d| format!("  ({d})")).unwrap_or_default();
            out.push_str(&format!("  {:<16} {:<11} {}{detail}\n", a.agent, a.status, tilde(&a.file)));
        }
    }
    printer.data(&out);
    Ok(())
}

/// The MCP packs the store offers (newest version of each).
async fn available(global: &Settings) -> Result<Vec<serde_json::Value>> {
    let store = open_store(global).await?;
    let mut out = Vec::new();
    for name in store.list_packs().await? {
        let Ok(spec) = name.parse::<PackSpec>() else { continue };
        let Ok(target) = find_target(store.as_ref(), &spec).await else { continue };
        let Ok(Some(raw)) = store.fetch_manifest(&name, &target).await else { continue };
        let Ok(manifest) = raw.image_manifest(store.location()) else { continue };
        if let Ok(pack) = read_pack_manifest(store.as_ref(), &name, &target, &manifest).await
            && pack.kind() == PackKind::Mcp
        {
            out.push(json!({"name": name, "version": pack.version, "description": pack.description}));
        }
    }
    Ok(out)
}

fn agents_table(global: &Settings, scope: &Scope, printer: Printer) -> Result<()> {
    let mcp = mcp(global)?;
    let rows: Vec<serde_json::Value> = agents::profiles()
        .iter()
        .map(|p| {
            let file = p.file(scope, &mcp.env);
            json!({"id": p.id, "name": p.name, "file": file, "found": p.detected(scope, &mcp.env)})
        })
        .collect();
    if printer.json {
        printer.document(&json!({"scope": scope.key(), "canonical": mcp.canonical_file(scope), "agents": rows}));
        return Ok(());
    }
    let mut out = format!("{:<16} {:<24} {:<6} {}\n", "ID", "AGENT", "FOUND", "CONFIG");
    for r in &rows {
        let file = r["file"].as_str().map_or_else(|| "(no project configuration)".to_owned(), |f| tilde(std::path::Path::new(f)));
        out.push_str(&format!("{:<16} {:<24} {:<6} {file}\n", r["id"].as_str().unwrap_or_default(), r["name"].as_str().unwrap_or_default(), if r["found"] == true { "yes" } else { "no" }));
    }
    out.push_str(&format!("canonical: {}\n", tilde(&mcp.canonical_file(scope))));
    printer.data(&out);
    Ok(())
}

/// After install, update or uninstall: re-render the agent configs that point into those packs.
pub fn packs_changed(global: &Settings, names: &[String], printer: Printer) -> Result<()> {
    let Ok(mcp) = mcp(global) else { return Ok(()) };
    let report = mcp.packs_changed(names)?;
    print_changes(&report, printer);
    failure(&report)
}
