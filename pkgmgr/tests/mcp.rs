//! `aibox mcp` end to end: the real filesystem-mcp and git-mcp packs (built from npm and PyPI
//! with node@20, published signed to the distribution registry), rendered into every agent's
//! config, read back with each format's own parser, and started by the official MCP Python SDK.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use common::{Env, REGISTRY, Site, json, workspace};

/// The real packs, published once for this test binary.
struct Published {
    /// Holds the publisher's key files for the life of the test binary.
    _env: Env,
    store: String,
    key: String,
    public: String,
}

static PUBLISHED: LazyLock<Published> = LazyLock::new(|| {
    let env = Env::new();
    let store = REGISTRY.store("mcp");
    let (key, public) = env.keys("publisher");
    for dir in ["packs/node/20", "mcp-packs/filesystem-mcp", "mcp-packs/git-mcp"] {
        env.ok(&["-q", "pack", "publish", workspace().join(dir).to_str().unwrap(), "--to", &store, "--key", &key]);
    }
    Published { _env: env, store, key, public }
});

const AGENTS: [&str; 14] = ["claude-code", "claude-desktop", "codex", "cursor", "vscode", "continue", "gemini", "goose", "zed", "windsurf", "cline", "opencode", "amazon-q", "junie"];

/// A sandbox on the published store, with its own HOME, toolpacks and a git workspace.
fn site(policy_extra: &str) -> Site {
    let p = &*PUBLISHED;
    let env = Env::new();
    let policy = env.path().join("policy.yaml");
    std::fs::write(&policy, format!("trust:\n  - store: {}\n    keys: [{}]\n{policy_extra}", p.store, p.public)).unwrap();
    let toolpacks = env.path().join("toolpacks");
    let ws = env.path().join("workspace");
    std::fs::create_dir_all(&ws).unwrap();
    common::run("git", &["init", "-q", ws.to_str().unwrap()]);
    Site { env, store: p.store.clone(), key: p.key.clone(), public: p.public.clone(), policy, toolpacks }
}

fn mcp(site: &Site) -> std::process::Command {
    let mut c = site.aibox();
    c.env("AIBOX_WORKSPACE", site.env.path().join("workspace"));
    for var in ["CODEX_HOME", "CLAUDE_CONFIG_DIR", "CLINE_DIR", "XDG_CONFIG_HOME"] {
        c.env_remove(var);
    }
    c
}

fn ok(site: &Site, args: &[&str]) -> String {
    common::ok(mcp(site), args)
}

fn fails(site: &Site, args: &[&str]) -> String {
    common::fails(mcp(site), args)
}

fn home(site: &Site) -> PathBuf {
    site.env.path().join("home")
}

fn peer(args: &[&str]) -> serde_json::Value {
    let script = workspace().join("tests/peers/mcp_check.py");
    let mut all = vec![script.to_str().unwrap()];
    all.extend_from_slice(args);
    json(&common::run("python3", &all))
}

/// Agent id → (file under HOME, parser format, the path of the servers in the parsed file).
fn agent_file(id: &str) -> (&'static str, &'static str, &'static [&'static str]) {
    match id {
        "claude-code" => (".claude.json", "json", &["mcpServers"]),
        "claude-desktop" => (".config/Claude/claude_desktop_config.json", "json", &["mcpServers"]),
        "codex" => (".codex/config.toml", "toml", &["mcp_servers"]),
        "cursor" => (".cursor/mcp.json", "jsonc", &["mcpServers"]), // Cursor tolerates comments
        "vscode" => (".config/Code/User/mcp.json", "jsonc", &["servers"]),
        "continue" => (".continue/config.yaml", "yaml", &["mcpServers"]),
        "gemini" => (".gemini/settings.json", "jsonc", &["mcpServers"]),
        "goose" => (".config/goose/config.yaml", "yaml", &["extensions"]),
        "zed" => (".config/zed/settings.json", "jsonc", &["context_servers"]),
        "windsurf" => (".codeium/windsurf/mcp_config.json", "json", &["mcpServers"]),
        "cline" => (".cline/data/settings/cline_mcp_settings.json", "json", &["mcpServers"]),
        "opencode" => (".config/opencode/opencode.json", "jsonc", &["mcp"]),
        "amazon-q" => (".aws/amazonq/mcp.json", "json", &["mcpServers"]),
        "junie" => (".junie/mcp/mcp.json", "json", &["mcpServers"]),
        _ => unreachable!(),
    }
}

