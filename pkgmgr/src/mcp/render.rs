//! One server as each client's entry. What a client cannot express is an explicit
//! [`Unsupported`], never a silent downgrade; a startup timeout a client has no setting for is
//! reported as a note.

use aibox_schema::Transport;
use serde_json::{Map, Value, json};

use super::agents::{Keys, Profile, Secrets, Shape, Unit};
use super::server::Server;

/// What the client cannot express, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// A rendered entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The entry, as JSON (converted to TOML or YAML by the document editor).
    pub entry: Value,
    /// Things the user should know (a timeout the client has no setting for).
    pub notes: Vec<String>,
}

/// Variables Goose removes from `envs` without a word.
const GOOSE_DROPPED_ENV: [&str; 9] = ["PATH", "PATHEXT", "PYTHONPATH", "PYTHONHOME", "NODE_OPTIONS", "NODE_PATH", "SYSTEMROOT", "WINDIR", "APPINIT_DLLS"];

/// `server` as `profile`'s client writes it.
pub fn render(profile: &Profile, server: &Server) -> Result<Rendered, Unsupported> {
    let who = profile.name;
    let mut entry = match profile.shape {
        Shape::Standard(keys) => standard(profile, keys, server)?,
        Shape::Codex => codex(server)?,
        Shape::Goose => goose(server)?,
        Shape::Opencode => opencode(server)?,
        Shape::Continue => continue_item(server)?,
    };
    let mut notes = Vec::new();
    match (server.startup_timeout, profile.timeout) {
        (Some(seconds), Some((key, unit))) => {
            let value = if unit == Unit::Millis { u64::from(seconds) * 1000 } else { u64::from(seconds) };
            entry[key] = json!(value);
        }
        (Some(seconds), None) => notes.push(format!("{who} has no per-server startup timeout; its default applies instead of {seconds}s")),
        (None, Some((key, _))) if profile.shape == Shape::Goose => entry[key] = json!(300),
        (None, _) => {}
    }
    Ok(Rendered { entry, notes })
}

