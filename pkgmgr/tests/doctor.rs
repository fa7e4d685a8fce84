//! `aibox doctor`: each finding and its fix.

mod common;

use common::{Site, json};

fn findings(out: &serde_json::Value, check: &str) -> Vec<(String, String)> {
    out["findings"].as_array().unwrap().iter().filter(|f| f["check"] == check).map(|f| (f["level"].as_str().unwrap().to_owned(), f["message"].as_str().unwrap().to_owned())).collect()
}

fn doctor(site: &Site) -> (bool, serde_json::Value) {
    let out = site.aibox().args(["--json", "doctor"]).output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.success(), doc)
}

#[test]
fn finds_what_is_broken_and_says_how_to_fix_it() {
    let site = Site::layout();
    site.publish("tool", "1.0.0", "");
    site.ok(&["install", "tool@1"]);

    // Healthy but for the shell: nothing sources env.sh yet.
    let (ok, out) = doctor(&site);
    assert!(ok, "{out}");
    assert_eq!(findings(&out, "shell")[0].0, "warning", "{out}");
    for check in ["toolpacks", "state", "policy", "store"] {
        assert_eq!(findings(&out, check)[0].0, "ok", "{check}: {out}");
    }
    std::fs::write(site.env.path().join("home/.bashrc"), format!("[ -r {0}/env.sh ] && . {0}/env.sh\n", site.toolpacks.display())).unwrap();
    let (_, out) = doctor(&site);
    assert_eq!(findings(&out, "shell")[0].0, "ok", "{out}");

    // A missing tree.
    std::fs::remove_dir_all(site.toolpacks.join("tool/1.0.0")).unwrap();
    let (ok, out) = doctor(&site);
    assert!(!ok);
    let state = findings(&out, "state");
    assert!(state[0].0 == "error" && state[0].1.contains("tree is missing"), "{out}");
    assert!(out["findings"].as_array().unwrap().iter().any(|f| f["fix"].as_str().is_some_and(|x| x.contains("aibox install --force tool@1.0.0"))), "{out}");
    site.ok(&["install", "--force", "tool@1"]);

    // A broken policy, an unreachable store.
    std::fs::write(&site.policy, "trust: [unclosed\n").unwrap();
    let (ok, out) = doctor(&site);
    assert!(!ok && findings(&out, "policy")[0].0 == "error", "{out}");
    std::fs::write(&site.policy, format!("trust:\n  - store: {}\n    keys: [{}]\n", site.store, site.public)).unwrap();
    let mut c = site.aibox();
    c.env("AIBOX_STORE", "docker://127.0.0.1:9/nothing");
    let out = c.args(["--json", "doctor"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(findings(&doc, "store")[0].0, "error", "{doc}");

    // A stale project lock.
    std::fs::write(site.env.path().join("aibox.yaml"), "packs: [tool@1]\n").unwrap();
    let (_, out) = doctor(&site);
    assert!(findings(&out, "project")[0].1.contains("no aibox.lock"), "{out}");
    site.ok(&["lock"]);
    let (ok, out) = doctor(&site);
    assert!(ok && findings(&out, "project")[0].0 == "ok", "{out}");

    // The toolpacks dir is a file.
    let mut c = site.aibox();
    let file = site.env.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    c.env("AIBOX_TOOLPACKS_DIR", &file);
    let out = c.args(["--json", "doctor"]).output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(findings(&doc, "toolpacks")[0].1.contains("is not a directory"), "{doc}");
    let _ = json;
}