/// The servers in an agent's file, read by the format's own parser, as name → entry.
fn servers_in(site: &Site, id: &str) -> serde_json::Map<String, serde_json::Value> {
    let (file, format, path) = agent_file(id);
    let mut v = peer(&["parse", format, home(site).join(file).to_str().unwrap()]);
    for key in path {
        v = v[key].clone();
    }
    match v {
        serde_json::Value::Object(m) => m,
        // Continue: a list of items with `name`.
        serde_json::Value::Array(items) => items.into_iter().map(|i| (i["name"].as_str().unwrap().to_owned(), i)).collect(),
        other => panic!("{id}: servers are {other}"),
    }
}

/// The command line an entry starts, whatever the agent calls its fields.
fn command_line(entry: &serde_json::Value) -> Vec<String> {
    let strings = |v: &serde_json::Value| v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect::<Vec<_>>()).unwrap_or_default();
    if entry["command"].is_array() {
        return strings(&entry["command"]); // opencode
    }
    let cmd = entry.get("command").or_else(|| entry.get("cmd")).and_then(|c| c.as_str()).unwrap().to_owned();
    let mut line = vec![cmd];
    line.extend(strings(&entry["args"]));
    line
}

/// What a user already has in each agent's file: their own server, settings and comments
/// (where the format has them).
fn user_content(id: &str) -> &'static str {
    match id {
        "claude-code" => "{\n  \"numStartups\": 12,\n  \"mcpServers\": {\n    \"mine\": {\"type\": \"stdio\", \"command\": \"my-server\", \"args\": []}\n  },\n  \"projects\": {\"/workspace\": {\"allowedTools\": []}}\n}\n",
        "claude-desktop" | "windsurf" | "amazon-q" | "junie" => "{\n  \"mcpServers\": {\n    \"mine\": {\n      \"command\": \"my-server\",\n      \"args\": [\"--flag\"]\n    }\n  }\n}\n",
        "cline" => "{\n  \"mcpServers\": {\n    \"mine\": {\n      \"type\": \"stdio\",\n      \"command\": \"my-server\",\n      \"autoApprove\": [\"read\"],\n      \"disabled\": false\n    }\n  }\n}\n",
        "cursor" => "{\n  // my servers\n  \"mcpServers\": {\n    \"mine\": {\"command\": \"my-server\", \"envFile\": \".env\"}\n  }\n}\n",
        "codex" => "# my Codex settings\nmodel = \"o4-mini\" # fast\n\n[mcp_servers.mine]\ncommand = \"my-server\"\nargs = [\"--flag\"] # keep this\nstartup_timeout_sec = 20\n",
        "vscode" => "{\n\t// servers I use\n\t\"servers\": {\n\t\t\"mine\": {\n\t\t\t\"type\": \"stdio\",\n\t\t\t\"command\": \"my-server\", // the local one\n\t\t},\n\t},\n\t\"inputs\": [],\n}\n",
        "continue" => "name: My Config\nversion: 1.0.0\nschema: v1\n# models first\nmodels:\n  - name: local\n    provider: ollama\n    model: llama3\nmcpServers:\n  # my own server\n  - name: mine\n    command: my-server # local\n",
        "gemini" => "{\n  // Gemini settings\n  \"theme\": \"Default\",\n  \"mcpServers\": {\n    \"mine\": {\"command\": \"my-server\", \"timeout\": 5000, \"trust\": false}\n  }\n}\n",
        "goose" => "# Goose configuration\nGOOSE_PROVIDER: anthropic # provider\nextensions:\n  # built in\n  developer:\n    enabled: true # keep on\n    type: builtin\n    name: developer\n    timeout: 300\n",
        "zed" => "// Zed settings\n{\n  \"theme\": \"One Dark\",\n  \"context_servers\": {\n    \"mine\": {\n      \"command\": \"my-server\",\n      \"args\": [],\n    },\n  },\n}\n",
        "opencode" => "{\n  \"$schema\": \"https://opencode.ai/config.json\",\n  // local tools\n  \"mcp\": {\n    \"mine\": {\"type\": \"local\", \"command\": [\"my-server\"], \"enabled\": true}\n  }\n}\n",
        _ => unreachable!(),
    }
}