/// Replace every `${env:NAME}` in `value` with `to(NAME)`; `Err(NAME)` when `to` cannot.
fn secrets_in(value: &str, to: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${env:") {
        let Some(len) = rest[start..].find('}') else { break };
        let name = &rest[start + 6..start + len];
        out.push_str(&rest[..start]);
        out.push_str(&to(name).ok_or_else(|| name.to_owned())?);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Where a value sits in an entry: clients differ in where they interpolate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Env,
    Other,
}

fn secret(profile: &Profile, field: Field, value: &str) -> Result<String, Unsupported> {
    let style = profile.secrets;
    secrets_in(value, |name| match (style, field) {
        (Secrets::Dollar, _) | (Secrets::DollarEnvValuesOnly, Field::Env) => Some(format!("${{{name}}}")),
        (Secrets::DollarEnv, _) => Some(format!("${{env:{name}}}")),
        (Secrets::BraceEnv, _) => Some(format!("{{env:{name}}}")),
        (Secrets::ContinueSecrets, _) => Some(format!("${{{{ secrets.{name} }}}}")),
        _ => None,
    })
    .map_err(|name| {
        let where_ = if field == Field::Env { "" } else { " outside `env`" };
        Unsupported(format!("{} cannot take a value from the environment{where_} (`${{env:{name}}}`)", profile.name))
    })
}

fn map_secrets(profile: &Profile, field: Field, map: &std::collections::BTreeMap<String, String>) -> Result<Map<String, Value>, Unsupported> {
    map.iter().map(|(k, v)| Ok((k.clone(), Value::String(secret(profile, field, v)?)))).collect()
}

fn list_secrets(profile: &Profile, list: &[String]) -> Result<Vec<Value>, Unsupported> {
    list.iter().map(|a| Ok(Value::String(secret(profile, Field::Other, a)?))).collect()
}

fn standard(profile: &Profile, keys: Keys, server: &Server) -> Result<Value, Unsupported> {
    let mut entry = Map::new();
    match server.transport {
        Transport::Stdio => {
            if let Some(kind) = keys.stdio_type {
                entry.insert("type".into(), json!(kind));
            }
            let command = server.command.as_deref().unwrap_or_default();
            entry.insert("command".into(), json!(secret(profile, Field::Other, command)?));
            entry.insert("args".into(), Value::Array(list_secrets(profile, &server.args)?));
            if !server.env.is_empty() {
                entry.insert("env".into(), Value::Object(map_secrets(profile, Field::Env, &server.env)?));
            }
        }
        Transport::Http | Transport::Sse => {
            let (flavor, spec) = if server.transport == Transport::Http { ("streamable HTTP", keys.http) } else { ("SSE", keys.sse) };
            let Some((kind, url_key)) = spec else {
                return Err(Unsupported(format!("{} has no {flavor} servers in its config file", profile.name)));
            };
            if let Some(kind) = kind {
                entry.insert("type".into(), json!(kind));
            }
            entry.insert(url_key.into(), json!(secret(profile, Field::Other, server.url.as_deref().unwrap_or_default())?));
            if !server.headers.is_empty() {
                entry.insert("headers".into(), Value::Object(map_secrets(profile, Field::Other, &server.headers)?));
            }
        }
    }
    Ok(Value::Object(entry))
}

/// `KEY = "${env:KEY}"`: a variable passed through unchanged.
fn passthrough(key: &str, value: &str) -> bool {
    value.strip_prefix("${env:").and_then(|v| v.strip_suffix('}')) == Some(key)
}

fn no_secret(who: &str, what: &str, value: &str) -> Result<(), Unsupported> {
    if value.contains("${env:") {
        Err(Unsupported(format!("{who} cannot take {what} from the environment (`{value}`)")))
    } else {
        Ok(())
    }
}

fn codex(server: &Server) -> Result<Value, Unsupported> {
    let mut entry = Map::new();
    match server.transport {
        Transport::Stdio => {
            let command = server.command.clone().unwrap_or_default();
            no_secret("Codex", "the command", &command)?;
            for arg in &server.args {
                no_secret("Codex", "an argument", arg)?;
            }
            entry.insert("command".into(), json!(command));
            entry.insert("args".into(), json!(server.args));
            let (pass, env): (Vec<_>, Vec<_>) = server.env.iter().partition(|(k, v)| passthrough(k, v));
            for (k, v) in &env {
                no_secret("Codex", &format!("part of `{k}`"), v)?;
            }
            if !env.is_empty() {
                entry.insert("env".into(), Value::Object(env.into_iter().map(|(k, v)| (k.clone(), json!(v))).collect()));
            }
            if !pass.is_empty() {
                entry.insert("env_vars".into(), json!(pass.into_iter().map(|(k, _)| k).collect::<Vec<_>>()));
            }
        }
        Transport::Http => {
            let url = server.url.clone().unwrap_or_default();
            no_secret("Codex", "the URL", &url)?;
            entry.insert("url".into(), json!(url));
            let (mut plain, mut from_env) = (Map::new(), Map::new());
            for (k, v) in &server.headers {
                let bearer = v.strip_prefix("Bearer ${env:").and_then(|r| r.strip_suffix('}'));
                let whole = v.strip_prefix("${env:").and_then(|r| r.strip_suffix('}'));
                match (k.eq_ignore_ascii_case("authorization"), bearer, whole) {
                    (true, Some(var), _) => {
                        entry.insert("bearer_token_env_var".into(), json!(var));
                    }
                    (_, _, Some(var)) => {
                        from_env.insert(k.clone(), json!(var));
                    }
                    _ => {
                        no_secret("Codex", &format!("part of header `{k}`"), v)?;
                        plain.insert(k.clone(), json!(v));
                    }
                }
            }
            if !plain.is_empty() {
                entry.insert("http_headers".into(), Value::Object(plain));
            }
            if !from_env.is_empty() {
                entry.insert("env_http_headers".into(), Value::Object(from_env));
            }
        }
        Transport::Sse => return Err(Unsupported("Codex CLI speaks streamable HTTP only, not SSE".into())),
    }
    Ok(Value::Object(entry))
}

fn goose(server: &Server) -> Result<Value, Unsupported> {
    let mut entry = Map::new();
    entry.insert("enabled".into(), json!(true));
    let (mut envs, mut env_keys) = (Map::new(), Vec::new());
    for (k, v) in &server.env {
        if GOOSE_DROPPED_ENV.contains(&k.to_ascii_uppercase().as_str()) || k.starts_with("LD_") || k.starts_with("DYLD_") {
            return Err(Unsupported(format!("Goose silently drops `{k}` from an extension's environment")));
        }
        if passthrough(k, v) {
            env_keys.push(k.clone());
        } else {
            no_secret("Goose", &format!("part of `{k}`"), v)?;
            envs.insert(k.clone(), json!(v));
        }
    }
    match server.transport {
        Transport::Stdio => {
            let command = server.command.clone().unwrap_or_default();
            no_secret("Goose", "the command", &command)?;
            for arg in &server.args {
                no_secret("Goose", "an argument", arg)?;
            }
            entry.insert("type".into(), json!("stdio"));
            entry.insert("name".into(), json!(server.name));
            entry.insert("description".into(), json!(server.description));
            entry.insert("cmd".into(), json!(command));
            entry.insert("args".into(), json!(server.args));
        }
        Transport::Http => {
            let url = server.url.clone().unwrap_or_default();
            no_secret("Goose", "the URL", &url)?;
            for (k, v) in &server.headers {
                no_secret("Goose", &format!("header `{k}`"), v)?;
            }
            entry.insert("type".into(), json!("streamable_http"));
            entry.insert("name".into(), json!(server.name));
            entry.insert("description".into(), json!(server.description));
            entry.insert("uri".into(), json!(url));
            entry.insert("headers".into(), json!(server.headers));
        }
        Transport::Sse => return Err(Unsupported("Goose no longer supports SSE servers".into())),
    }
    entry.insert("envs".into(), Value::Object(envs));
    entry.insert("env_keys".into(), json!(env_keys));
    Ok(Value::Object(entry))
}

fn opencode_profile() -> &'static Profile {
    super::agents::profile("opencode").expect("opencode is a profile")
}

