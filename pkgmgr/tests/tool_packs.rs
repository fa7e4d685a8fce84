//! The repository's real tool packs that this machine can build (their sources come from PyPI
//! and npm): built and signed with `aibox pack publish`, installed with their dependencies, and
//! their tools run from `env.sh`.

mod common;

use common::{Site, run, workspace};

/// Run `script` in `sh` with a bare environment (the tools must come from the packs) and
/// env.sh sourced first.
fn in_sandbox(site: &Site, vars: &[&str], script: &str) -> String {
    let env_sh = site.toolpacks.join("env.sh");
    let home = format!("HOME={}", site.env.path().join("home").display());
    let full = format!(". {} && {script}", env_sh.display());
    let mut args = vec!["-i", "PATH=/usr/bin:/bin", home.as_str()];
    args.extend_from_slice(vars);
    args.extend(["sh", "-c", full.as_str()]);
    run("env", &args)
}

#[test]
fn node_angular_and_ai_tools_install_and_run() {
    let site = Site::layout();
    // ai-tools declares the LLM proxy it talks to.
    std::fs::write(&site.policy, format!("{}network:\n  allow: [\"localhost:8443\"]\n", std::fs::read_to_string(&site.policy).unwrap())).unwrap();
    for dir in ["packs/node/20", "packs/angular/18", "packs/ai-tools/1"] {
        site.env.ok(&["-q", "pack", "publish", workspace().join(dir).to_str().unwrap(), "--to", &site.store, "--key", &site.key]);
    }
    site.ok(&["install", "angular@18"]);
    let out = in_sandbox(&site, &[], "node --version && npm --version && yarn --version && ng version");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("v20.18.0"), "node comes from the node@20 pack:\n{out}");
    assert!(lines.next().is_some_and(|v| v.starts_with("10.")), "npm 10 from the node pack:\n{out}");
    assert_eq!(lines.next(), Some("1.22.22"), "yarn 1.22 from the node pack:\n{out}");
    assert!(out.contains("Angular CLI: 18.2.21") && out.contains("Node: 20.18.0"), "{out}");
    assert_eq!(site.state()["packs"]["node"]["requested"], serde_json::Value::Null, "node came in as a dependency");

    site.ok(&["install", "ai-tools"]);
    let out = in_sandbox(&site, &[], "claude --version && codex --version && echo \"$ANTHROPIC_BASE_URL $OPENAI_BASE_URL\"");
    assert!(out.contains("2.1.328 (Claude Code)") && out.contains("codex-cli 0.169.0"), "{out}");
    assert!(out.contains("http://localhost:8443 http://localhost:8443/v1"), "the proxy default:\n{out}");
    let out = in_sandbox(&site, &["AIBOX_LLM_PROXY=https://llm.internal"], "echo \"$ANTHROPIC_BASE_URL $OPENAI_BASE_URL\"");
    assert_eq!(out.trim(), "https://llm.internal https://llm.internal/v1", "the site's proxy wins");
}

#[test]
fn every_recipe_lints_with_its_dependencies_resolved() {
    let site = Site::layout();
    site.publish("hello", "1.0.0", ""); // a store that exists but holds none of the dependencies
    let mut dirs: Vec<String> = Vec::new();
    for group in ["packs", "mcp-packs"] {
        for entry in walkdir::WalkDir::new(workspace().join(group)).min_depth(1).max_depth(2) {
            let entry = entry.unwrap();
            if entry.path().join("pack.yaml").is_file() {
                dirs.push(entry.path().display().to_string());
            }
        }
    }
    assert!(dirs.len() >= 10, "the seven recipes, node's MCP packs and hello: {dirs:?}");
    let mut args = vec!["--json", "pack", "lint", "--deps-in", site.store.as_str()];
    args.extend(dirs.iter().map(String::as_str));
    let out = common::json(&site.env.ok(&args));
    assert!(out["packs"].as_array().unwrap().iter().all(|p| p["ok"] == true), "{out}");
    // Alone, angular's node@20 is nowhere to be found.
    let angular = workspace().join("packs/angular/18");
    let stderr = site.env.fails(&["pack", "lint", "--deps-in", &site.store, angular.to_str().unwrap()]);
    assert!(stderr.contains("depends on node@20"), "{stderr}");

    // An npm source without its lock is not a pinned recipe; a pack cannot claim a platform its
    // dependency lacks; npm content cannot be built for another platform.
    let loose = site.env.path().join("loose");
    std::fs::create_dir_all(&loose).unwrap();
    std::fs::write(loose.join("pack.yaml"), "name: loose\nversion: 1.0.0\ndescription: d\nmaintainer: m\nplatforms: [linux/amd64, linux/arm64]\ndepends: [node@20]\nsources:\n  - npm: left-pad@1.3.0\n").unwrap();
    let node = workspace().join("packs/node/20");
    let stderr = site.env.fails(&["pack", "lint", loose.to_str().unwrap()]);
    assert!(stderr.contains("not pinned") && stderr.contains("package-lock.json"), "{stderr}");
    std::fs::write(loose.join("package-lock.json"), "{}").unwrap();
    let stderr = site.env.fails(&["pack", "lint", loose.to_str().unwrap(), node.to_str().unwrap()]);
    assert!(stderr.contains("is not built for linux/arm64"), "{stderr}");
    let stderr = site.env.fails(&["pack", "build", loose.to_str().unwrap(), "--platform", "linux/arm64", "-o", "oci:./never"]);
    assert!(stderr.contains("build this pack on a linux/arm64 host"), "{stderr}");
}