/// The name of the server the user had in `user_content`.
fn own_server(id: &str) -> &'static str {
    if id == "goose" { "developer" } else { "mine" }
}

fn comments(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains("//") || l.trim_start().starts_with('#') || l.contains(" # ")).collect()
}

#[test]
fn fresh_home_gives_working_servers_to_the_canonical_file_and_claude_code() {
    let site = site("");
    ok(&site, &["mcp", "enable", "filesystem-mcp", "git-mcp", "--agent", "claude-code"]);
    let canonical = home(&site).join(".config/aibox/mcp.json");
    let tools = peer(&["tools", canonical.to_str().unwrap()]);
    assert_eq!(tools, serde_json::json!({"filesystem-mcp": 14, "git-mcp": 12}), "tools listed from the canonical file");
    let tools = peer(&["tools", home(&site).join(".claude.json").to_str().unwrap()]);
    assert_eq!(tools, serde_json::json!({"filesystem-mcp": 14, "git-mcp": 12}), "tools listed from Claude Code's config");
    // Nothing was detected, so no other agent's file appeared.
    for id in AGENTS.iter().filter(|id| **id != "claude-code") {
        assert!(!home(&site).join(agent_file(id).0).exists(), "{id} was not asked for");
    }
    // Commands go through the packs' `current` links.
    let entry = &servers_in(&site, "claude-code")["filesystem-mcp"];
    assert_eq!(entry["command"], site.toolpacks.join("node/current/bin/node").to_str().unwrap());
}

#[test]
fn every_agent_keeps_user_content_and_a_second_run_is_byte_identical() {
    let site = site("");
    for id in AGENTS {
        let path = home(&site).join(agent_file(id).0);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, user_content(id)).unwrap();
    }
    ok(&site, &["mcp", "enable", "filesystem-mcp", "git-mcp"]);
    let mut after = Vec::new();
    for id in AGENTS {
        let path = home(&site).join(agent_file(id).0);
        let text = std::fs::read_to_string(&path).unwrap();
        for comment in comments(user_content(id)) {
            assert!(text.contains(comment), "{id}: comment line {comment:?} lost:\n{text}");
        }
        let servers = servers_in(&site, id);
        assert!(servers.contains_key(own_server(id)), "{id}: the user's server is gone:\n{text}");
        let git = command_line(&servers["git-mcp"]);
        assert!(git.iter().any(|a| a.ends_with("git-mcp/current/bin/mcp-server-git")), "{id}: {git:?}");
        let fs = command_line(&servers["filesystem-mcp"]);
        assert!(fs[0].ends_with("node/current/bin/node"), "{id}: {fs:?}");
        after.push((path, text));
    }
    // The user's own entries are exactly as they were (read with each format's parser).
    let before_env = Env::new();
    for id in AGENTS {
        let path = before_env.path().join(id);
        std::fs::write(&path, user_content(id)).unwrap();
        let (_, format, keys) = agent_file(id);
        let mut before = peer(&["parse", format, path.to_str().unwrap()]);
        for key in keys {
            before = before[key].clone();
        }
        let mine = if before.is_array() { before[0].clone() } else { before[own_server(id)].clone() };
        assert_eq!(servers_in(&site, id)[own_server(id)], mine, "{id}: the user's entry changed");
    }
    // A second run changes nothing, byte for byte.
    ok(&site, &["mcp", "enable", "filesystem-mcp", "git-mcp"]);
    for (path, text) in &after {
        assert_eq!(&std::fs::read_to_string(path).unwrap(), text, "{} changed on a no-op run", path.display());
    }
    let list = json(&ok(&site, &["--json", "mcp", "list"]));
    for server in list["enabled"].as_array().unwrap() {
        for agent in server["agents"].as_array().unwrap() {
            assert_eq!(agent["status"], "configured", "{server}");
        }
        assert_eq!(server["agents"].as_array().unwrap().len(), 15, "canonical + 14 agents");
    }
    let available: Vec<&str> = list["available"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(available, ["filesystem-mcp", "git-mcp"], "only MCP packs are listed as available");
    // Disable takes out exactly what aibox wrote: the files are back to the user's bytes.
    ok(&site, &["mcp", "disable", "filesystem-mcp", "git-mcp"]);
    for id in AGENTS {
        let text = std::fs::read_to_string(home(&site).join(agent_file(id).0)).unwrap();
        assert_eq!(text, user_content(id), "{id}: disable did not restore the user's file");
    }
}