fn opencode(server: &Server) -> Result<Value, Unsupported> {
    let p = opencode_profile();
    let mut entry = Map::new();
    match server.transport {
        Transport::Stdio => {
            entry.insert("type".into(), json!("local"));
            let mut command = vec![Value::String(secret(p, Field::Other, server.command.as_deref().unwrap_or_default())?)];
            command.extend(list_secrets(p, &server.args)?);
            entry.insert("command".into(), Value::Array(command));
            if !server.env.is_empty() {
                entry.insert("environment".into(), Value::Object(map_secrets(p, Field::Env, &server.env)?));
            }
        }
        Transport::Http | Transport::Sse => {
            entry.insert("type".into(), json!("remote"));
            entry.insert("url".into(), json!(secret(p, Field::Other, server.url.as_deref().unwrap_or_default())?));
            if !server.headers.is_empty() {
                entry.insert("headers".into(), Value::Object(map_secrets(p, Field::Other, &server.headers)?));
            }
        }
    }
    entry.insert("enabled".into(), json!(true));
    Ok(Value::Object(entry))
}

fn continue_item(server: &Server) -> Result<Value, Unsupported> {
    let p = super::agents::profile("continue").expect("continue is a profile");
    let mut entry = Map::new();
    entry.insert("name".into(), json!(server.name));
    match server.transport {
        Transport::Stdio => {
            entry.insert("type".into(), json!("stdio"));
            entry.insert("command".into(), json!(secret(p, Field::Other, server.command.as_deref().unwrap_or_default())?));
            entry.insert("args".into(), Value::Array(list_secrets(p, &server.args)?));
            if !server.env.is_empty() {
                entry.insert("env".into(), Value::Object(map_secrets(p, Field::Env, &server.env)?));
            }
        }
        Transport::Http | Transport::Sse => {
            let kind = if server.transport == Transport::Http { "streamable-http" } else { "sse" };
            entry.insert("type".into(), json!(kind));
            entry.insert("url".into(), json!(secret(p, Field::Other, server.url.as_deref().unwrap_or_default())?));
            if !server.headers.is_empty() {
                entry.insert("requestOptions".into(), json!({"headers": map_secrets(p, Field::Other, &server.headers)?}));
            }
        }
    }
    Ok(Value::Object(entry))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::mcp::agents::profile;

    fn stdio(env: &[(&str, &str)], args: &[&str]) -> Server {
        Server {
            name: "s".into(),
            version: "1.0.0".into(),
            description: "d".into(),
            transport: Transport::Stdio,
            command: Some("/opt/toolpacks/s/current/bin/s".into()),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            url: None,
            headers: BTreeMap::new(),
            startup_timeout: None,
            filesystem_requires: Vec::new(),
        }
    }

    fn remote(transport: Transport, headers: &[(&str, &str)]) -> Server {
        Server {
            transport,
            command: None,
            url: Some("https://mcp.internal/mcp".into()),
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            ..stdio(&[], &[])
        }
    }

    fn entry(id: &str, server: &Server) -> Result<Value, Unsupported> {
        render(profile(id).unwrap(), server).map(|r| r.entry)
    }

    #[test]
    fn secrets_in_each_syntax_or_refused() {
        let s = stdio(&[("GH_TOKEN", "${env:GH_TOKEN}")], &["--token=${env:GH_TOKEN}"]);
        assert_eq!(entry("claude-code", &s).unwrap()["env"]["GH_TOKEN"], "${GH_TOKEN}");
        assert_eq!(entry("cursor", &s).unwrap()["args"][0], "--token=${env:GH_TOKEN}");
        assert_eq!(entry("opencode", &s).unwrap()["command"][1], "--token={env:GH_TOKEN}");
        assert_eq!(entry("continue", &s).unwrap()["env"]["GH_TOKEN"], "${{ secrets.GH_TOKEN }}");
        assert!(entry("gemini", &s).unwrap_err().0.contains("outside `env`"));
        assert_eq!(entry("gemini", &stdio(&[("GH_TOKEN", "${env:GH_TOKEN}")], &[])).unwrap()["env"]["GH_TOKEN"], "${GH_TOKEN}");
        for id in ["zed", "claude-desktop", "junie", "amazon-q", "cline"] {
            assert!(entry(id, &s).is_err(), "{id} has no interpolation");
        }
        // Passthrough: the whole variable under its own name.
        let pass = stdio(&[("GH_TOKEN", "${env:GH_TOKEN}"), ("MODE", "ro")], &[]);
        let codex = entry("codex", &pass).unwrap();
        assert_eq!(codex["env_vars"], json!(["GH_TOKEN"]));
        assert_eq!(codex["env"], json!({"MODE": "ro"}));
        assert_eq!(entry("goose", &pass).unwrap()["env_keys"], json!(["GH_TOKEN"]));
        assert!(entry("codex", &s).is_err(), "a secret inside an argument");
    }

    #[test]
    fn transports_each_client_lacks_are_refused() {
        let sse = remote(Transport::Sse, &[]);
        for id in ["codex", "goose", "zed", "amazon-q", "junie", "claude-desktop"] {
            assert!(entry(id, &sse).is_err(), "{id} has no SSE");
        }
        assert_eq!(entry("gemini", &sse).unwrap()["url"], "https://mcp.internal/mcp");
        let http = remote(Transport::Http, &[("Authorization", "Bearer ${env:API_TOKEN}")]);
        assert_eq!(entry("gemini", &http).unwrap_err().0, "Gemini CLI cannot take a value from the environment outside `env` (`${env:API_TOKEN}`)");
        assert_eq!(entry("codex", &http).unwrap()["bearer_token_env_var"], "API_TOKEN");
        assert_eq!(entry("cline", &remote(Transport::Http, &[])).unwrap()["type"], "streamableHttp");
        assert_eq!(entry("windsurf", &remote(Transport::Http, &[])).unwrap()["serverUrl"], "https://mcp.internal/mcp");
        assert_eq!(entry("continue", &http).unwrap()["requestOptions"]["headers"]["Authorization"], "Bearer ${{ secrets.API_TOKEN }}");
        assert!(entry("claude-desktop", &remote(Transport::Http, &[])).is_err());
        assert!(entry("goose", &stdio(&[("PYTHONPATH", "/x")], &[])).unwrap_err().0.contains("silently drops `PYTHONPATH`"));
    }

    #[test]
    fn timeouts_in_each_unit() {
        let mut s = stdio(&[], &[]);
        s.startup_timeout = Some(30);
        assert_eq!(entry("codex", &s).unwrap()["startup_timeout_sec"], 30);
        assert_eq!(entry("gemini", &s).unwrap()["timeout"], 30_000);
        assert_eq!(entry("opencode", &s).unwrap()["timeout"], 30_000);
        let cursor = render(profile("cursor").unwrap(), &s).unwrap();
        assert!(cursor.entry.get("timeout").is_none() && cursor.notes[0].contains("no per-server startup timeout"));
        assert_eq!(entry("goose", &stdio(&[], &[])).unwrap()["timeout"], 300, "Goose's default, written out");
    }
}
