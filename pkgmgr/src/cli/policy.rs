//! `aibox policy`: validate and explain the layered policy.

use std::path::PathBuf;

use clap::Subcommand;

use super::Printer;
use aibox_pkgmgr::Result;
use aibox_pkgmgr::config::Settings;
use aibox_pkgmgr::policy::layers::{self, Layer, LayerKind};

/// `aibox policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check the policy: every layer parses, its keys load, its rules are well formed, and each
    /// team and project layer only tightens the layers above it. With FILE, that file (a policy,
    /// a policy.d file or an aibox.yaml) against the layers above it.
    Validate {
        /// One policy file to check.
        file: Option<PathBuf>,
    },
    /// The merged policy, rule by rule, and the file and line each rule came from.
    Explain,
}

pub fn run(cmd: PolicyCommand, global: &Settings, printer: Printer) -> Result<()> {
    let project = std::env::current_dir().ok().and_then(|d| layers::find_project_file(&d));
    match cmd {
        PolicyCommand::Validate { file } => {
            let mut all = layers::read(&global.policy, project.as_deref())?;
            if let Some(file) = file {
                // That file as the lowest layer of its kind, under the layers that rank above it.
                let file = std::path::absolute(&file).unwrap_or(file);
                let is_project = file.file_name().is_some_and(|n| n == "aibox.yaml");
                let mine = if is_project { layers::read(&global.policy, Some(&file))?.pop().filter(|l| l.kind == LayerKind::Project) } else { None };
                // Org, and the team files that rank above this one (all of them, for a project file).
                all.retain(|l| l.kind == LayerKind::Org || (l.kind == LayerKind::Team && (is_project || l.path < file)));
                if file == global.policy {
                    all.truncate(1);
                } else if let Some(layer) = mine {
                    all.push(layer);
                } else if !is_project {
                    let text = std::fs::read_to_string(&file).map_err(aibox_pkgmgr::Error::io("cannot read policy", &file))?;
                    let parsed = aibox_pkgmgr::policy::parse(&file, &text)?;
                    all.push(layers::Layer::new(LayerKind::Team, file.clone(), parsed, text));
                }
            }
            for layer in &all {
                layers::check_layer(layer)?;
            }
            layers::merge(&all)?;
            printer.status("Valid", describe(&all));
            printer.document(&serde_json::json!({"valid": true, "layers": all}));
            Ok(())
        }
        PolicyCommand::Explain => {
            let all = layers::read(&global.policy, project.as_deref())?;
            let (policy, origins) = layers::merge(&all)?;
            printer.status("Layers", describe(&all));
            if !printer.json {
                let mut out = String::new();
                let rule = |out: &mut String, name: &str, value: String| {
                    let from = origins.get(name).map_or("(default)", String::as_str);
                    out.push_str(&format!("{name:<18} {value}\n{:<18} from {from}\n", ""));
                };
                let f = &policy.file;
                let trust: Vec<String> = f.trust.iter().map(|t| format!("{} ({} keys)", t.store, t.keys.len())).collect();
                rule(&mut out, "trust", if trust.is_empty() { "nothing (no pack installs)".into() } else { trust.join(", ") });
                rule(&mut out, "network.allow", f.network.as_ref().map_or("nothing".into(), |n| n.allow.join(", ")));
                rule(&mut out, "filesystem.allow", f.filesystem.as_ref().map_or("${WORKSPACE}, ${HOME}".into(), |x| x.allow.join(", ")));
                rule(&mut out, "install_methods", f.install_methods.as_ref().map_or("docker-layer".into(), |m| m.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")));
                rule(&mut out, "packs.allow", f.packs.as_ref().and_then(|p| p.allow.as_ref()).map_or("every pack".into(), |a| a.join(", ")));
                for glob in f.packs.iter().flat_map(|p| &p.deny) {
                    rule(&mut out, &format!("packs.deny {glob}"), glob.clone());
                }
                rule(&mut out, "verification", if policy.signatures_required() { "signatures required".into() } else { "signatures optional".into() });
                rule(&mut out, "scripts", f.scripts.as_ref().map_or("none".into(), |s| s.iter().map(|s| format!("{} {}", s.pack, s.digest)).collect::<Vec<_>>().join(", ")));
                printer.data(&out);
            }
            printer.document(&serde_json::json!({"layers": all, "policy": policy.file, "origins": origins}));
            Ok(())
        }
    }
}

fn describe(layers: &[Layer]) -> String {
    layers
        .iter()
        .map(|l| {
            let kind = match l.kind {
                LayerKind::Org => "org",
                LayerKind::Team => "team",
                LayerKind::Project => "project",
            };
            let missing = if l.kind == LayerKind::Org && !l.path.is_file() { " (missing: trusts nothing)" } else { "" };
            format!("{kind} {}{missing}", l.path.display())
        })
        .collect::<Vec<_>>()
        .join(", ")
}