#[test]
fn forced_agents_get_new_files_their_parsers_read() {
    let site = site("");
    let mut args = vec!["mcp", "enable", "git-mcp"];
    for id in AGENTS {
        args.extend(["--agent", id]);
    }
    ok(&site, &args);
    for id in AGENTS {
        let path = home(&site).join(agent_file(id).0);
        let servers = servers_in(&site, id);
        assert_eq!(servers.keys().collect::<Vec<_>>(), ["git-mcp"], "{id}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "{id}: new files are private");
    }
    assert!(servers_in(&site, "vscode")["git-mcp"]["type"] == "stdio");
    assert!(servers_in(&site, "opencode")["git-mcp"]["type"] == "local");
    assert_eq!(servers_in(&site, "goose")["git-mcp"]["cmd"], servers_in(&site, "codex")["git-mcp"]["command"]);
    // Continue needs its own header in a new config.yaml.
    let continue_file = peer(&["parse", "yaml", home(&site).join(".continue/config.yaml").to_str().unwrap()]);
    assert_eq!(continue_file["schema"], "v1");
    // Files aibox created hold nothing else: disabling the last server takes them away again.
    ok(&site, &["mcp", "disable", "git-mcp"]);
    for id in AGENTS {
        assert!(!home(&site).join(agent_file(id).0).exists(), "{id}: aibox's empty file is left");
    }
    assert!(!home(&site).join(".config/aibox/mcp.json").exists());
}

#[test]
fn unparseable_files_are_left_alone_and_named() {
    let site = site("");
    let broken = |format: &str| match format {
        "toml" => "[mcp_servers.mine\ncommand = 1\n",
        "yaml" => "extensions:\n  a: 1\n    b: 2\n",
        _ => "{\n  \"mcpServers\": {\n    \"mine\": {\"command\" \"x\"}\n  }\n}\n", // no colon on line 3
    };
    let broken_agents: Vec<&str> = AGENTS.iter().copied().filter(|id| *id != "claude-code").collect();
    for id in &broken_agents {
        let (file, format, _) = agent_file(id);
        let path = home(&site).join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, broken(format)).unwrap();
    }
    let stderr = fails(&site, &["mcp", "enable", "git-mcp", "--agent", "claude-code"]);
    for id in &broken_agents {
        let (file, format, _) = agent_file(id);
        let path = home(&site).join(file);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), broken(format), "{id}: the file was touched");
        assert!(stderr.contains(&format!("{}:", path.display())), "{id}: file not named: {stderr}");
    }
    assert!(stderr.contains("config.toml:1:"), "TOML error has a line: {stderr}");
    assert!(stderr.contains("config.yaml:3:") || stderr.contains("config.yaml:2:"), "YAML error has a line: {stderr}");
    assert!(stderr.contains("mcp.json:3:"), "JSON error has a line: {stderr}");
    assert!(stderr.contains("left unchanged"), "{stderr}");
    // The agent whose file parses was configured anyway.
    assert!(servers_in(&site, "claude-code").contains_key("git-mcp"));
    let list = json(&ok(&site, &["--json", "mcp", "list"]));
    let agents = &list["enabled"][0]["agents"];
    let status = |id: &str| agents.as_array().unwrap().iter().find(|a| a["agent"] == id).map(|a| a["status"].clone());
    assert_eq!(status("claude-code"), Some("configured".into()));
    assert_eq!(status("cursor"), Some("unreadable".into()));
}

/// A small stdio MCP pack in its own layout store (no npm or PyPI), version `version`.
fn echo_pack(site: &Site, version: &str, flag: &str) {
    site.publish("echo-mcp", version, &format!("command: bin/echo-mcp\nargs: [\"{flag}\", \"${{WORKSPACE}}\"]\n"));
}

