//! Enable, disable, regenerate and inspect MCP servers across agents.
//!
//! Every change goes the same way: the enabled set of a scope (in aibox's state) is rendered
//! into the canonical file and into each selected agent's file. Per file: parse (a file that
//! does not parse is left alone and reported), change only aibox's entries, check the result
//! parses back to exactly what was meant, re-read the file to make sure nobody wrote it
//! meanwhile (else start over), then replace it atomically through symlinks, keeping its mode.
//! A run that changes nothing writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use super::agents::{AgentEnv, Container, Format, Profile, Scope, profiles};
use super::document::Document;
use super::render::render;
use super::server::{Placeholders, Server};
use super::state::{McpState, Written, entry_hash};
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::toolpacks::Toolpacks;

/// The agent id under which the canonical file is recorded.
pub const CANONICAL: &str = "aibox";

/// What happened to one server in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Written for the first time.
    Added,
    /// Rewritten with new content.
    Updated,
    /// Already as it should be.
    Unchanged,
    /// aibox's entry taken out.
    Removed,
    /// The entry was edited since aibox wrote it; left as the user made it.
    KeptEdited,
    /// The file has an entry of this name that aibox did not write; left alone.
    Conflict,
    /// The agent cannot express this server.
    Unsupported,
    /// The file could not be changed (does not parse, wrong shape, cannot write).
    Failed,
}

/// One line of a report.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Agent id (`aibox` for the canonical file).
    pub agent: String,
    /// The file.
    pub file: PathBuf,
    /// The server (empty for a whole-file failure).
    pub server: String,
    /// What happened.
    pub action: Action,
    /// Why, for refusals and failures; notes otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What a command did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Per file and server.
    pub changes: Vec<Change>,
    /// Servers that could not be resolved (not installed, command missing).
    pub errors: Vec<String>,
}

impl Report {
    /// Whether anything failed or was refused (the command then exits 1).
    pub fn failed(&self) -> bool {
        !self.errors.is_empty() || self.changes.iter().any(|c| matches!(c.action, Action::Failed | Action::Conflict))
    }
}

/// The state of one server in one agent, for `aibox mcp list`.
#[derive(Debug, Clone, Serialize)]
pub struct AgentStatus {
    /// Agent id.
    pub agent: String,
    /// The file.
    pub file: PathBuf,
    /// `configured`, `missing`, `drifted`, `conflict`, `unsupported` or `unreadable`.
    pub status: &'static str,
    /// Why, for the last three.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// An enabled server and where it stands.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    /// Scope key.
    pub scope: String,
    /// Server (pack) name.
    pub name: String,
    /// Installed version, when installed.
    pub version: Option<String>,
    /// Per agent.
    pub agents: Vec<AgentStatus>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Keep entries the user edited.
    Keep,
    /// Reset entries the user edited to what aibox renders.
    Reset,
}

/// A file to render into.
struct Target {
    agent: &'static str,
    file: PathBuf,
    format: Format,
    container: Container,
    new_text: &'static str,
    profile: Option<&'static Profile>,
}

/// MCP configuration of one user.
pub struct Mcp {
    /// Paths of the agents.
    pub env: AgentEnv,
    /// `${WORKSPACE}` and `${HOME}`.
    pub places: Placeholders,
    /// Where packs are installed.
    pub toolpacks: Toolpacks,
}

impl Mcp {
    /// aibox's MCP folder (`~/.config/aibox`).
    fn dir(&self) -> PathBuf {
        self.env.aibox_dir()
    }

    /// The canonical file of a scope: `~/.config/aibox/mcp.json`, or the project's `.mcp.json`.
    pub fn canonical_file(&self, scope: &Scope) -> PathBuf {
        match scope {
            Scope::User => self.dir().join("mcp.json"),
            Scope::Project(dir) => dir.join(".mcp.json"),
        }
    }

