//! `aibox doctor`: what is wrong here, and how to fix it. Each check gives findings; the
//! library only looks, it changes nothing.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Settings;
use crate::policy::layers;
use crate::toolpacks::Toolpacks;

/// Below this much free space in the toolpacks directory, doctor warns.
pub const LOW_SPACE: u64 = 1 << 30;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// All good.
    Ok,
    /// Works, but something will bite.
    Warning,
    /// Broken: installs or agents fail.
    Error,
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Which check (`toolpacks`, `policy`, `store`, `state`, `shell`, `mcp`, `project`).
    pub check: &'static str,
    /// How bad.
    pub level: Level,
    /// What was found.
    pub message: String,
    /// What to do (none for `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn ok(check: &'static str, message: String) -> Finding {
    Finding { check, level: Level::Ok, message, fix: None }
}

fn bad(check: &'static str, level: Level, message: String, fix: impl Into<String>) -> Finding {
    Finding { check, level, message, fix: Some(fix.into()) }
}

/// The toolpacks directory: there, a directory, writable, with space left.
pub fn check_toolpacks(dir: &Path) -> Vec<Finding> {
    let c = "toolpacks";
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent_writable = dir.parent().is_some_and(|p| rustix::fs::access(p, rustix::fs::Access::WRITE_OK).is_ok());
            return vec![if parent_writable {
                ok(c, format!("{} does not exist yet; the first install creates it", dir.display()))
            } else {
                bad(c, Level::Error, format!("{} does not exist and cannot be created", dir.display()), format!("create it and give it to this user: sudo install -d -o $USER {}", dir.display()))
            }];
        }
        Err(e) => return vec![bad(c, Level::Error, format!("cannot read {}: {e}", dir.display()), "check the path (toolpacks_dir) and its permissions")],
    };
    if !meta.is_dir() {
        return vec![bad(c, Level::Error, format!("{} is not a directory", dir.display()), "remove it, or point toolpacks_dir elsewhere (`aibox config set toolpacks_dir DIR`)")];
    }
    let mut out = Vec::new();
    if rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_err() {
        out.push(bad(c, Level::Error, format!("{} is not writable by this user", dir.display()), format!("sudo chown -R $USER {}", dir.display())));
    }
    match rustix::fs::statvfs(dir) {
        Ok(s) => {
            let free = s.f_bavail.saturating_mul(s.f_frsize);
            if free < LOW_SPACE {
                out.push(bad(c, Level::Warning, format!("{} MiB free in {}", free >> 20, dir.display()), "free space (`aibox cache gc`, uninstall packs) or grow the volume"));
            } else {
                out.push(ok(c, format!("{} is writable, {} GiB free", dir.display(), free >> 30)));
            }
        }
        Err(e) => out.push(bad(c, Level::Warning, format!("cannot read free space of {}: {e}", dir.display()), "check the filesystem")),
    }
    out
}

/// The state and what it says is installed: trees, `current` links.
pub fn check_state(toolpacks: &Toolpacks) -> Vec<Finding> {
    let c = "state";
    let state = match toolpacks.state() {
        Ok(s) => s,
        Err(e) => return vec![bad(c, Level::Error, e.to_string(), "reinstall: move .aibox/state.json aside and run `aibox install` (or `aibox sync`) again")],
    };
    let mut out = Vec::new();
    for (name, pack) in &state.packs {
        if !toolpacks.pack_dir(name, &pack.version).is_dir() {
            out.push(bad(c, Level::Error, format!("{name} {} is recorded but its tree is missing", pack.version), format!("aibox install --force {name}@{}", pack.version)));
        } else if std::fs::read_link(toolpacks.current(name)).ok().as_deref() != Some(Path::new(&pack.version)) {
            out.push(bad(c, Level::Warning, format!("{name}/current does not point at {}", pack.version), "any install, update or uninstall repairs the links; or `aibox install --force` the pack"));
        }
    }
    if out.is_empty() {
        out.push(ok(c, format!("{} pack(s) installed, trees and links in place", state.packs.len())));
    }
    out
}

/// The layered policy: every layer parses, keys load, lower layers only tighten.
pub fn check_policy(org: &Path, project: Option<&Path>) -> Vec<Finding> {
    let c = "policy";
    let all = match layers::read(org, project) {
        Ok(l) => l,
        Err(e) => return vec![bad(c, Level::Error, e.to_string(), e.hint().unwrap_or_else(|| "fix the file".into()))],
    };
    for layer in &all {
        if let Err(e) = layers::check_layer(layer) {
            return vec![bad(c, Level::Error, e.to_string(), e.hint().unwrap_or_else(|| "fix the file".into()))];
        }
    }
    match layers::merge(&all) {
        Err(e) => vec![bad(c, Level::Error, e.to_string(), e.hint().unwrap_or_default())],
        Ok((policy, _)) if policy.file.trust.is_empty() => {
            vec![bad(c, Level::Error, format!("the policy ({}) trusts no store: nothing can be installed", org.display()), "add a `trust` entry with the store and the publisher's key (docs/policy.md)")]
        }
        Ok(_) => vec![ok(c, format!("{} layer(s) valid", all.len()))],
    }
}