#[test]
fn agent_homes_come_from_the_environment_and_updates_rerender() {
    let site = site_with_own_store();
    echo_pack(&site, "1.0.0", "--v1");
    let dirs = site.env.path().join("dirs");
    let mut c = mcp(&site);
    c.env("CODEX_HOME", dirs.join("codex")).env("CLAUDE_CONFIG_DIR", dirs.join("claude")).env("XDG_CONFIG_HOME", dirs.join("xdg"));
    common::ok(c, &["mcp", "enable", "echo-mcp", "--agent", "codex", "--agent", "claude-code", "--agent", "zed"]);
    for file in ["codex/config.toml", "claude/.claude.json", "xdg/zed/settings.json", "xdg/aibox/mcp.json"] {
        let text = std::fs::read_to_string(dirs.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains("--v1"), "{file}: {text}");
    }
    assert!(!home(&site).join(".codex").exists() && !home(&site).join(".claude.json").exists());

    // A new release with new arguments: `aibox update` rewrites aibox's entries.
    let site2 = site_with_own_store();
    echo_pack(&site2, "1.0.0", "--v1");
    ok(&site2, &["mcp", "enable", "echo-mcp", "--agent", "cursor"]);
    let cursor = home(&site2).join(".cursor/mcp.json");
    assert!(std::fs::read_to_string(&cursor).unwrap().contains("--v1"));
    echo_pack(&site2, "1.1.0", "--v2");
    ok(&site2, &["update", "echo-mcp"]);
    let text = std::fs::read_to_string(&cursor).unwrap();
    assert!(text.contains("--v2") && !text.contains("--v1"), "{text}");
    // A tool pack is not a server.
    site2.publish("plain-tool", "1.0.0", "");
    let stderr = fails(&site2, &["mcp", "enable", "plain-tool"]);
    assert!(stderr.contains("is a tool pack, not an MCP pack"), "{stderr}");
}

#[test]
fn conflicts_drift_and_symlinks() {
    let site = site("");
    // The user has their own `git-mcp` in VS Code: aibox leaves it and says so.
    let vscode = home(&site).join(".config/Code/User/mcp.json");
    std::fs::create_dir_all(vscode.parent().unwrap()).unwrap();
    let own = "{\"servers\": {\"git-mcp\": {\"type\": \"stdio\", \"command\": \"uvx\", \"args\": [\"mcp-server-git\"]}}}\n";
    std::fs::write(&vscode, own).unwrap();
    // Windsurf's config is a symlink into a dotfiles repo, mode 0640.
    let dotfiles = site.env.path().join("dotfiles/windsurf.json");
    std::fs::create_dir_all(dotfiles.parent().unwrap()).unwrap();
    std::fs::write(&dotfiles, "{}\n").unwrap();
    std::fs::set_permissions(&dotfiles, std::fs::Permissions::from_mode(0o640)).unwrap();
    let windsurf = home(&site).join(".codeium/windsurf/mcp_config.json");
    std::fs::create_dir_all(windsurf.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&dotfiles, &windsurf).unwrap();

    let stderr = fails(&site, &["mcp", "enable", "git-mcp", "--agent", "cursor"]);
    assert!(stderr.contains("already has its own `git-mcp` entry"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&vscode).unwrap(), own);
    assert!(std::fs::symlink_metadata(&windsurf).unwrap().file_type().is_symlink(), "the link was replaced");
    assert!(servers_in(&site, "windsurf").contains_key("git-mcp"));
    assert_eq!(std::fs::metadata(&dotfiles).unwrap().permissions().mode() & 0o777, 0o640, "mode kept");

    // The user edits aibox's entry in Cursor: list shows drift, enable keeps the edit,
    // regenerate resets it.
    let cursor = home(&site).join(".cursor/mcp.json");
    let edited = std::fs::read_to_string(&cursor).unwrap().replace("\"-r\"", "\"--repository\"");
    std::fs::write(&cursor, &edited).unwrap();
    let list = json(&ok(&site, &["--json", "mcp", "list"]));
    let cursor_status = list["enabled"][0]["agents"].as_array().unwrap().iter().find(|a| a["agent"] == "cursor").unwrap().clone();
    assert_eq!(cursor_status["status"], "drifted");
    let _ = fails(&site, &["mcp", "enable", "git-mcp"]); // still the VS Code conflict
    assert_eq!(std::fs::read_to_string(&cursor).unwrap(), edited, "enable kept the user's edit");
    std::fs::write(&vscode, "{}\n").unwrap();
    ok(&site, &["mcp", "regenerate"]);
    assert!(!std::fs::read_to_string(&cursor).unwrap().contains("--repository"), "regenerate reset the entry");
    assert!(servers_in(&site, "vscode").contains_key("git-mcp"));

    // The user removes aibox's entry from one agent: it stays out until `regenerate`.
    std::fs::write(&cursor, "{\"mcpServers\": {}}\n").unwrap();
    ok(&site, &["mcp", "enable", "git-mcp"]);
    assert!(!servers_in(&site, "cursor").contains_key("git-mcp"), "an entry removed by hand came back");
    ok(&site, &["mcp", "regenerate"]);
    assert!(servers_in(&site, "cursor").contains_key("git-mcp"));
}

