//! The repository's real tool packs that this machine can build (their sources come from PyPI
//! and npm): built and signed with `aibox pack publish`, installed with their dependencies, and
//! their tools run from `env.sh`.

mod common;

use common::{Site, run, workspace};

#[test]
fn angular_18_installs_with_node_20_and_runs() {
    let site = Site::layout();
    for dir in ["packs/node/20", "packs/angular/18"] {
        site.env.ok(&["-q", "pack", "publish", workspace().join(dir).to_str().unwrap(), "--to", &site.store, "--key", &site.key]);
    }
    site.ok(&["install", "angular@18"]);
    let env_sh = site.toolpacks.join("env.sh");
    // A clean PATH: the tools must come from the packs, not from the machine.
    let script = format!(". {} && node --version && npm --version && ng version", env_sh.display());
    let out = run("env", &["-i", "PATH=/usr/bin:/bin", &format!("HOME={}", site.env.path().join("home").display()), "sh", "-c", &script]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("v20.18.0"), "node comes from the node@20 pack:\n{out}");
    assert!(lines.next().is_some_and(|v| v.starts_with("10.")), "npm 10 from the node pack:\n{out}");
    assert!(out.contains("Angular CLI: 18.2.21") && out.contains("Node: 20.18.0"), "{out}");
    let state = site.state();
    assert_eq!(state["packs"]["node"]["requested"], serde_json::Value::Null, "node came in as a dependency");
}