/// The store answers (lists its packs).
pub async fn check_store(settings: &Settings) -> Vec<Finding> {
    let c = "store";
    let location = match crate::store::StoreLocation::parse(&settings.store) {
        Ok(l) => l,
        Err(e) => return vec![bad(c, Level::Error, e.to_string(), "`aibox config set store ...` (docs/stores.md)")],
    };
    if settings.offline && matches!(location, crate::store::StoreLocation::Registry { .. }) {
        return vec![ok(c, format!("offline: {location} not contacted"))];
    }
    let listed = async {
        let store = crate::store::open(&location, &settings.registry).await?;
        store.list_packs().await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(30), listed).await {
        Ok(Ok(packs)) => vec![ok(c, format!("{location} answers ({} packs)", packs.len()))],
        Ok(Err(e)) => vec![bad(c, Level::Error, format!("{location}: {e}"), e.hint().unwrap_or_else(|| "check the store".into()))],
        Err(_) => vec![bad(c, Level::Error, format!("{location} did not answer within 30 s"), "check the network path to the registry (proxy, NO_PROXY)")],
    }
}

/// Whether the user's shells source env.sh (directly or through /etc/profile.d).
pub fn check_shell(toolpacks: &Toolpacks, home: Option<&Path>) -> Vec<Finding> {
    let c = "shell";
    let env_sh = toolpacks.root().join("env.sh");
    let needle = env_sh.display().to_string();
    let mut files: Vec<PathBuf> = home.map(|h| [".bashrc", ".bash_profile", ".profile", ".zshrc", ".zprofile", ".config/fish/config.fish"].iter().map(|f| h.join(f)).collect()).unwrap_or_default();
    files.push(PathBuf::from("/etc/bash.bashrc"));
    files.push(PathBuf::from("/etc/profile"));
    if let Ok(entries) = std::fs::read_dir("/etc/profile.d") {
        files.extend(entries.flatten().map(|e| e.path()));
    }
    let sourcing: Vec<&PathBuf> = files.iter().filter(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains(&needle) || t.contains("aibox env"))).collect();
    if sourcing.is_empty() {
        vec![bad(c, Level::Warning, format!("no shell start-up file sources {needle}: installed tools are not on PATH in new shells"), format!("echo '[ -r {needle} ] && . {needle}' >> ~/.bashrc   (fish: aibox env --shell fish | source)"))]
    } else {
        vec![ok(c, format!("{needle} is sourced by {}", sourcing.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")))]
    }
}

/// Agent configs hold what aibox's MCP state says they should.
pub fn check_mcp(mcp: &crate::mcp::Mcp) -> Vec<Finding> {
    let c = "mcp";
    let statuses = match mcp.status(None) {
        Ok(s) => s,
        Err(e) => return vec![bad(c, Level::Error, e.to_string(), e.hint().unwrap_or_default())],
    };
    let mut out = Vec::new();
    for server in &statuses {
        for agent in &server.agents {
            let (level, fix) = match agent.status {
                "configured" | "unsupported" => continue,
                "missing" | "drifted" => (Level::Warning, "aibox mcp regenerate (rewrites aibox's entries; your own stay)".to_owned()),
                _ => (Level::Error, "fix the file (it is named), then `aibox mcp regenerate`".to_owned()),
            };
            let detail = agent.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            out.push(bad(c, level, format!("{} in {} ({}) is {}{detail}", server.name, agent.agent, agent.file.display(), agent.status), fix));
        }
    }
    if out.is_empty() {
        out.push(ok(c, format!("{} enabled server(s), every agent config in step", statuses.len())));
    }
    out
}

/// The project's lock matches its aibox.yaml.
pub fn check_project(project: &crate::project::Project, store: &str) -> Vec<Finding> {
    let c = "project";
    let specs = match project.specs() {
        Ok(s) => s,
        Err(e) => return vec![bad(c, Level::Error, e.to_string(), "fix aibox.yaml (docs/projects.md)")],
    };
    let location = match crate::store::StoreLocation::parse(store) {
        Ok(l) => l,
        Err(e) => return vec![bad(c, Level::Error, e.to_string(), "fix the store setting")],
    };
    match project.read_lock() {
        Err(e) => vec![bad(c, Level::Error, e.to_string(), "aibox lock")],
        Ok(None) => vec![bad(c, Level::Warning, format!("{} has no aibox.lock", project.path().display()), "aibox lock, and commit aibox.lock")],
        Ok(Some(lock)) => match lock.stale(&specs, &location) {
            Some(why) => vec![bad(c, Level::Warning, format!("aibox.lock is out of date: {why}"), "aibox lock (or aibox sync)")],
            None => vec![ok(c, format!("{} and its lock agree", project.path().display()))],
        },
    }
}
