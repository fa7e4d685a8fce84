//! Project files: aibox.yaml + aibox.lock, `aibox lock`, `aibox sync [--locked|--offline|--frozen]`,
//! and install / uninstall inside a project keeping both in step.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Site, json};

/// Every file under `root` (relative path → content; symlinks as their target).
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in walk(root) {
        let rel = entry.strip_prefix(root).unwrap().display().to_string();
        if rel.starts_with(".aibox") {
            continue; // the cache and lock file, not the installed trees
        }
        let meta = std::fs::symlink_metadata(&entry).unwrap();
        let content = if meta.file_type().is_symlink() {
            std::fs::read_link(&entry).unwrap().display().to_string().into_bytes()
        } else if meta.is_file() {
            std::fs::read(&entry).unwrap()
        } else {
            b"<dir>".to_vec()
        };
        out.insert(rel, content);
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        out.push(p.clone());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        }
    }
    out
}

#[test]
fn lock_and_sync_round_trip() {
    let site = Site::layout();
    site.publish("tool", "1.0.0", "");
    site.publish("tool", "1.1.0", "");
    site.publish("base", "2.0.0", "");
    site.publish("app", "1.0.0", "depends: [base@2]\n");
    let project = site.env.path().join("aibox.yaml");
    std::fs::write(&project, "# what this repo needs\npacks: [tool@1, app@1]\n").unwrap();
    let lock_path = site.env.path().join("aibox.lock");

    let out = json(&site.ok(&["--json", "lock"]));
    assert_eq!(out["changed"], true);
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    assert!(lock.contains("name: \"tool\"\n    version: \"1.1.0\"\n    requested: \"tool@1\""), "{lock}");
    assert!(lock.contains("name: \"base\"\n    version: \"2.0.0\"\n    store:"), "a dependency, without `requested`: {lock}");
    assert_eq!(json(&site.ok(&["--json", "lock"]))["changed"], false, "same resolution, same bytes");
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), lock);

    // A newer release does not move the lock; --update does.
    site.publish("tool", "1.2.0", "");
    site.ok(&["lock"]);
    assert!(std::fs::read_to_string(&lock_path).unwrap().contains("\"1.1.0\""));
    let locked_110 = std::fs::read_to_string(&lock_path).unwrap();
    site.ok(&["lock", "--update"]);
    assert!(std::fs::read_to_string(&lock_path).unwrap().contains("\"1.2.0\""));
    std::fs::write(&lock_path, &locked_110).unwrap();

    // sync --frozen on two fresh toolpacks dirs: the lock's releases, byte-identical trees.
    let dirs = [site.env.path().join("tp-a"), site.env.path().join("tp-b")];
    for dir in &dirs {
        let mut c = site.aibox();
        c.env("AIBOX_TOOLPACKS_DIR", dir);
        let out = json(&common::ok(c, &["--json", "sync", "--frozen"]));
        let versions: BTreeMap<String, String> = out["packs"].as_array().unwrap().iter().map(|p| (p["name"].as_str().unwrap().to_owned(), p["version"].as_str().unwrap().to_owned())).collect();
        assert_eq!(versions["tool"], "1.1.0", "the lock, not the newest release");
        assert_eq!(versions["base"], "2.0.0");
    }
    // Identical but for env.sh naming its own directory.
    let [a, b] = [0, 1].map(|i| {
        let mut t = tree(&dirs[i]);
        let env = String::from_utf8(t.remove("env.sh").unwrap()).unwrap().replace(&dirs[i].display().to_string(), "TOOLPACKS");
        t.insert("env.sh".into(), env.into_bytes());
        t
    });
    assert_eq!(a, b);
    assert!(tree(&dirs[0]).contains_key("tool/1.1.0/bin/tool"));
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), locked_110, "sync --frozen never writes the lock");

    // aibox.yaml changes: --locked refuses and changes nothing; sync writes the lock.
    std::fs::write(&project, "# what this repo needs\npacks: [tool@1, app@1, tool-extra@1]\n").unwrap();
    site.publish("tool-extra", "1.0.0", "");
    let err = site.fails(&["sync", "--locked"]);
    assert!(err.contains("aibox.lock is out of date") && err.contains("tool-extra@1"), "{err}");
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), locked_110);
    site.ok(&["sync"]);
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    assert!(lock.contains("\"tool-extra\"") && lock.contains("\"1.1.0\""), "new entry added, the kept pin kept: {lock}");
    site.ok(&["sync", "--locked"]);

    // A request also reached as a dependency (base@2 through app) is a request in the lock.
    std::fs::write(&project, "packs: [app@1, base@2]\n").unwrap();
    site.ok(&["lock"]);
    assert!(std::fs::read_to_string(&lock_path).unwrap().contains("requested: \"base@2\""));
    site.ok(&["sync", "--locked"]);

    // A lock that lost a dependency's entry (a bad merge) is stale.
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    std::fs::write(&project, "packs: [app@1]\n").unwrap();
    site.ok(&["lock"]);
    let without_base: String = {
        let text = std::fs::read_to_string(&lock_path).unwrap();
        let start = text.find("  - name: \"base\"").unwrap();
        let end = text[start + 1..].find("  - name:").map_or(text.len(), |i| start + 1 + i);
        format!("{}{}", &text[..start], &text[end..])
    };
    std::fs::write(&lock_path, without_base).unwrap();
    let err = site.fails(&["sync", "--frozen"]);
    assert!(err.contains("depends on base@2, which the lock does not pin"), "{err}");
    let _ = lock;

    // A lock that does not parse is named.
    std::fs::write(&lock_path, "version: 1\npacks: [unclosed\n").unwrap();
    let err = site.fails(&["sync"]);
    assert!(err.contains("aibox.lock") && err.contains("line"), "{err}");
}

