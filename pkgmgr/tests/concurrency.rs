//! Eight `aibox` processes installing overlapping packs (and their shared dependency) into one
//! toolpacks dir at once, from the real registry: every one succeeds, each pack is there once
//! (one version dir, one state entry, one cached layer), and the result verifies.

mod common;

use std::process::Stdio;

use common::{Site, json};

#[test]
fn eight_processes_install_overlapping_packs_into_one_dir() {
    let site = Site::registry("concurrency");
    site.publish("base", "1.0.0", "");
    for name in ["alpha", "beta", "gamma", "delta"] {
        site.publish(name, "1.0.0", "depends: [base@1]\n");
    }
    let sets: [&[&str]; 8] = [&["alpha", "beta"], &["beta", "gamma"], &["gamma", "delta"], &["delta", "alpha"], &["alpha"], &["base", "gamma"], &["beta", "delta"], &["alpha", "beta", "gamma", "delta"]];
    let children: Vec<_> = sets
        .iter()
        .map(|packs| {
            let mut c = site.aibox();
            c.arg("-q").arg("install").args(*packs).stdout(Stdio::piped()).stderr(Stdio::piped());
            (packs, c.spawn().unwrap())
        })
        .collect();
    for (packs, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "install {packs:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(site.pack_dirs(), ["alpha", "base", "beta", "delta", "gamma"]);
    for name in site.pack_dirs() {
        let versions: Vec<_> = std::fs::read_dir(site.toolpacks.join(&name)).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n != "current").collect();
        assert_eq!(versions, ["1.0.0"], "{name}: one copy");
    }
    let state = site.state();
    assert_eq!(state["packs"].as_object().unwrap().len(), 5, "{state}");
    let layers: Vec<_> = state["packs"].as_object().unwrap().values().map(|p| p["layer"].as_str().unwrap().trim_start_matches("sha256:").to_owned()).collect();
    let cached: Vec<_> = std::fs::read_dir(site.toolpacks.join(".aibox/cache/blobs/sha256")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    for layer in &layers {
        assert_eq!(cached.iter().filter(|c| *c == layer).count(), 1, "layer {layer} cached once: {cached:?}");
    }
    assert!(cached.iter().all(|c| layers.contains(c)), "only whole layers in the cache (no temporary downloads): {cached:?}");
    assert_eq!(site.staging_left(), 0);
    // Requested packs are requested (a pack first installed as a dependency and then asked for
    // by another process is not left as a dependency).
    assert_eq!(json(&site.ok(&["--json", "status"]))["packs"]["base"]["requested"], "base", "{state}");
    site.ok(&["-q", "verify-installed"]);
    let env_sh = std::fs::read_to_string(site.toolpacks.join("env.sh")).unwrap();
    for name in ["alpha", "beta", "gamma", "delta", "base"] {
        let on_path = env_sh.lines().filter(|l| l.contains("PATH=") && l.contains(&format!("/{name}/"))).count();
        assert_eq!(on_path, 1, "{name} once on PATH:\n{env_sh}");
    }
}
