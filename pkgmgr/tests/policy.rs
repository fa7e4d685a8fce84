//! Policy layers end to end: org baseline, team files in policy.d/, the project's aibox.yaml;
//! lower layers only tighten; `aibox policy validate | explain`; what installs enforce.

mod common;

use common::{Site, json};

/// Org: trusts the site's store; endpoints *.internal:443; packs tool-*.
fn org(site: &Site) {
    std::fs::write(
        &site.policy,
        format!(
            "# org baseline\ntrust:\n  - store: {}\n    keys: [{}]\nnetwork:\n  allow: [\"*.internal:443\"]\nfilesystem:\n  allow: [/workspace, /home]\npacks:\n  allow: [\"tool-*\", \"other\"]\n",
            site.store, site.public
        ),
    )
    .unwrap();
}

fn team(site: &Site, name: &str, text: &str) -> std::path::PathBuf {
    let dir = site.policy.parent().unwrap().join("policy.d");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn lower_layers_tighten_and_installs_obey_them() {
    let site = Site::layout();
    org(&site);
    site.publish("tool-a", "1.0.0", "network:\n  endpoints: [\"nexus.internal:443\"]\n");
    site.publish("tool-b", "1.0.0", "network:\n  endpoints: [\"proxy.internal:443\"]\n");
    site.publish("tool-evil", "1.0.0", "");
    site.publish("other", "1.0.0", "");
    let team_file = team(&site, "10-team.yaml", "network:\n  allow: [\"nexus.internal:443\"]\npacks:\n  deny: [\"*-evil\"]\n");

    site.ok(&["policy", "validate"]);
    let explained = json(&site.ok(&["--json", "policy", "explain"]));
    assert_eq!(explained["policy"]["network"]["allow"], serde_json::json!(["nexus.internal:443"]));
    assert!(explained["origins"]["network.allow"].as_str().unwrap().contains("10-team.yaml:1"), "{explained}");
    assert!(explained["origins"]["trust"].as_str().unwrap().contains("policy.yaml:2"), "{explained}");
    assert!(explained["origins"]["packs.deny *-evil"].as_str().unwrap().contains("10-team.yaml:4"), "{explained}");

    site.ok(&["install", "tool-a@1"]);
    let err = site.fails(&["install", "tool-b@1"]);
    assert!(err.contains("proxy.internal:443") && err.contains("10-team.yaml") && err.contains("network.allow"), "the team layer narrowed the network: {err}");
    let err = site.fails(&["install", "tool-evil@1"]);
    assert!(err.contains("packs.deny") && err.contains("*-evil"), "{err}");

    // The project layer (aibox.yaml in the working directory or above) tightens further.
    let project = site.env.path().join("aibox.yaml");
    std::fs::write(&project, "packs: [tool-a@1]\npolicy:\n  packs:\n    allow: [\"tool-a\"]\n").unwrap();
    let err = site.fails(&["install", "other@1"]);
    assert!(err.contains("packs.allow") && err.contains("aibox.yaml"), "{err}");
    let explained = json(&site.ok(&["--json", "policy", "explain"]));
    assert_eq!(explained["layers"].as_array().unwrap().len(), 3);
    std::fs::remove_file(&project).unwrap();
    site.ok(&["install", "other@1"]);
    let _ = team_file;
}

#[test]
fn every_loosening_is_refused_naming_both_lines() {
    let site = Site::layout();
    org(&site);
    let (_, other_public) = site.env.keys("other");
    let cases = [
        ("network:\n  allow: [\"evil.com:443\"]\n", "allows endpoint `evil.com:443`", "policy.yaml:5"),
        ("network:\n  allow: [\"nexus.internal:*\"]\n", "allows endpoint `nexus.internal:*`", "policy.yaml:5"),
        (&*format!("trust:\n  - store: oci:/elsewhere\n    keys: [{}]\n", site.public), "trusts store `oci:/elsewhere`", "policy.yaml:2"),
        (&*format!("trust:\n  - store: {}\n    keys: [{other_public}]\n", site.store), "trusts key", "policy.yaml:2"),
        ("filesystem:\n  allow: [/etc]\n", "allows path `/etc`", "policy.yaml:7"),
        ("install_methods: [script]\n", "allows install method `script`", "(which set nothing)"),
        ("packs:\n  allow: [\"*\"]\n", "allows packs `*`", "policy.yaml:9"),
        ("scripts:\n  - pack: tool-a\n    digest: sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n", "allows the script of tool-a", "(which set nothing)"),
    ];
    for (text, what, upper) in cases {
        let path = team(&site, "20-loose.yaml", text);
        let err = site.fails(&["policy", "validate"]);
        assert!(err.contains(what) && err.contains("20-loose.yaml:") && err.contains(upper), "{text}\n{err}");
        // Installs refuse to run under a policy that does not hold together.
        let err = site.fails(&["install", "tool-a@1"]);
        assert!(err.contains("20-loose.yaml"), "{err}");
        std::fs::remove_file(path).unwrap();
    }
    // What only tightens is fine: a sub-domain wildcard, a sub-path, a narrower glob, a denial.
    team(&site, "30-tight.yaml", "network:\n  allow: [\"*.eu.internal:443\"]\nfilesystem:\n  allow: [/workspace/src]\npacks:\n  allow: [\"tool-a*\"]\n  deny: [other]\ninstall_methods: [docker-layer]\n");
    site.ok(&["policy", "validate"]);
    // A malformed rule is named with its line.
    team(&site, "40-bad.yaml", "network:\n  allow:\n    - nexus.internal\n");
    let err = site.fails(&["policy", "validate"]);
    assert!(err.contains("40-bad.yaml:3") && err.contains("not host:port"), "{err}");
    // validate FILE checks one file against the layers above it.
    let err = site.fails(&["policy", "validate", site.policy.parent().unwrap().join("policy.d/40-bad.yaml").to_str().unwrap()]);
    assert!(err.contains("40-bad.yaml:3"), "{err}");
}

#[test]
fn signatures_are_required_unless_the_org_makes_them_optional() {
    let site = Site::layout();
    org(&site);
    // An unsigned release in the same store (built, never signed).
    let dir = site.env.path().join("src/tool-unsigned");
    std::fs::create_dir_all(dir.join("root/bin")).unwrap();
    std::fs::write(dir.join("pack.yaml"), "name: tool-unsigned\nversion: 1.0.0\ndescription: d\nmaintainer: m\npath: [bin]\n").unwrap();
    std::fs::write(dir.join("root/bin/tool-unsigned"), "#!/bin/sh\necho unsigned\n").unwrap();
    site.env.ok(&["-q", "pack", "build", dir.to_str().unwrap(), "-o", &site.store]);
    let err = site.fails(&["install", "tool-unsigned@1"]);
    assert!(err.contains("is not signed"), "{err}");

    // A team may not make them optional...
    let loose = team(&site, "10-loose.yaml", "verification:\n  signatures: optional\n");
    let err = site.fails(&["policy", "validate"]);
    assert!(err.contains("makes signatures optional") && err.contains("10-loose.yaml:2"), "{err}");
    std::fs::remove_file(loose).unwrap();

    // ...the org may; then unsigned packs install, recorded as such, and a team may require them again.
    let text = std::fs::read_to_string(&site.policy).unwrap();
    std::fs::write(&site.policy, format!("{text}verification:\n  signatures: optional\n")).unwrap();
    site.ok(&["install", "tool-unsigned@1"]);
    assert_eq!(site.state()["packs"]["tool-unsigned"]["signer"], "unsigned");
    team(&site, "20-strict.yaml", "verification:\n  signatures: required\n");
    site.ok(&["policy", "validate"]);
    let err = site.fails(&["install", "--force", "tool-unsigned@1"]);
    assert!(err.contains("is not signed"), "{err}");
}
