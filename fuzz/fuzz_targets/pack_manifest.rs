//! `pack.yaml` (tool packs and MCP server packs) and its published form, the canonical JSON
//! config blob, as hostile input. Properties: no panic; a manifest that loads survives the
//! publish round trip (canonical JSON → `from_config_json` gives the same manifest, and the
//! canonical bytes are a fixed point); the helpers that trust a loaded manifest (`semver`,
//! `tag`, `to_server_json`) hold; an MCP pack renders for every agent without panicking, and a
//! rendered entry never carries `${env:NAME}` to an agent that does not read that syntax.
#![no_main]

use std::path::Path;

use aibox_pkgmgr::mcp::agents::{Secrets, profiles};
use aibox_pkgmgr::mcp::render::render;
use aibox_pkgmgr::mcp::{Placeholders, Server};
use aibox_schema::server_json::to_server_json;
use aibox_schema::{PackKind, PackManifest, Transport, env_segments};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(m) = PackManifest::from_yaml(text, Path::new("pack.yaml"))
    {
        check(&m);
    }
    if let Ok(m) = PackManifest::from_config_json(data) {
        check(&m);
    }
});

fn check(m: &PackManifest) {
    // Publish round trip.
    let canonical = m.to_canonical_json();
    let back = PackManifest::from_config_json(&canonical).unwrap_or_else(|e| panic!("canonical JSON of a valid manifest is refused: {e}\n{}", String::from_utf8_lossy(&canonical)));
    assert_eq!(&back, m, "canonical JSON round trip changed the manifest");
    assert_eq!(back.to_canonical_json(), canonical, "canonical JSON is not a fixed point");

    let version = m.semver();
    assert_eq!(version.to_string(), m.version);
    assert!(!m.tag().contains('+'));
    assert!(m.name.as_str().parse::<aibox_schema::PackName>().is_ok());

    let server_json = to_server_json(m, "io.github.example", "harbor.internal/toolpacks/x:1.0.0");
    assert_eq!(server_json.is_some(), m.kind() == PackKind::Mcp);
    if let Some(s) = server_json {
        assert!(s["description"].as_str().is_some_and(|d| d.chars().count() <= 100));
    }

    if m.kind() == PackKind::Tool {
        for value in m.env.values() {
            env_segments(value).unwrap_or_else(|e| panic!("validated env value refused later: {e}"));
        }
        return;
    }

    // As `Server::resolve` builds it from an installed pack (command through `current`).
    let places = Placeholders { workspace: "/workspace".into(), home: "/home/u".into() };
    let root = Path::new("/opt/toolpacks").join(m.name.as_str()).join("current");
    let expand = |v: &String| places.expand(v, Some(&root));
    let transport = m.transport.or(m.command.as_ref().map(|_| Transport::Stdio)).expect("an MCP pack has a transport");
    let server = Server {
        name: m.name.to_string(),
        version: m.version.clone(),
        description: m.description.clone(),
        transport,
        command: m.command.as_ref().map(|c| if c.contains('/') { root.join(c).display().to_string() } else { format!("/usr/bin/{c}") }),
        args: m.args.iter().map(expand).collect(),
        env: m.env.iter().map(|(k, v)| (k.clone(), expand(v))).collect(),
        url: m.url.as_ref().map(expand),
        headers: m.headers.iter().map(|(k, v)| (k.clone(), expand(v))).collect(),
        startup_timeout: m.startup_timeout,
        filesystem_requires: m.filesystem_requires.iter().map(expand).collect(),
    };
    let _ = server.canonical();
    for profile in profiles() {
        let Ok(rendered) = render(profile, &server) else { continue };
        assert!(rendered.entry.is_object(), "{}: {:?}", profile.id, rendered.entry);
        if profile.secrets != Secrets::DollarEnv {
            let mut leaked = Vec::new();
            literal_secrets(&rendered.entry, &mut leaked);
            assert!(leaked.is_empty(), "{} would get `${{env:...}}` literally: {leaked:?}\n{}", profile.id, rendered.entry);
        }
    }
}

/// Strings holding `${env:` outside free-text fields (`description`, `name`).
fn literal_secrets(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.contains("${env:") => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| literal_secrets(i, out)),
        Value::Object(map) => {
            for (k, v) in map {
                if k != "description" && k != "name" {
                    literal_secrets(v, out);
                }
            }
        }
        _ => {}
    }
}