#[test]
fn policy_refusals_name_the_rule() {
    let site = site("filesystem:\n  allow: [/srv/data]\n");
    let stderr = fails(&site, &["mcp", "enable", "git-mcp", "--agent", "cursor"]);
    assert!(stderr.contains("filesystem.allow") && stderr.contains(&format!("`{}`", site.env.path().join("workspace").display())), "{stderr}");
    assert!(!home(&site).join(".cursor/mcp.json").exists(), "nothing was configured");
    assert!(!home(&site).join(".config/aibox/mcp.json").exists());
    assert!(site.state()["packs"].get("git-mcp").is_none(), "the pack installed for the refused request was removed");

    // A server that needs an endpoint the policy does not allow is refused at install.
    let site = site_with_own_store();
    site.publish("weather-mcp", "1.0.0", "command: bin/weather-mcp\nnetwork_requires: [api.weather.example:443]\n");
    let stderr = fails(&site, &["mcp", "enable", "weather-mcp", "--agent", "cursor"]);
    assert!(stderr.contains("network endpoint `api.weather.example:443`") && stderr.contains("network.allow"), "{stderr}");
    assert!(!home(&site).join(".cursor/mcp.json").exists());
}

fn site_with_own_store() -> Site {
    let site = Site::layout();
    std::fs::create_dir_all(site.env.path().join("workspace")).unwrap();
    site
}

#[test]
fn uninstalling_a_pack_takes_its_server_out_of_agents() {
    let site = site("");
    ok(&site, &["mcp", "enable", "git-mcp", "filesystem-mcp", "--agent", "cursor", "--agent", "codex"]);
    ok(&site, &["uninstall", "git-mcp"]);
    assert_eq!(servers_in(&site, "cursor").keys().collect::<Vec<_>>(), ["filesystem-mcp"]);
    assert_eq!(servers_in(&site, "codex").keys().collect::<Vec<_>>(), ["filesystem-mcp"]);
    let canonical = json(&std::fs::read_to_string(home(&site).join(".config/aibox/mcp.json")).unwrap());
    assert!(canonical["mcpServers"].get("git-mcp").is_none());
    // Project scope: the project's own files.
    let project = site.env.path().join("project");
    std::fs::create_dir_all(project.join(".vscode")).unwrap();
    ok(&site, &["mcp", "enable", "filesystem-mcp", "--scope", "project", "--project", project.to_str().unwrap()]);
    let dot_mcp = json(&std::fs::read_to_string(project.join(".mcp.json")).unwrap());
    assert!(dot_mcp["mcpServers"]["filesystem-mcp"]["command"].as_str().unwrap().ends_with("node/current/bin/node"));
    let vscode = peer(&["parse", "jsonc", project.join(".vscode/mcp.json").to_str().unwrap()]);
    assert_eq!(vscode["servers"]["filesystem-mcp"]["type"], "stdio");
    assert!(!Path::new(&project.join(".cursor")).exists(), "only agents the project has");
}
