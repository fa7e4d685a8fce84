//! `aibox verify-installed` and `aibox repair`: installed files against their pack's layer.

mod common;

use common::{Site, json};

#[test]
fn damage_is_named_and_repaired_from_verified_bytes() {
    let site = Site::layout();
    let dir = site.env.path().join("src/tool");
    std::fs::create_dir_all(dir.join("root/bin")).unwrap();
    std::fs::create_dir_all(dir.join("root/share")).unwrap();
    std::fs::write(dir.join("pack.yaml"), "name: tool\nversion: 1.0.0\ndescription: d\nmaintainer: m\npath: [bin]\n").unwrap();
    std::fs::write(dir.join("root/bin/tool"), "#!/bin/sh\necho tool\n").unwrap();
    std::fs::set_permissions(dir.join("root/bin/tool"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("root/share/data.txt"), "data\n").unwrap();
    site.env.ok(&["-q", "pack", "publish", dir.to_str().unwrap(), "--to", &site.store, "--key", &site.key]);
    site.ok(&["install", "tool@1"]);

    let out = json(&site.ok(&["--json", "verify-installed"]));
    assert_eq!(out["packs"][0]["changed"], serde_json::json!([]), "{out}");

    let tree = site.toolpacks.join("tool/1.0.0");
    std::fs::write(tree.join("bin/tool"), "#!/bin/sh\necho tampered\n").unwrap();
    std::fs::remove_file(tree.join("share/data.txt")).unwrap();
    std::fs::write(tree.join("bin/dropped-in"), "x").unwrap();
    let out = site.aibox().args(["--json", "verify-installed"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&String::from_utf8(out.stdout).unwrap());
    let pack = &doc["packs"][0];
    assert_eq!(pack["changed"], serde_json::json!(["bin/tool"]), "{doc}");
    assert_eq!(pack["missing"], serde_json::json!(["share/data.txt"]), "{doc}");
    assert_eq!(pack["extra"], serde_json::json!(["bin/dropped-in"]), "{doc}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("aibox repair"));

    let out = json(&site.ok(&["--json", "repair"]));
    assert_eq!(out["repaired"], serde_json::json!(["tool"]));
    site.ok(&["verify-installed"]);
    assert_eq!(std::fs::read_to_string(site.toolpacks.join("tool/current/bin/tool")).unwrap(), "#!/bin/sh\necho tool\n");
    assert_eq!(site.state()["packs"]["tool"]["requested"], "tool@1", "what asked for it is kept");

    // With the layer no longer cached, the store provides it.
    site.ok(&["cache", "clean"]);
    std::fs::write(site.toolpacks.join("tool/1.0.0/share/data.txt"), "changed\n").unwrap();
    let out = site.aibox().args(["--json", "verify-installed"]).output().unwrap();
    let doc = json(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(doc["packs"][0]["changed"], serde_json::json!(["share/data.txt"]), "{doc}");
}