#[test]
fn install_and_uninstall_in_a_project_edit_both_files() {
    let site = Site::layout();
    site.publish("tool", "1.0.0", "");
    site.publish("other", "3.1.0", "");
    let project = site.env.path().join("aibox.yaml");
    std::fs::write(&project, "# keep this comment\npacks: [tool@1]\n").unwrap();
    site.ok(&["sync"]);

    site.ok(&["install", "other@3"]);
    let text = std::fs::read_to_string(&project).unwrap();
    assert!(text.starts_with("# keep this comment\n") && text.contains("other@3") && text.contains("tool@1"), "{text}");
    let lock = std::fs::read_to_string(site.env.path().join("aibox.lock")).unwrap();
    assert!(lock.contains("requested: \"other@3\""), "{lock}");
    site.ok(&["sync", "--locked"]);

    // The lock keeps its layers in the cache even when nothing installed uses them.
    site.ok(&["uninstall", "tool"]);
    let text = std::fs::read_to_string(&project).unwrap();
    assert!(!text.contains("tool@1") && text.contains("other@3"), "{text}");
    assert!(!std::fs::read_to_string(site.env.path().join("aibox.lock")).unwrap().contains("\"tool\""));
    let gc = json(&site.ok(&["--json", "cache", "gc"]));
    let kept = site.toolpacks.join(".aibox/cache");
    assert!(gc["blobs"].as_u64().unwrap() >= 1, "tool's layer is no longer needed: {gc}");
    let lock = std::fs::read_to_string(site.env.path().join("aibox.lock")).unwrap();
    let layer = lock.lines().find_map(|l| l.trim().strip_prefix("layer: \"sha256:")).unwrap().trim_end_matches('"').to_owned();
    // Uninstalled from outside the project: the project still locks it.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut c = site.aibox();
    c.current_dir(elsewhere.path());
    common::ok(c, &["uninstall", "other"]);
    assert!(std::fs::read_to_string(&project).unwrap().contains("other@3"));
    site.ok(&["cache", "gc"]);
    assert!(kept.join("blobs/sha256").join(&layer).is_file(), "the lock's layer stays cached for the next sync");
    let out = json(&site.ok(&["--json", "sync", "--frozen"]));
    assert_eq!(out["packs"][0]["cached"], true, "installed from the cache");

    // Outside a project nothing of this happens.
    std::fs::remove_file(&project).unwrap();
    let err = site.fails(&["sync"]);
    assert!(err.contains("no aibox.yaml"), "{err}");
}
