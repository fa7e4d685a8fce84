//! `aibox doctor`: every check, each finding with its fix; exit 1 when something is broken.

use aibox_pkgmgr::config::Settings;
use aibox_pkgmgr::doctor::{self, Finding, Level};
use aibox_pkgmgr::toolpacks::Toolpacks;
use aibox_pkgmgr::{Error, Result};

use super::Printer;

pub async fn run(global: &Settings, printer: Printer) -> Result<()> {
    let toolpacks = Toolpacks::new(&global.toolpacks_dir);
    let project = super::project::current_project();
    let mut findings: Vec<Finding> = Vec::new();
    findings.extend(doctor::check_toolpacks(&global.toolpacks_dir));
    findings.extend(doctor::check_state(&toolpacks));
    findings.extend(doctor::check_policy(&global.policy, project.as_ref().ok().and_then(|p| p.as_ref()).map(aibox_pkgmgr::project::Project::path).as_deref()));
    findings.extend(doctor::check_store(global).await);
    findings.extend(doctor::check_shell(&toolpacks, std::env::home_dir().as_deref()));
    match super::mcp::mcp(global) {
        Ok(mcp) => findings.extend(doctor::check_mcp(&mcp)),
        Err(e) => findings.push(Finding { check: "mcp", level: Level::Warning, message: e.to_string(), fix: e.hint() }),
    }
    match project {
        Ok(Some(p)) => findings.extend(doctor::check_project(&p, &global.store)),
        Ok(None) => {}
        Err(e) => findings.push(Finding { check: "project", level: Level::Error, message: e.to_string(), fix: Some("fix aibox.yaml (docs/projects.md)".into()) }),
    }
    for f in &findings {
        match f.level {
            Level::Ok => printer.status("ok", format!("{}: {}", f.check, f.message)),
            Level::Warning => printer.warn(format!("{}: {}{}", f.check, f.message, f.fix.as_deref().map(|x| format!("\n  fix: {x}")).unwrap_or_default())),
            Level::Error => printer.error(format!("{}: {}", f.check, f.message), f.fix.as_deref()),
        }
    }
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    let warnings = findings.iter().filter(|f| f.level == Level::Warning).count();
    printer.document(&serde_json::json!({"findings": findings, "errors": errors, "warnings": warnings}));
    if errors > 0 {
        return Err(Error::Incomplete(format!("{errors} problem(s) and {warnings} warning(s) above, each with its fix")));
    }
    printer.status("Healthy", format!("{warnings} warning(s)"));
    Ok(())
}
