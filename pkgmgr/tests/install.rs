//! `aibox install` end to end: resolution, verification, policy, dependencies, hostile layers,
//! activation, concurrency and crashes, against the real registry and OCI layouts.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Site, json, run, workspace};

#[test]
fn installs_the_newest_matching_release_and_activates_it() {
    let site = Site::registry("install-resolve");
    for v in ["1.2.0", "1.9.0", "1.10.0", "2.0.0-rc.1", "2.1.0"] {
        site.publish("tool", v, "");
    }
    let out = json(&site.ok(&["--json", "install", "tool@1"]));
    assert_eq!(out["packs"][0]["version"], "1.10.0", "semver order, not string order");
    assert_eq!(out["packs"][0]["action"], "installed");

    let state = site.state();
    let tool = &state["packs"]["tool"];
    assert_eq!(tool["version"], "1.10.0");
    assert_eq!(tool["requested"], "tool@1");
    assert!(tool["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(tool["signer"].as_str().unwrap().starts_with("sha256:"));
    assert!(tool["signed_as"].as_str().unwrap().ends_with("/install-resolve/tool"));
    assert_eq!(std::fs::read_link(site.toolpacks.join("tool/current")).unwrap().to_str().unwrap(), "1.10.0");

    // env.sh puts the tool on PATH in bash and in dash, with ${PACK_ROOT} expanded.
    for shell in ["bash", "dash"] {
        let out = run(shell, &["-c", &format!(". {}/env.sh && tool && echo \"$TOOL_HOME\"", site.toolpacks.display())]);
        assert_eq!(out, format!("tool 1.10.0\n{}/tool/current\n", site.toolpacks.display()), "{shell}");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(site.toolpacks.join("env.sh")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644);
    let fish = site.ok(&["env", "--shell", "fish"]);
    assert!(fish.contains("set -gx TOOL_HOME"), "{fish}");

    // Exact, minor-prefix, digest, pre-release, latest.
    site.ok(&["install", "tool@1.9"]);
    assert_eq!(site.state()["packs"]["tool"]["version"], "1.9.0");
    site.ok(&["install", "tool@2.0.0-rc.1"]);
    assert_eq!(site.state()["packs"]["tool"]["version"], "2.0.0-rc.1");
    site.ok(&["install", "tool"]);
    assert_eq!(site.state()["packs"]["tool"]["version"], "2.1.0");
    let digest = site.state()["packs"]["tool"]["digest"].as_str().unwrap().to_owned();
    let out = json(&site.ok(&["--json", "install", &format!("tool@{digest}")]));
    assert_eq!(out["packs"][0]["action"], "already-installed");
    assert_eq!(site.pack_dirs(), vec!["tool"]);
    let versions: Vec<String> = std::fs::read_dir(site.toolpacks.join("tool")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(versions.contains(&"2.1.0".to_owned()) && !versions.contains(&"1.9.0".to_owned()), "old versions are removed: {versions:?}");

    let err = site.fails(&["install", "tool@3"]);
    assert!(err.contains("no version of `tool` matches `tool@3`") && err.contains("2.1.0"), "{err}");
    let err = site.fails(&["install", "nosuchpack"]);
    assert!(err.contains("no pack `nosuchpack`"), "{err}");

    // status, list, info.
    let status = json(&site.ok(&["--json", "status"]));
    assert_eq!(status["packs"]["tool"]["version"], "2.1.0");
    let listed = json(&site.ok(&["--json", "list", "packs"]));
    assert_eq!(listed["packs"]["tool"][0], "2.1.0");
    let info = json(&site.ok(&["--json", "info", "tool@1"]));
    assert_eq!(info["manifest"]["version"], "1.10.0");
    assert!(info["signature"].as_str().unwrap().starts_with("verified"), "{info}");
}

#[test]
fn update_moves_to_the_newest_matching_release_and_reuses_the_cache() {
    let site = Site::layout();
    site.publish("upd", "1.0.0", "");
    site.ok(&["install", "upd@1"]);
    site.publish("upd", "1.1.0", "");
    site.publish("upd", "2.0.0", "");
    let out = json(&site.ok(&["--json", "update"]));
    assert_eq!(out["packs"][0]["version"], "1.1.0", "update keeps within what was asked (@1)");
    assert_eq!(out["packs"][0]["action"], "upgraded");
    let out = json(&site.ok(&["--json", "update", "upd"]));
    assert_eq!(out["packs"][0]["action"], "already-installed");

    // Reinstall after uninstall comes from the cache.
    site.ok(&["uninstall", "upd"]);
    assert!(site.pack_dirs().is_empty());
    let out = json(&site.ok(&["--json", "install", "upd@1.1"]));
    assert_eq!(out["packs"][0]["cached"], true);
    let bin = site.toolpacks.join("upd/current/bin/upd");
    assert_eq!(std::fs::read_to_string(&bin).unwrap(), "#!/bin/sh\necho upd 1.1.0\n");

    // A damaged install is repaired by --force, from verified bytes.
    std::fs::write(&bin, "damaged").unwrap();
    let out = json(&site.ok(&["--json", "install", "upd@1.1"]));
    assert_eq!(out["packs"][0]["action"], "already-installed");
    let out = json(&site.ok(&["--json", "install", "--force", "upd@1.1"]));
    assert_eq!(out["packs"][0]["action"], "upgraded");
    assert_eq!(std::fs::read_to_string(&bin).unwrap(), "#!/bin/sh\necho upd 1.1.0\n");
    site.ok(&["uninstall", "upd"]);
    site.ok(&["install", "upd@1.1"]);
    assert_eq!(std::fs::read_to_string(&bin).unwrap(), "#!/bin/sh\necho upd 1.1.0\n", "the tree cache was refreshed");

    // `cache gc` drops the layers of 1.0.0 (replaced) and keeps what is installed.
    let blobs = |site: &Site| std::fs::read_dir(site.toolpacks.join(".aibox/cache/blobs/sha256")).map_or(0, Iterator::count);
    assert_eq!(blobs(&site), 2, "1.0.0 and 1.1.0 are cached");
    let out = json(&site.ok(&["--json", "cache", "gc"]));
    assert_eq!((out["blobs"].as_u64(), out["trees"].as_u64()), (Some(1), Some(1)), "{out}");
    assert!(out["bytes"].as_u64().unwrap() > 0);
    assert_eq!(blobs(&site), 1);
    site.ok(&["uninstall", "upd"]);
    assert_eq!(json(&site.ok(&["--json", "install", "upd@1.1"]))["packs"][0]["cached"], true, "what was kept still serves installs");
    // `cache clean` empties it; installs fetch again.
    let out = json(&site.ok(&["--json", "cache", "clean"]));
    assert_eq!(out["blobs"], 1);
    assert_eq!(blobs(&site), 0);
    site.ok(&["uninstall", "upd"]);
    assert_eq!(json(&site.ok(&["--json", "install", "upd@1.1"]))["packs"][0]["cached"], false);
    assert_eq!(std::fs::read_to_string(&bin).unwrap(), "#!/bin/sh\necho upd 1.1.0\n");
}

#[test]
fn unsigned_and_untrusted_packs_are_refused_and_nothing_is_written() {
    let site = Site::layout();
    let dir = site.env.pack("unsig", "1.0.0");
    site.env.ok(&["-q", "pack", "publish", dir.to_str().unwrap(), "--to", &site.store]);
    let err = site.fails(&["install", "unsig"]);
    assert!(err.contains("is not signed"), "{err}");
    assert!(site.pack_dirs().is_empty());

    // Signed by a key the policy does not trust.
    let (stranger, _) = site.env.keys("stranger");
    site.env.ok(&["-q", "pack", "sign", &format!("{}:unsig:1.0.0", site.store), "--key", &stranger]);
    let err = site.fails(&["install", "unsig"]);
    assert!(err.contains("no valid signature") && err.contains("does not verify with"), "{err}");

    // No trust entry for the store at all.
    std::fs::write(&site.policy, format!("trust:\n  - store: docker://elsewhere.example/toolpacks\n    keys: [{}]\n", site.public)).unwrap();
    let err = site.fails(&["install", "unsig"]);
    assert!(err.contains("no key in policy") && err.contains(&site.store) && err.contains("trust"), "{err}");
    // A key that does not load fails the whole policy (closed), naming it.
    std::fs::write(&site.policy, "trust:\n  - store: docker://elsewhere.example/toolpacks\n    keys: [/nonexistent.pub]\n").unwrap();
    let err = site.fails(&["install", "unsig"]);
    assert!(err.contains("/nonexistent.pub"), "{err}");
    std::fs::remove_file(&site.policy).unwrap();
    let err = site.fails(&["install", "unsig"]);
    assert!(err.contains("does not exist"), "{err}");
    assert!(site.pack_dirs().is_empty());
    assert!(!site.toolpacks.join(".aibox/state.json").exists());
}

#[test]
fn tampered_layer_in_the_registry_is_refused_and_not_cached() {
    let site = Site::registry("install-tamper");
    site.publish("victim", "1.0.0", "");
    let inspected = json(&site.env.ok(&["--json", "pack", "inspect", &format!("{}/victim:1.0.0", site.store)]));
    let layer = inspected["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    let data = common::REGISTRY.storage().join("blobs/sha256").join(&layer[..2]).join(&layer).join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    let original = bytes.clone();
    let i = bytes.len() - 20;
    bytes[i] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    let err = site.fails(&["install", "victim"]);
    std::fs::write(&data, &original).unwrap();
    assert!(err.contains("tampered or damaged") || err.contains("cannot read the layer") || err.contains("layer"), "{err}");
    assert!(site.pack_dirs().is_empty(), "{:?}", site.pack_dirs());
    assert_eq!(std::fs::read_dir(site.toolpacks.join(".aibox/cache/blobs/sha256")).map_or(0, std::iter::Iterator::count), 0, "a bad blob reached the cache");
    assert_eq!(site.staging_left(), 0);
    site.ok(&["install", "victim"]);
}

#[test]
fn tampered_manifest_and_borrowed_signature_are_refused() {
    let site = Site::layout();
    site.publish("alpha", "1.0.0", "");
    site.publish("beta", "1.0.0", "");
    let layout = std::path::PathBuf::from(site.store.trim_start_matches("oci:"));
    let index_path = layout.join("index.json");
    let index = json(&std::fs::read_to_string(&index_path).unwrap());
    let entry = |name: &str| index["manifests"].as_array().unwrap().iter().find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name).unwrap().clone();

    // A manifest altered in place (its file no longer matches its digest).
    let alpha = entry("alpha:1.0.0");
    let blob = layout.join("blobs/sha256").join(alpha["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    let original = std::fs::read_to_string(&blob).unwrap();
    std::fs::write(&blob, original.replace("test pack alpha", "test pack ALPHA")).unwrap();
    let err = site.fails(&["install", "alpha"]);
    assert!(err.contains("tampered or damaged"), "{err}");
    std::fs::write(&blob, original).unwrap();

    // A tag moved back to an older, validly signed release is a rollback, refused.
    site.publish("alpha", "1.1.0", "");
    let index_now = json(&std::fs::read_to_string(&index_path).unwrap());
    let mut rolled = index_now.clone();
    for m in rolled["manifests"].as_array_mut().unwrap() {
        if m["annotations"]["org.opencontainers.image.ref.name"] == "alpha:1.1.0" {
            m["digest"] = alpha["digest"].clone();
            m["size"] = alpha["size"].clone();
        }
    }
    std::fs::write(&index_path, serde_json::to_vec(&rolled).unwrap()).unwrap();
    let err = site.fails(&["install", "alpha@1.1"]);
    assert!(err.contains("rolled-back tag"), "{err}");
    std::fs::write(&index_path, serde_json::to_vec(&index_now).unwrap()).unwrap();
    let index = index_now;

    // alpha's valid signature presented for beta's manifest.
    let beta = entry("beta:1.0.0");
    let mut alpha_sig = index["manifests"].as_array().unwrap().iter().find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().starts_with("alpha:sha256-")).unwrap().clone();
    alpha_sig["annotations"]["org.opencontainers.image.ref.name"] = format!("beta:sha256-{}.sig", beta["digest"].as_str().unwrap().trim_start_matches("sha256:")).into();
    let mut index2 = index.clone();
    let list = index2["manifests"].as_array_mut().unwrap();
    list.retain(|m| !m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().starts_with("beta:sha256-"));
    list.push(alpha_sig);
    std::fs::write(&index_path, serde_json::to_vec(&index2).unwrap()).unwrap();
    let err = site.fails(&["install", "beta"]);
    assert!(err.contains("signature is for manifest"), "{err}");
    assert!(site.pack_dirs().is_empty());
}

#[test]
fn hostile_layers_are_refused_naming_the_entry() {
    let site = Site::layout();
    let layout = site.store.trim_start_matches("oci:").to_owned();
    let script = workspace().join("tests/peers/malicious_pack.py");
    let cases: &[(&str, &str)] = &[
        ("absolute", "absolute path"),
        ("dotdot", "`..`"),
        ("symlink-escape", "points outside the pack"),
        ("symlink-chain", "points outside the pack"),
        ("write-through-symlink", "writes through a symlink"),
        ("hardlink-escape", "hardlink to `etc/passwd`"),
        ("device", "device nodes"),
        ("fifo", "fifos"),
        ("entry-bomb", "max_entries"),
        ("size-bomb", "max_bytes"),
        ("outside-prefix", "outside the pack's directory"),
    ];
    for (case, _) in cases.iter().chain(&[("setuid", "")]) {
        run("python3", &[script.to_str().unwrap(), &layout, case]);
        site.env.ok(&["-q", "pack", "sign", &format!("{}:evil-{case}:1.0.0", site.store), "--key", &site.key]);
    }
    for (case, expected) in cases {
        let out = site.aibox().args(["install", &format!("evil-{case}"), "--max-pack-entries", "1000", "--max-pack-bytes", "16777216"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{case} was installed: {err}");
        assert!(err.contains(expected), "{case}: {err}");
        assert!(err.contains(&format!("evil-{case}")), "{case}: the pack is not named: {err}");
        assert!(site.pack_dirs().is_empty(), "{case} left {:?}", site.pack_dirs());
        assert_eq!(site.staging_left(), 0, "{case} left staging");
    }
    assert!(!std::path::Path::new("/tmp/aibox-evil-absolute").exists());
    assert!(!std::path::Path::new("/tmp/aibox-evil-dotdot").exists());

    // setuid and world-writable modes are neutralised: installed, without those bits.
    site.ok(&["install", "evil-setuid"]);
    let mode = |p: &str| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(site.toolpacks.join("evil-setuid/current").join(p)).unwrap().permissions()) & 0o7777;
    assert_eq!(mode("bin/suid"), 0o755);
    assert_eq!(mode("open"), 0o755);
    assert_eq!(mode("open/anyone-writes"), 0o644);
}

#[test]
fn dependencies_install_first_and_conflicts_and_cycles_fail_early() {
    let site = Site::layout();
    site.publish("lib", "1.4.0", "");
    site.publish("lib", "2.0.0", "");
    site.publish("app", "1.0.0", "depends: [lib@1]\n");
    let out = json(&site.ok(&["--json", "install", "app"]));
    let names: Vec<&str> = out["packs"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["lib", "app"], "dependencies first");
    let state = site.state();
    assert_eq!(state["packs"]["lib"]["version"], "1.4.0");
    assert!(state["packs"]["lib"]["requested"].is_null());
    assert_eq!(state["packs"]["app"]["depends"][0], "lib@1");

    // An installed dependency that satisfies is reused.
    site.publish("app2", "1.0.0", "depends: [lib@1]\n");
    let out = json(&site.ok(&["--json", "install", "app2"]));
    assert_eq!(out["packs"].as_array().unwrap().len(), 1);

    // Uninstall refuses while dependents remain.
    let err = site.fails(&["uninstall", "lib"]);
    assert!(err.contains("app") && err.contains("depends on it"), "{err}");
    site.ok(&["uninstall", "app", "app2", "lib"]);
    assert!(site.pack_dirs().is_empty());

    // Conflict: lib@2 asked for, app needs lib@1.
    let err = site.fails(&["install", "lib@2", "app"]);
    assert!(err.contains("conflict") && err.contains("lib@1"), "{err}");
    assert!(site.pack_dirs().is_empty());

    // Cycle.
    site.publish("ping", "1.0.0", "depends: [pong]\n");
    site.publish("pong", "1.0.0", "depends: [ping]\n");
    let err = site.fails(&["install", "ping"]);
    assert!(err.contains("dependency cycle: ping -> pong -> ping"), "{err}");
    assert!(site.pack_dirs().is_empty());

    // --force uninstalls a dependency anyway.
    site.ok(&["install", "app"]);
    site.ok(&["uninstall", "lib", "--force"]);
    assert_eq!(site.pack_dirs(), vec!["app"]);
}

#[test]
fn policy_refusals_name_the_entry_and_file() {
    let site = Site::layout();
    site.publish("netpack", "1.0.0", "network:\n  endpoints: [\"repo.maven.apache.org:443\"]\n");
    let err = site.fails(&["install", "netpack"]);
    assert!(err.contains("repo.maven.apache.org:443") && err.contains("network.allow") && err.contains("policy.yaml"), "{err}");
    let policy = std::fs::read_to_string(&site.policy).unwrap();
    std::fs::write(&site.policy, format!("{policy}network:\n  allow: [\"*.apache.org:443\"]\n")).unwrap();
    site.ok(&["install", "netpack"]);

    site.publish("scripted", "1.0.0", "install:\n  method: script\n  script: bin/scripted\n");
    let err = site.fails(&["install", "scripted"]);
    assert!(err.contains("install method `script`") && err.contains("install_methods"), "{err}");

    std::fs::write(&site.policy, "trust: [oops\n").unwrap();
    let err = site.fails(&["install", "netpack"]);
    assert!(err.contains("policy") && err.contains("line"), "{err}");

    let out = site.aibox().args(["--offline", "--store", "docker://127.0.0.1:1/x", "install", "netpack"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--offline"));
}

#[test]
fn concurrent_installs_share_one_copy() {
    let site = Site::layout();
    site.publish("shared", "1.0.0", "");
    site.publish("other", "1.0.0", "depends: [shared@1]\n");
    let children: Vec<_> = (0..4)
        .map(|i| site.aibox().args(["-q", "install", if i % 2 == 0 { "shared" } else { "other" }]).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let state = site.state();
    assert_eq!(state["packs"].as_object().unwrap().len(), 2);
    assert_eq!(site.pack_dirs(), vec!["other", "shared"]);
    assert_eq!(std::fs::read_dir(site.toolpacks.join("shared")).unwrap().count(), 2, "one version dir and current");
    assert_eq!(site.staging_left(), 0);
}

#[test]
fn killed_install_leaves_a_usable_state_and_a_rerun_completes() {
    let site = Site::layout();
    site.publish("small", "1.0.0", "");
    site.ok(&["install", "small"]);
    // A pack big enough that extraction takes a while.
    let dir = site.env.path().join("src/big/1.0.0");
    std::fs::create_dir_all(dir.join("root/data")).unwrap();
    std::fs::write(dir.join("pack.yaml"), "name: big\nversion: 1.0.0\ndescription: big\nmaintainer: t\n").unwrap();
    run("sh", &["-c", &format!("for i in $(seq 1 400); do head -c 65536 /dev/urandom > {}/root/data/f$i; done", dir.display())]);
    site.env.ok(&["-q", "pack", "publish", dir.to_str().unwrap(), "--to", &site.store, "--key", &site.key]);
    let before = std::fs::read(site.toolpacks.join("env.sh")).unwrap();

    for delay_ms in [5, 40, 120, 250] {
        let mut child = site.aibox().args(["-q", "install", "big"]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = Command::new("kill").args(["-9", &child.id().to_string()]).status();
        let _ = child.wait();
        // status works, state parses, and names only complete trees.
        let status = json(&site.ok(&["--json", "status"]));
        for (name, pack) in status["packs"].as_object().unwrap() {
            let tree = site.toolpacks.join(name).join(pack["version"].as_str().unwrap());
            assert!(tree.is_dir(), "state names {name} but {} is missing", tree.display());
        }
        let env_sh = std::fs::read(site.toolpacks.join("env.sh")).unwrap();
        assert!(env_sh == before || String::from_utf8_lossy(&env_sh).contains("big/current"), "env.sh is half-written");
        if status["packs"].get("big").is_some() {
            site.ok(&["uninstall", "big"]);
        }
    }
    let out = json(&site.ok(&["--json", "install", "big"]));
    assert_eq!(out["packs"][0]["name"], "big");
    assert_eq!(site.staging_left(), 0);
    assert_eq!(std::fs::read_dir(site.toolpacks.join("big/1.0.0/data")).unwrap().count(), 400);
}

#[test]
fn installs_from_an_oci_archive_read_in_place() {
    // A layout, tarred: the shape of an air-gap bundle.
    let site = Site::layout();
    site.publish("archived", "1.0.0", "");
    let layout = site.store.trim_start_matches("oci:").to_owned();
    let tar = site.env.path().join("bundle.tar");
    run("tar", &["-cf", tar.to_str().unwrap(), "-C", &layout, "."]);
    let archive = format!("oci-archive:{}", tar.display());
    site.env.ok(&["pack", "verify", &format!("{archive}:archived:1.0.0"), "--key", &site.public]);
    let listed = json(&site.env.ok(&["--json", "--store", &archive, "list", "packs"]));
    assert_eq!(listed["packs"]["archived"][0], "1.0.0");

    std::fs::write(&site.policy, format!("trust:\n  - store: {archive}\n    keys: [{}]\n", site.public)).unwrap();
    let out = json(&site.ok(&["--json", "--offline", "--store", &archive, "install", "archived@1"]));
    assert_eq!(out["packs"][0]["version"], "1.0.0");
    assert_eq!(run("sh", &["-c", &format!(". {}/env.sh && archived", site.toolpacks.display())]), "archived 1.0.0\n");

    // Writing to an archive is refused (bundle creation comes with the air-gap work).
    let other = site.env.pack("newpack", "1.0.0");
    let err = site.env.fails(&["pack", "publish", other.to_str().unwrap(), "--to", &archive]);
    assert!(err.contains("read-only"), "{err}");
}

#[test]
fn settings_come_from_flags_then_env_then_config_files() {
    let site = Site::layout();
    site.publish("cfg", "1.0.0", "");
    // No AIBOX_* variables: the user's config file supplies store, policy and toolpacks dir.
    let config_dir = site.env.path().join("home/.config/aibox");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.yaml"),
        format!("store: {}\npolicy: {}\ntoolpacks_dir: {}\ninsecure_registries: [registry.test:5000]\n", site.store, site.policy.display(), site.toolpacks.display()),
    )
    .unwrap();
    site.env.ok(&["install", "cfg"]);
    assert_eq!(site.state()["packs"]["cfg"]["version"], "1.0.0");

    // A flag beats the environment, which beats the file.
    let elsewhere = site.env.path().join("elsewhere");
    site.env.aibox().env("AIBOX_TOOLPACKS_DIR", site.env.path().join("ignored")).args(["--toolpacks-dir", elsewhere.to_str().unwrap(), "install", "cfg"]).status().unwrap();
    assert!(elsewhere.join("cfg/current/bin/cfg").exists());
    assert!(!site.env.path().join("ignored").exists());
    let from_env = site.env.path().join("from-env");
    let out = site.env.aibox().env("AIBOX_TOOLPACKS_DIR", &from_env).args(["install", "cfg"]).output().unwrap();
    common::assert_success(&out, &["install with AIBOX_TOOLPACKS_DIR"]);
    assert!(from_env.join("cfg/current/bin/cfg").exists());

    // A broken file is named, with its position.
    std::fs::write(config_dir.join("config.yaml"), "store: [unclosed\n").unwrap();
    let err = site.env.fails(&["status"]);
    assert!(err.contains("config.yaml") && err.contains("line"), "{err}");
    std::fs::write(config_dir.join("config.yaml"), "stroe: x\n").unwrap();
    let err = site.env.fails(&["status"]);
    assert!(err.contains("stroe"), "{err}");
}
