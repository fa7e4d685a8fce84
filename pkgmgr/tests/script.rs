//! The `script` install method: allowed by the policy release by release (name and digest),
//! run as the current user in the staging tree with only the proxy environment passed through,
//! its output kept in a log, the result activated atomically; a failure installs nothing.

mod common;

use common::{Site, json};

/// Publish script pack `gen` at `version` whose script ends with `tail`; returns its digest.
fn publish_script_pack(site: &Site, version: &str, tail: &str) -> String {
    let dir = site.env.path().join("src/gen").join(version);
    std::fs::create_dir_all(dir.join("root")).unwrap();
    std::fs::write(dir.join("pack.yaml"), format!("name: gen\nversion: {version}\ndescription: generates its tool\nmaintainer: m\npath: [bin]\ninstall:\n  method: script\n  script: install.sh\n")).unwrap();
    std::fs::write(
        dir.join("root/install.sh"),
        format!("set -e\necho \"building in $PACK_ROOT for $PACK_DEST as $(id -u)\"\nmkdir -p \"$PACK_ROOT/bin\"\nprintf '#!/bin/sh\\necho generated %s\\n' \"$PACK_VERSION\" > \"$PACK_ROOT/bin/gen\"\nchmod +x \"$PACK_ROOT/bin/gen\"\necho \"proxy=${{https_proxy:-none}} secret=${{SECRET_TOKEN:-absent}}\" > \"$PACK_ROOT/env-seen\"\n{tail}"),
    )
    .unwrap();
    let out = json(&site.env.ok(&["--json", "pack", "publish", dir.to_str().unwrap(), "--to", &site.store, "--key", &site.key]));
    out["published"]["digest"].as_str().unwrap_or_else(|| panic!("{out}")).to_owned()
}

fn policy(site: &Site, extra: &str) {
    std::fs::write(&site.policy, format!("trust:\n  - store: {}\n    keys: [{}]\n{extra}", site.store, site.public)).unwrap();
}

#[test]
fn scripts_run_only_when_the_policy_allows_that_release() {
    let site = Site::layout();
    let digest = publish_script_pack(&site, "1.0.0", "");

    policy(&site, "");
    let err = site.fails(&["install", "gen@1.0.0"]);
    assert!(err.contains("install method `script`") && err.contains("install_methods"), "{err}");
    policy(&site, "install_methods: [docker-layer, script]\n");
    let err = site.fails(&["install", "gen@1.0.0"]);
    assert!(err.contains("install script") && err.contains("`scripts`"), "{err}");
    assert!(site.pack_dirs().is_empty(), "nothing installed");

    policy(&site, &format!("install_methods: [docker-layer, script]\nscripts:\n  - pack: gen\n    digest: {digest}\n"));
    let mut c = site.aibox();
    c.env("https_proxy", "http://proxy.test:3128").env("SECRET_TOKEN", "do-not-pass");
    common::ok(c, &["install", "gen@1.0.0"]);
    let out = common::run("sh", &["-c", &format!(". {}/env.sh && gen", site.toolpacks.display())]);
    assert_eq!(out, "generated 1.0.0\n");
    let seen = std::fs::read_to_string(site.toolpacks.join("gen/current/env-seen")).unwrap();
    assert_eq!(seen, "proxy=http://proxy.test:3128 secret=absent\n", "the proxy passes, nothing else does");
    let log = std::fs::read_to_string(site.toolpacks.join(".aibox/logs/gen-1.0.0.log")).unwrap();
    assert!(log.contains("building in") && log.contains(&format!("for {}", site.toolpacks.join("gen/1.0.0").display())), "{log}");

    // A failing script: nothing of it is installed, the previous release stays active.
    let bad = publish_script_pack(&site, "1.1.0", "echo about to fail >&2\nexit 3\n");
    policy(&site, &format!("install_methods: [docker-layer, script]\nscripts:\n  - pack: gen\n    digest: {digest}\n  - pack: gen\n    digest: {bad}\n"));
    let err = site.fails(&["install", "gen@1.1.0"]);
    assert!(err.contains("exited with 3") && err.contains("gen-1.1.0.log"), "{err}");
    assert!(std::fs::read_to_string(site.toolpacks.join(".aibox/logs/gen-1.1.0.log")).unwrap().contains("about to fail"));
    assert_eq!(site.state()["packs"]["gen"]["version"], "1.0.0");
    assert_eq!(std::fs::read_link(site.toolpacks.join("gen/current")).unwrap().to_str().unwrap(), "1.0.0");
    assert!(!site.toolpacks.join("gen/1.1.0").exists());
}

/// A `nix` pack: its expression installed into a profile in the pack's directory, with Debian's
/// nix-bin and a local derivation that needs no network.
#[test]
fn nix_packs_install_into_a_profile() {
    aibox_test_harness::require("nix-env");
    let site = Site::layout();
    let dir = site.env.path().join("src/hello-nix");
    std::fs::create_dir_all(dir.join("root")).unwrap();
    std::fs::write(dir.join("pack.yaml"), "name: hello-nix\nversion: 1.0.0\ndescription: a tool built by nix\nmaintainer: m\npath: [profile/bin]\ninstall:\n  method: nix\n  expression: default.nix\n").unwrap();
    std::fs::write(
        dir.join("root/default.nix"),
        r#"derivation {
  name = "hello-nix-1.0.0";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "/bin/mkdir -p $out/bin && printf '#!/bin/sh\\necho hello from nix\\n' > $out/bin/hello-nix && /bin/chmod +x $out/bin/hello-nix" ];
}
"#,
    )
    .unwrap();
    let out = json(&site.env.ok(&["--json", "pack", "publish", dir.to_str().unwrap(), "--to", &site.store, "--key", &site.key]));
    let digest = out["published"]["digest"].as_str().unwrap().to_owned();
    policy(&site, "");
    let err = site.fails(&["install", "hello-nix@1"]);
    assert!(err.contains("install method `nix`"), "{err}");
    policy(&site, "install_methods: [docker-layer, nix]\n");
    let err = site.fails(&["install", "hello-nix@1"]);
    assert!(err.contains("install expression") && err.contains("`scripts`"), "nix runs the pack's code: allowed per release: {err}");
    policy(&site, &format!("install_methods: [docker-layer, nix]\nscripts:\n  - pack: hello-nix\n    digest: {digest}\n"));
    // This machine's nix: no sandbox, no build users, no binary cache (no network here).
    let nix_config = "sandbox = false\nbuild-users-group =\nsubstituters =\n";
    let mut c = site.aibox();
    c.env("NIX_CONFIG", nix_config);
    common::ok(c, &["install", "hello-nix@1"]);
    let out = common::run("sh", &["-c", &format!(". {}/env.sh && hello-nix", site.toolpacks.display())]);
    assert_eq!(out, "hello from nix\n");
    let profile = std::fs::canonicalize(site.toolpacks.join("hello-nix/current/profile")).unwrap();
    assert!(profile.starts_with("/nix/store"), "{}", profile.display());
    assert!(site.toolpacks.join("hello-nix/1.0.0/.nix-gcroot").is_symlink(), "the profile is rooted at its final place");
}