    /// `${WORKSPACE}` and `${HOME}` for `scope`: a project's workspace is the project; the
    /// user's is the one recorded at enable (else `AIBOX_WORKSPACE`, default `/workspace`).
    fn places_for(&self, state: &McpState, scope: &Scope) -> Placeholders {
        let workspace = match scope {
            Scope::Project(dir) => dir.clone(),
            Scope::User => state.workspaces.get(&scope.key()).cloned().unwrap_or_else(|| self.places.workspace.clone()),
        };
        Placeholders { workspace, home: self.places.home.clone() }
    }

    /// Resolve the installed MCP packs `names` for `scope` and check them against the policy:
    /// network endpoints (`network.allow`) and paths (`filesystem.allow`).
    pub fn check(&self, names: &[String], scope: &Scope, policy: &Policy) -> Result<Vec<Server>> {
        let state = self.toolpacks.state()?;
        let places = match scope {
            Scope::User => self.places.clone(),
            Scope::Project(_) => self.places_for(&McpState::default(), scope),
        };
        names
            .iter()
            .map(|name| {
                let server = Server::resolve(name, &state, &self.toolpacks, &places)?;
                if let Some(manifest) = state.packs.get(name).and_then(|p| p.manifest.as_ref()) {
                    policy.check_pack(manifest)?;
                }
                policy.check_paths(&format!("{name}@{}", server.version), &server.filesystem_requires, |rule| places.expand(rule, None))?;
                Ok(server)
            })
            .collect()
    }

