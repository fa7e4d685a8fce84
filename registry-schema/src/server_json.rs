//! An MCP pack as the official MCP registry's `server.json` (schema 2025-12-11), so MCP packs
//! can be listed in, or compared with, a registry. The pack itself is an OCI artifact, so the
//! package is `registryType: oci`; aibox's own fields (command, dependencies, policy needs) go
//! under `_meta["io.aibox/pack"]`. Placeholders become server.json templates: `${WORKSPACE}` →
//! `{workspace}`, `${HOME}` → `{home}`, `${PACK_ROOT}` → `{pack_root}`, `${env:NAME}` → `{NAME}`
//! (a secret input).

use serde_json::{Map, Value, json};

use crate::{PackKind, PackManifest, Transport};

/// The schema URL written into `$schema`.
pub const SERVER_SCHEMA: &str = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json";

/// `manifest` as server.json; `namespace` is the reverse-DNS owner (`io.github.example`),
/// `identifier` the pack's OCI reference. `None` for tool packs.
pub fn to_server_json(manifest: &PackManifest, namespace: &str, identifier: &str) -> Option<Value> {
    if manifest.kind() != PackKind::Mcp {
        return None;
    }
    let mut description: String = manifest.description.chars().take(100).collect();
    if description.len() < manifest.description.len() {
        description = description.chars().take(99).collect::<String>() + "…";
    }
    let mut server = json!({
        "$schema": SERVER_SCHEMA,
        "name": format!("{namespace}/{}", manifest.name),
        "description": description,
        "version": manifest.version,
    });
    match manifest.transport.unwrap_or(Transport::Stdio) {
        Transport::Stdio => {
            let args: Vec<Value> = manifest.args.iter().map(|a| input(json!({"type": "positional"}), a)).collect();
            let env: Vec<Value> = manifest.env.iter().map(|(k, v)| input(json!({"name": k}), v)).collect();
            let mut package = json!({"registryType": "oci", "identifier": identifier, "transport": {"type": "stdio"}});
            if !args.is_empty() {
                package["packageArguments"] = Value::Array(args);
            }
            if !env.is_empty() {
                package["environmentVariables"] = Value::Array(env);
            }
            server["packages"] = json!([package]);
        }
        kind @ (Transport::Http | Transport::Sse) => {
            let kind = if kind == Transport::Http { "streamable-http" } else { "sse" };
            let mut remote = json!({"type": kind, "url": template(manifest.url.as_deref().unwrap_or_default()).0});
            let headers: Vec<Value> = manifest.headers.iter().map(|(k, v)| input(json!({"name": k}), v)).collect();
            if !headers.is_empty() {
                remote["headers"] = Value::Array(headers);
            }
            server["remotes"] = json!([remote]);
        }
    }
    let mut meta = Map::new();
    meta.insert("command".into(), json!(manifest.command));
    meta.insert("depends".into(), json!(manifest.depends.iter().map(ToString::to_string).collect::<Vec<_>>()));
    meta.insert("network_requires".into(), json!(manifest.network_requires));
    meta.insert("filesystem_requires".into(), json!(manifest.filesystem_requires));
    meta.insert("permissions".into(), serde_json::to_value(&manifest.permissions).unwrap_or_default());
    if let Some(t) = manifest.startup_timeout {
        meta.insert("startup_timeout".into(), json!(t));
    }
    server["_meta"] = json!({"io.aibox/pack": meta});
    Some(server)
}

/// A server.json Input: `value` as a template, with a `variables` entry per placeholder.
fn input(mut base: Value, value: &str) -> Value {
    let (text, variables) = template(value);
    base["value"] = json!(text);
    if !variables.is_empty() {
        base["variables"] = Value::Object(variables);
    }
    if base["variables"].as_object().is_some_and(|v| v.values().any(|i| i["isSecret"] == true)) {
        base["isSecret"] = json!(true);
    }
    base
}

fn template(value: &str) -> (String, Map<String, Value>) {
    let mut variables = Map::new();
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else { break };
        let inner = &rest[start + 2..start + len];
        let (name, var) = match inner {
            "WORKSPACE" => ("workspace".to_owned(), json!({"description": "The workspace directory", "format": "filepath", "isRequired": true})),
            "HOME" => ("home".to_owned(), json!({"description": "The user's home directory", "format": "filepath", "isRequired": true})),
            "PACK_ROOT" => ("pack_root".to_owned(), json!({"description": "Where the pack is installed", "format": "filepath", "isRequired": true})),
            other => {
                let env = other.strip_prefix("env:").unwrap_or(other);
                (env.to_owned(), json!({"description": format!("From the environment variable {env}"), "isSecret": true, "isRequired": true}))
            }
        };
        out.push_str(&rest[..start]);
        out.push_str(&format!("{{{name}}}"));
        variables.insert(name, var);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    (out, variables)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn stdio_and_remote_servers() {
        let yaml = "name: git-mcp\nversion: 2026.10.19\ndescription: git\nmaintainer: m\ncommand: python3\nargs: [\"${PACK_ROOT}/bin/mcp-server-git\", \"-r\", \"${WORKSPACE}\"]\nenv:\n  GH_TOKEN: \"${env:GH_TOKEN}\"\ndepends: [node@20]\n";
        let m = PackManifest::from_yaml(yaml, Path::new("p.yaml")).unwrap();
        let s = to_server_json(&m, "io.github.example", "harbor.internal/toolpacks/git-mcp:2026.10.19").unwrap();
        assert_eq!(s["name"], "io.github.example/git-mcp");
        let package = &s["packages"][0];
        assert_eq!(package["registryType"], "oci");
        assert_eq!(package["transport"]["type"], "stdio");
        assert_eq!(package["packageArguments"][2]["value"], "{workspace}");
        assert_eq!(package["packageArguments"][2]["variables"]["workspace"]["format"], "filepath");
        assert_eq!(package["environmentVariables"][0]["isSecret"], true);
        assert_eq!(s["_meta"]["io.aibox/pack"]["depends"][0], "node@20");

        let remote = PackManifest::from_yaml("name: r\nversion: 1.0.0\ndescription: d\nmaintainer: m\ntransport: sse\nurl: https://mcp.internal/sse\nheaders:\n  Authorization: \"Bearer ${env:TOKEN}\"\n", Path::new("p.yaml")).unwrap();
        let s = to_server_json(&remote, "io.github.example", "x").unwrap();
        assert_eq!(s["remotes"][0]["type"], "sse");
        assert_eq!(s["remotes"][0]["headers"][0]["value"], "Bearer {TOKEN}");
        let tool = PackManifest::from_yaml("name: t\nversion: 1.0.0\ndescription: d\nmaintainer: m\n", Path::new("p.yaml")).unwrap();
        assert!(to_server_json(&tool, "io.github.example", "x").is_none());
    }
}