    /// Enable installed MCP packs in `scope` and render every enabled server of the scope into
    /// the canonical file, the detected agents and `forced` ones.
    pub fn enable(&self, names: &[String], scope: &Scope, forced: &[&'static Profile], policy: &Policy) -> Result<Report> {
        self.check(names, scope, policy)?;
        let lock = McpState::lock(&self.dir())?;
        let mut state = self.load_state()?;
        state.enabled.entry(scope.key()).or_default().extend(names.iter().cloned());
        if *scope == Scope::User {
            state.workspaces.insert(scope.key(), self.places.workspace.clone());
        }
        let report = self.render_scope(&mut state, scope, forced, Mode::Keep, &|s| s.save(&self.dir(), &lock));
        state.save(&self.dir(), &lock)?;
        Ok(report)
    }

    /// Disable servers in `scope`: take out every entry aibox wrote for them.
    pub fn disable(&self, names: &[String], scope: &Scope) -> Result<Report> {
        let lock = McpState::lock(&self.dir())?;
        let mut state = self.load_state()?;
        let enabled = state.enabled.get(&scope.key()).cloned().unwrap_or_default();
        let unknown: Vec<&String> = names.iter().filter(|n| !enabled.contains(*n) && !written_anywhere(&state, scope, n)).collect();
        if !unknown.is_empty() {
            let list = unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            return Err(Error::Mcp(format!("not enabled in this scope: {list}")));
        }
        let enabled = state.enabled.entry(scope.key()).or_default();
        for name in names {
            enabled.remove(name);
        }
        let report = self.render_scope(&mut state, scope, &[], Mode::Keep, &|s| s.save(&self.dir(), &lock));
        prune(&mut state);
        state.save(&self.dir(), &lock)?;
        Ok(report)
    }

    /// Rewrite every agent's entries from the enabled set, resetting entries edited by hand;
    /// `scope` limits it to one scope.
    pub fn regenerate(&self, scope: Option<&Scope>, forced: &[&'static Profile]) -> Result<Report> {
        let lock = McpState::lock(&self.dir())?;
        let mut state = self.load_state()?;
        let mut report = Report::default();
        for s in Self::scopes(&state, scope) {
            // `--agent` without `--scope` names the user's agents.
            let forced = if scope.is_none() && s != Scope::User { &[][..] } else { forced };
            let r = self.render_scope(&mut state, &s, forced, Mode::Reset, &|s| s.save(&self.dir(), &lock));
            report.changes.extend(r.changes);
            report.errors.extend(r.errors);
        }
        prune(&mut state);
        state.save(&self.dir(), &lock)?;
        Ok(report)
    }

    /// After packs were installed, updated or uninstalled: re-render the scopes whose servers
    /// live in those packs (or depend on them). Servers whose pack is gone are disabled.
    pub fn packs_changed(&self, changed: &[String]) -> Result<Report> {
        let dir = self.dir();
        if !dir.join("mcp-state.json").exists() {
            return Ok(Report::default());
        }
        let lock = McpState::lock(&dir)?;
        let mut state = self.load_state()?;
        let packs = self.toolpacks.state()?;
        let mut report = Report::default();
        for scope in Self::scopes(&state, None) {
            let enabled = state.enabled.get(&scope.key()).cloned().unwrap_or_default();
            let gone: Vec<String> = enabled.iter().filter(|n| !packs.packs.contains_key(*n)).cloned().collect();
            // Entries of a server whose pack is gone that a killed run had not taken out yet.
            let left = state.written.values().any(|w| w.scope == scope.key() && w.entries.keys().any(|n| !enabled.contains(n) && !packs.packs.contains_key(n)));
            let touched = enabled.iter().any(|n| Server::packs(n, &packs).iter().any(|p| changed.contains(p))) || !gone.is_empty() || left;
            if touched {
                if let Some(set) = state.enabled.get_mut(&scope.key()) {
                    set.retain(|n| !gone.contains(n));
                }
                let r = self.render_scope(&mut state, &scope, &[], Mode::Keep, &|s| s.save(&dir, &lock));
                report.changes.extend(r.changes);
                report.errors.extend(r.errors);
            }
        }
        prune(&mut state);
        state.save(&dir, &lock)?;
        Ok(report)
    }

    /// Where each enabled server stands in each agent.
    pub fn status(&self, scope: Option<&Scope>) -> Result<Vec<ServerStatus>> {
        let state = self.load_state()?;
        let packs = self.toolpacks.state()?;
        let mut out = Vec::new();
        for s in Self::scopes(&state, scope) {
            let targets = self.targets(&state, &s, &[]);
            let places = self.places_for(&state, &s);
            for name in state.enabled.get(&s.key()).into_iter().flatten() {
                let server = Server::resolve(name, &packs, &self.toolpacks, &places);
                let mut agents = Vec::new();
                for target in &targets {
                    let (status, detail) = match &server {
                        Err(e) => ("unsupported", Some(e.to_string())),
                        Ok(server) => probe(target, server, name, &state),
                    };
                    agents.push(AgentStatus { agent: target.agent.into(), file: target.file.clone(), status, detail });
                }
                out.push(ServerStatus { scope: s.key(), name: name.clone(), version: packs.packs.get(name).map(|p| p.version.clone()), agents });
            }
        }
        Ok(out)
    }

    fn scopes(state: &McpState, only: Option<&Scope>) -> Vec<Scope> {
        match only {
            Some(s) => vec![s.clone()],
            None => {
                let mut keys: BTreeSet<String> = state.enabled.keys().cloned().collect();
                keys.extend(state.written.values().map(|w| w.scope.clone()));
                // A project directory that is gone is not brought back by a re-render.
                keys.iter().map(|k| Scope::from_key(k)).filter(|s| !matches!(s, Scope::Project(dir) if !dir.is_dir())).collect()
            }
        }
    }

    /// The canonical file, then every agent that is forced, detected, or was written before
    /// (also at a path that has moved since, e.g. a changed `CODEX_HOME`). A project's canonical
    /// file, `.mcp.json`, is Claude Code's project file and is written in its syntax.
    fn targets(&self, state: &McpState, scope: &Scope, forced: &[&'static Profile]) -> Vec<Target> {
        let canonical = self.canonical_file(scope);
        let claude = super::agents::profile("claude-code").expect("claude-code is a profile");
        let (agent, profile) = match scope {
            Scope::User => (CANONICAL, None),
            Scope::Project(_) => (claude.id, Some(claude)),
        };
        let mut targets = vec![Target { agent, file: canonical.clone(), format: Format::Json, container: Container::Map(&["mcpServers"]), new_text: "", profile }];
        for profile in profiles() {
            let Some(file) = profile.file(scope, &self.env) else { continue };
            let written = state.written.get(&file).is_some_and(|w| w.agent == profile.id && w.scope == scope.key() && !w.entries.is_empty());
            let wanted = forced.iter().any(|p| p.id == profile.id) || profile.detected(scope, &self.env) || written;
            if wanted && file != canonical {
                targets.push(Target { agent: profile.id, file, format: profile.format, container: profile.container, new_text: profile.new_text(scope), profile: Some(profile) });
            }
        }
        for (file, w) in &state.written {
            if w.scope != scope.key() || w.entries.is_empty() || targets.iter().any(|t| t.file == *file) {
                continue;
            }
            match super::agents::profile(&w.agent) {
                Some(p) => targets.push(Target { agent: p.id, file: file.clone(), format: p.format, container: p.container, new_text: p.new_text(scope), profile: Some(p) }),
                None => targets.push(Target { agent: CANONICAL, file: file.clone(), format: Format::Json, container: Container::Map(&["mcpServers"]), new_text: "", profile: None }),
            }
        }
        targets
    }

    /// aibox's MCP state, with what a killed run left pending settled: the record of an edit
    /// being written stands when the file holds exactly the entries it names, else the record
    /// from before the edit does.
    fn load_state(&self) -> Result<McpState> {
        let mut state = McpState::load(&self.dir())?;
        for (file, w) in &mut state.written {
            let Some(before) = w.pending.take() else { continue };
            let (format, container) = super::agents::profile(&w.agent).map_or((Format::Json, Container::Map(&["mcpServers"])), |p| (p.format, p.container));
            let doc = match std::fs::read_to_string(file).map(|text| Document::parse(format, &text)) {
                Ok(Ok(doc)) => Some(doc),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                // Left pending, settled once the file reads and parses again.
                _ => {
                    w.pending = Some(before);
                    continue;
                }
            };
            let written = w.entries.keys().chain(before.entries.keys()).filter(|n| w.entries.get(*n) != before.entries.get(*n)).all(|name| {
                let current = doc.as_ref().and_then(|d| d.get(container, name).ok().flatten());
                current.as_ref().map(entry_hash).as_ref() == w.entries.get(name)
            });
            if !written {
                *w = *before;
            }
        }
        Ok(state)
    }

    /// Render the enabled set of `scope` into its files; `save` writes the state (before each
    /// file, so that a run killed between files leaves no entry of aibox's unrecorded).
    fn render_scope(&self, state: &mut McpState, scope: &Scope, forced: &[&'static Profile], mode: Mode, save: &dyn Fn(&McpState) -> Result<()>) -> Report {
        let mut report = Report::default();
        for profile in forced {
            if profile.file(scope, &self.env).is_none() {
                report.errors.push(format!("{} has no project configuration; enable it with --scope user", profile.name));
            }
        }
        let packs = match self.toolpacks.state() {
            Ok(p) => p,
            Err(e) => {
                report.errors.push(e.to_string());
                return report;
            }
        };
        let enabled = state.enabled.get(&scope.key()).cloned().unwrap_or_default();
        let places = self.places_for(state, scope);
        let mut servers = BTreeMap::new();
        let mut unresolved = BTreeSet::new();
        for name in &enabled {
            match Server::resolve(name, &packs, &self.toolpacks, &places) {
                Ok(s) => {
                    servers.insert(name.clone(), s);
                }
                Err(e) => {
                    report.errors.push(format!("{name}: {e}"));
                    unresolved.insert(name.clone());
                }
            }
        }
        for target in self.targets(state, scope, forced) {
            let record = state.written.get(&target.file);
            if let Some(other) = record.filter(|w| w.scope != scope.key() && !w.entries.is_empty()) {
                let detail = format!("this file is also the configuration of scope `{}`, where aibox manages it", other.scope);
                report.changes.push(change(&target, "", Action::Unsupported, Some(detail)));
                continue;
            }
            if let Some(reason) = legacy_config(&target, scope) {
                report.changes.push(change(&target, "", Action::Unsupported, Some(reason)));
                continue;
            }
            let is_forced = forced.iter().any(|p| p.id == target.agent);
            let previously: BTreeSet<String> = record.map(|w| w.entries.keys().cloned().collect()).unwrap_or_default();
            let mut wanted: Vec<(String, Option<Value>)> = Vec::new();
            for (name, server) in &servers {
                match entry_for(&target, server) {
                    Ok(entry) => wanted.push((name.clone(), Some(entry))),
                    Err(reason) => {
                        // Asked for by name, an agent that cannot run the server is a failure.
                        let action = if is_forced { Action::Failed } else { Action::Unsupported };
                        let detail = if is_forced { format!("{name} cannot be configured: {reason}") } else { reason };
                        report.changes.push(change(&target, name, action, Some(detail)));
                        wanted.push((name.clone(), None));
                    }
                }
            }
            for name in previously.iter().filter(|n| !servers.contains_key(*n) && !unresolved.contains(*n)) {
                wanted.push((name.clone(), None));
            }
            if let Some(reason) = target.profile.and_then(|p| notes_for(p, &servers)) {
                report.changes.push(change(&target, "", Action::Unchanged, Some(reason)));
            }
            apply(&target, scope, &wanted, mode, state, save, &mut report);
        }
        report
    }
}

/// Continue still reads a legacy `config.json` when no `config.yaml` exists: creating the YAML
/// file would replace the user's whole configuration.
fn legacy_config(target: &Target, scope: &Scope) -> Option<String> {
    let legacy = target.file.with_file_name("config.json");
    (target.agent == "continue" && *scope == Scope::User && !target.file.exists() && legacy.exists()).then(|| {
        format!("Continue uses {} here; a new config.yaml would replace it. Convert it to config.yaml (Continue does that), then run `aibox mcp regenerate`", legacy.display())
    })
}

fn written_anywhere(state: &McpState, scope: &Scope, name: &str) -> bool {
    state.written.values().any(|w| w.scope == scope.key() && w.entries.contains_key(name))
}

/// Drop empty records and scopes.
fn prune(state: &mut McpState) {
    state.written.retain(|_, w| !w.entries.is_empty());
    state.enabled.retain(|_, set| !set.is_empty());
}

fn change(target: &Target, server: &str, action: Action, detail: Option<String>) -> Change {
    Change { agent: target.agent.into(), file: target.file.clone(), server: server.into(), action, detail }
}

fn entry_for(target: &Target, server: &Server) -> std::result::Result<Value, String> {
    match target.profile {
        None => Ok(server.canonical()),
        Some(profile) => render(profile, server).map(|r| r.entry).map_err(|u| u.0),
    }
}

fn notes_for(profile: &Profile, servers: &BTreeMap<String, Server>) -> Option<String> {
    let notes: Vec<String> = servers.values().filter_map(|s| render(profile, s).ok()).flat_map(|r| r.notes).collect();
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// Status of `name` in one target, without changing anything.
fn probe(target: &Target, server: &Server, name: &str, state: &McpState) -> (&'static str, Option<String>) {
    let wanted = match entry_for(target, server) {
        Ok(e) => e,
        Err(reason) => return ("unsupported", Some(reason)),
    };
    let text = match std::fs::read_to_string(&target.file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ("missing", None),
        Err(e) => return ("unreadable", Some(e.to_string())),
    };
    let current = match Document::parse(target.format, &text).map_err(|e| format!("line {}, column {}: {}", e.line, e.column, e.message)).and_then(|d| d.get(target.container, name)) {
        Ok(c) => c,
        Err(e) => return ("unreadable", Some(e)),
    };
    let ours = state.written.get(&target.file).and_then(|w| w.entries.get(name));
    match current {
        None => ("missing", None),
        Some(c) if c == wanted => ("configured", None),
        Some(_) if ours.is_some() => ("drifted", Some("edited since aibox wrote it, or out of date; `aibox mcp regenerate` rewrites it".into())),
        Some(_) => ("conflict", Some("the file has its own entry of this name, which aibox leaves alone".into())),
    }
}

/// Bring one file in line with `wanted` (name → entry, or `None` to take aibox's entry out).
fn apply(target: &Target, scope: &Scope, wanted: &[(String, Option<Value>)], mode: Mode, state: &mut McpState, save: &dyn Fn(&McpState) -> Result<()>, report: &mut Report) {
    for _attempt in 0..3 {
        let original = match std::fs::read_to_string(&target.file) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                report.changes.push(change(target, "", Action::Failed, Some(format!("cannot read {}: {e}", target.file.display()))));
                return;
            }
        };
        if original.is_none() && wanted.iter().all(|(_, v)| v.is_none()) {
            if let Some(w) = state.written.get_mut(&target.file) {
                w.entries.clear();
            }
            return;
        }
        let text = original.clone().unwrap_or_else(|| target.new_text.to_owned());
        let mut doc = match Document::parse(target.format, &text) {
            Ok(d) => d,
            Err(e) => {
                let err = Error::AgentConfig { path: target.file.clone(), line: e.line, column: e.column, message: e.message };
                report.changes.push(change(target, "", Action::Failed, Some(format!("{err}; left unchanged"))));
                return;
            }
        };
        let mut record = state.written.get(&target.file).cloned().unwrap_or_else(|| Written {
            agent: target.agent.into(),
            scope: scope.key(),
            created_file: original.is_none(),
            ..Written::default()
        });
        let before = record.clone();
        let mut changes = Vec::new();
        let mut expect = Vec::new();
        let outcome = edit_entries(&mut doc, target, wanted, mode, &mut record, &mut changes, &mut expect).and_then(|()| tidy(&mut doc, target, &mut record));
        if let Err(reason) = outcome {
            report.changes.push(change(target, "", Action::Failed, Some(format!("{}: {reason}; left unchanged", target.file.display()))));
            return;
        }
        let new_text = doc.text();
        let remove_file = record.created_file && record.entries.is_empty() && original.is_some() && is_skeleton(target, &doc);
        if original.as_deref() != Some(new_text.as_str()) && !expect.is_empty() {
            if let Err(reason) = check_written(target, &text, &doc, &expect) {
                report.changes.push(change(target, "", Action::Failed, Some(format!("{}: {reason}; left unchanged", target.file.display()))));
                return;
            }
            // Someone (the agent itself) wrote the file meanwhile: start over from its new text.
            if std::fs::read_to_string(&target.file).ok() != original {
                continue;
            }
            // The state first, with the new record and the one from before it: killed around
            // the write, the next run still knows which entries in the file are aibox's.
            let previous = state.written.get(&target.file).cloned();
            state.written.insert(target.file.clone(), Written { pending: Some(Box::new(before)), ..record.clone() });
            let written = save(state).and_then(|()| {
                if remove_file { std::fs::remove_file(&target.file).map_err(Error::io("cannot remove", &target.file)) } else { crate::atomic::write_through(&target.file, new_text.as_bytes()) }
            });
            if let Err(e) = written {
                match previous {
                    Some(w) => state.written.insert(target.file.clone(), w),
                    None => state.written.remove(&target.file),
                };
                report.changes.push(change(target, "", Action::Failed, Some(e.to_string())));
                return;
            }
        }
        state.written.insert(target.file.clone(), record);
        report.changes.extend(changes);
        return;
    }
    report.changes.push(change(target, "", Action::Failed, Some(format!("{} kept changing while aibox edited it; run the command again", target.file.display()))));
}

/// Decide and make the edit of every entry of one file (see [`Action`]).
fn edit_entries<'a>(
    doc: &mut Document,
    target: &Target,
    wanted: &'a [(String, Option<Value>)],
    mode: Mode,
    record: &mut Written,
    changes: &mut Vec<Change>,
    expect: &mut Vec<(&'a String, Option<&'a Value>)>,
) -> std::result::Result<(), String> {
    let had_container = container_of(&doc.value()?, target.container).is_some();
    for (name, want) in wanted {
        let current = doc.get(target.container, name)?;
        let ours = record.entries.get(name).cloned();
        let edited = match (&current, &ours) {
            (Some(c), Some(h)) => entry_hash(c) != *h,
            _ => false,
        };
        let reset = mode == Mode::Reset;
        let action = match (want, current) {
            // Ours, taken out by hand: left out until `regenerate`.
            (Some(_), None) if ours.is_some() && !reset => Action::KeptEdited,
            (Some(v), None) => {
                doc.set(target.container, name, v)?;
                record.entries.insert(name.clone(), entry_hash(v));
                expect.push((name, Some(v)));
                Action::Added
            }
            (Some(v), Some(c)) if c == *v => {
                // An identical entry the user wrote stays theirs.
                if ours.is_some() {
                    record.entries.insert(name.clone(), entry_hash(v));
                }
                Action::Unchanged
            }
            (Some(v), Some(_)) if ours.is_some() && (!edited || reset) => {
                doc.set(target.container, name, v)?;
                record.entries.insert(name.clone(), entry_hash(v));
                expect.push((name, Some(v)));
                Action::Updated
            }
            (Some(_), Some(_)) if ours.is_some() => Action::KeptEdited,
            (Some(_), Some(_)) => Action::Conflict,
            (None, None) => {
                record.entries.remove(name);
                continue;
            }
            (None, Some(_)) if ours.is_some() && (!edited || reset) => {
                doc.remove(target.container, name)?;
                record.entries.remove(name);
                expect.push((name, None));
                Action::Removed
            }
            // Edited by hand: left in place, still recorded, so `regenerate` can take it out.
            (None, Some(_)) if ours.is_some() => Action::KeptEdited,
            (None, Some(_)) => continue,
        };
        let detail = match (action, want) {
            (Action::KeptEdited, Some(_)) if doc.get(target.container, name)?.is_none() => Some("removed by hand since aibox wrote it; left out (`aibox mcp regenerate` puts it back)".to_owned()),
            (Action::KeptEdited, Some(_)) => Some("edited since aibox wrote it; left as it is (`aibox mcp regenerate` resets it)".to_owned()),
            (Action::KeptEdited, None) => Some("edited since aibox wrote it, so it was left in place; remove it by hand, or `aibox mcp regenerate` takes it out".to_owned()),
            (Action::Conflict, _) => Some(format!("the file already has its own `{name}` entry; aibox leaves it alone (rename or remove it, then run `aibox mcp regenerate`)")),
            _ => None,
        };
        changes.push(change(target, name, action, detail));
    }
    if !had_container && expect.iter().any(|(_, v)| v.is_some()) {
        record.created_container = true;
    }
    Ok(())
}

/// After edits: a container aibox created goes again when it is empty.
fn tidy(doc: &mut Document, target: &Target, record: &mut Written) -> std::result::Result<(), String> {
    if record.created_container && record.entries.is_empty() && doc.remove_container_if_empty(target.container)? {
        record.created_container = false;
    }
    Ok(())
}

/// What is left of a file aibox created is only its empty skeleton (`{}`, Continue's header).
fn is_skeleton(target: &Target, doc: &Document) -> bool {
    let skeleton = Document::parse(target.format, target.new_text).ok().and_then(|d| d.value().ok());
    skeleton.is_some() && skeleton == doc.value().ok()
}

/// The servers' container in a document value.
fn container_of(value: &Value, container: Container) -> Option<&Value> {
    match container {
        Container::Map(path) => path.iter().try_fold(value, |v, k| v.get(k)),
        Container::NamedList(key) => value.get(key),
    }
}

/// `value` without the entries named (and without the container, when that leaves it empty and
/// `drop_empty`).
fn without(mut value: Value, container: Container, names: &[&String], drop_empty: bool) -> Value {
    let (parents, last) = match container {
        Container::Map(path) => (&path[..path.len() - 1], path[path.len() - 1]),
        Container::NamedList(key) => (&[][..], key),
    };
    let mut at = &mut value;
    for key in parents {
        match at.get_mut(key) {
            Some(v) => at = v,
            None => return value,
        }
    }
    let empty = match at.get_mut(last) {
        Some(Value::Object(map)) => {
            for name in names {
                map.shift_remove(name.as_str());
            }
            map.is_empty()
        }
        Some(Value::Array(items)) => {
            items.retain(|i| !names.iter().any(|n| i["name"] == n.as_str()));
            items.is_empty()
        }
        // An empty YAML container (`extensions:` with nothing under it) reads as null; the
        // editor fills it in as if it were missing.
        Some(Value::Null) => true,
        _ => false,
    };
    if empty
        && drop_empty
        && let Some(map) = at.as_object_mut()
    {
        map.shift_remove(last);
    }
    value
}

/// The edit did what was meant and nothing else: the new text parses, every entry aibox changed
/// reads back as written, and everything else in the file is as it was.
fn check_written(target: &Target, old_text: &str, doc: &Document, expect: &[(&String, Option<&Value>)]) -> std::result::Result<(), String> {
    let new = Document::parse(target.format, &doc.text()).map_err(|e| format!("aibox's edit would not parse ({}); this is a bug", e.message))?;
    for (name, want) in expect {
        if new.get(target.container, name)?.as_ref() != *want {
            return Err(format!("aibox's edit of `{name}` would not read back as written; this is a bug"));
        }
    }
    let old = Document::parse(target.format, old_text).map_err(|e| e.message)?.value()?;
    let names: Vec<&String> = expect.iter().map(|(n, _)| *n).collect();
    // A container that holds nothing but aibox's entries may come or go with them.
    if without(old, target.container, &names, true) != without(new.value()?, target.container, &names, true) {
        return Err("aibox's edit would change other parts of the file; this is a bug".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_empty_yaml_container_is_filled_in() {
        // Found by fuzzing (fuzz/fuzz_targets/mcp_yaml.rs): `extensions:` with nothing under it
        // reads as null; filling it in was taken for a change to other parts of the file.
        let goose = super::super::agents::profile("goose").unwrap();
        let target = Target { agent: "goose", file: PathBuf::from("/nonexistent/config.yaml"), format: Format::Yaml, container: goose.container, new_text: "", profile: Some(goose) };
        let old = "GOOSE_MODEL: x\nextensions:\n";
        let mut doc = Document::parse(Format::Yaml, old).unwrap();
        let entry = json!({"enabled": true, "type": "stdio", "cmd": "/bin/s", "args": []});
        doc.set(target.container, "s", &entry).unwrap();
        let name = "s".to_owned();
        check_written(&target, old, &doc, &[(&name, Some(&entry))]).unwrap();
        // And out again.
        let added = doc.text();
        let mut doc = Document::parse(Format::Yaml, &added).unwrap();
        assert!(doc.remove(target.container, "s").unwrap());
        check_written(&target, &added, &doc, &[(&name, None)]).unwrap();
    }
}
