//! Registry faults: a fault-injecting proxy (tests/harness fault_proxy) between aibox and the
//! real registry answers 500/502/503, 429 with Retry-After, resets mid-blob, truncates, lies
//! in Content-Length, stalls and drips. Installs, bundle pushes and copies retry, wait, resume
//! with Range and complete; when the faults outlast the retries they fail naming the registry,
//! the request and the last status, with nothing installed or cached.

mod common;

use std::path::Path;
use std::time::Duration;

use aibox_test_harness::{Fault, FaultProxy, Rule};
use common::{REGISTRY, Site, json, run};

/// A site whose store is `namespace` of the shared registry, reached through its own proxy.
fn site_behind_proxy(namespace: &str) -> (Site, FaultProxy) {
    let proxy = FaultProxy::start(&REGISTRY.addr);
    let site = Site::new(|_| proxy.store(namespace));
    (site, proxy)
}

/// The digest of the (only) layer of `name:1.0.0` in `store`, read with skopeo.
fn layer_digest(store: &str, name: &str) -> String {
    let raw = run("skopeo", &["inspect", "--raw", "--tls-verify=false", &format!("{store}/{name}:1.0.0")]);
    json(&raw)["layers"][0]["digest"].as_str().unwrap().to_owned()
}

/// Install `name` into a fresh toolpacks dir `dir` with `env` set; returns (exit code, stderr).
fn install(site: &Site, dir: &Path, name: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut c = site.aibox();
    c.env("AIBOX_TOOLPACKS_DIR", dir);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.args(["-q", "install", name]).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Nothing of a failed install is left: no pack dir, no state entry, no staging, no cached
/// layer or temporary download.
fn assert_nothing_left(dir: &Path, layer: &str) {
    let packs: Vec<_> = std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| !n.starts_with('.') && n != "env.sh").collect()).unwrap_or_default();
    assert!(packs.is_empty(), "installed anyway: {packs:?}");
    let env_sh = std::fs::read_to_string(dir.join("env.sh")).unwrap_or_default();
    assert!(!env_sh.contains("big"), "env.sh names the pack: {env_sh}");
    let state = std::fs::read_to_string(dir.join(".aibox/state.json")).unwrap_or_default();
    assert!(!state.contains("\"big\""), "state names the pack: {state}");
    assert_eq!(std::fs::read_dir(dir.join(".aibox/staging")).map_or(0, Iterator::count), 0, "staging left behind");
    let blobs = dir.join(".aibox/cache/blobs/sha256");
    let cached: Vec<_> = std::fs::read_dir(&blobs).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    assert!(cached.is_empty(), "cache holds {cached:?} (layer {layer})");
}

#[test]
fn installs_complete_through_every_fault() {
    let (site, proxy) = site_behind_proxy("faults-install");
    site.publish_random("big", 600_000);
    let layer = layer_digest(&proxy.store("faults-install"), "big");
    let blob_path = format!("/blobs/{layer}");
    // A short read timeout, so the stall is seen quickly.
    let env = [("AIBOX_REGISTRY_READ_TIMEOUT", "1")];
    let cases: Vec<(&str, Vec<Rule>)> = vec![
        ("500 twice, then 502", vec![Rule::new("GET", &blob_path, Fault::Status(500), 2), Rule::new("GET", &blob_path, Fault::Status(502), 1)]),
        ("503 on the manifest", vec![Rule::new("GET", "/manifests/1.0.0", Fault::Status(503), 2)]),
        ("429 Retry-After: 2", vec![Rule::new("GET", &blob_path, Fault::TooManyRequests { retry_after: 2 }, 1)]),
        ("reset mid-blob", vec![Rule::new("GET", &blob_path, Fault::ResetMidBody { bytes: 200_000 }, 2)]),
        ("truncated body", vec![Rule::new("GET", &blob_path, Fault::Truncate { bytes: 300_000 }, 1)]),
        ("Content-Length too long", vec![Rule::new("GET", &blob_path, Fault::LieContentLength { by: 5000 }, 1)]),
        ("Content-Length too short", vec![Rule::new("GET", &blob_path, Fault::LieContentLength { by: -5000 }, 1)]),
        ("stall past the read timeout", vec![Rule::new("GET", &blob_path, Fault::Stall { bytes: 100_000, for_: Duration::from_secs(4) }, 1)]),
        ("slow drip", vec![Rule::new("GET", &blob_path, Fault::Drip { chunk: 64 * 1024, every: Duration::from_millis(100) }, 1)]),
        ("reset mid-manifest", vec![Rule::new("GET", "/manifests/1.0.0", Fault::ResetMidBody { bytes: 100 }, 1)]),
    ];
    for (i, (what, rules)) in cases.into_iter().enumerate() {
        proxy.reset();
        for r in rules {
            proxy.inject(r);
        }
        let dir = site.env.path().join(format!("tp-{i}"));
        let (code, stderr) = install(&site, &dir, "big", &env);
        assert_eq!(code, Some(0), "{what}: install failed: {stderr}");
        let log = proxy.requests();
        let faulted: Vec<_> = log.iter().filter(|l| l.fault.is_some()).collect();
        assert!(!faulted.is_empty(), "{what}: no fault was applied: {log:#?}");
        let gets: Vec<_> = log.iter().filter(|l| l.method == "GET" && l.path.contains(&blob_path)).collect();
        match what {
            "500 twice, then 502" => assert_eq!(gets.len(), 4, "{what}: three failures, one success: {gets:#?}"),
            "429 Retry-After: 2" => {
                let gap = gets[1].at.duration_since(gets[0].at);
                assert!(gap >= Duration::from_millis(1950), "{what}: retried after {gap:?}, before Retry-After");
            }
            // Every byte arrived before the connection broke: nothing to resume.
            "Content-Length too long" => assert_eq!(gets.len(), 1, "{what}: {gets:#?}"),
            "reset mid-blob" | "truncated body" | "Content-Length too short" | "stall past the read timeout" => {
                let resumed = gets.iter().skip(1).find_map(|g| g.range.clone());
                let from: u64 = resumed.as_deref().and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()).unwrap_or_else(|| panic!("{what}: not resumed with Range: {gets:#?}"));
                assert!(from > 0, "{what}: resumed from 0");
                assert!(gets.iter().any(|g| g.range.is_some() && g.status == 206), "{what}: the registry answered the Range with 206: {gets:#?}");
            }
            "slow drip" => assert_eq!(gets.len(), 1, "{what}: a slow answer is not retried: {gets:#?}"),
            _ => {}
        }
        // What landed is the pack, whole.
        let mut c = site.aibox();
        c.env("AIBOX_TOOLPACKS_DIR", &dir);
        common::ok(c, &["-q", "verify-installed"]);
    }
    // Token and /v2/ probes are not repeated per request: one check per repository and access.
    proxy.reset();
    let dir = site.env.path().join("tp-count");
    assert_eq!(install(&site, &dir, "big", &[]).0, Some(0));
    let probes = proxy.requests().iter().filter(|l| l.path == "/v2/").count();
    assert!(probes <= 3, "{probes} /v2/ probes for one install: {:#?}", proxy.requests());
}

#[test]
fn faults_that_outlast_the_retries_fail_cleanly() {
    let (site, proxy) = site_behind_proxy("faults-fail");
    site.publish_random("big", 300_000);
    let layer = layer_digest(&proxy.store("faults-fail"), "big");
    let blob_path = format!("/blobs/{layer}");
    let env = [("AIBOX_REGISTRY_RETRIES", "3"), ("AIBOX_REGISTRY_READ_TIMEOUT", "1")];
    let registry = proxy.addr.clone();
    let cases: Vec<(&str, Fault, Vec<String>)> = vec![
        ("503 every time", Fault::Status(503), vec![format!("registry {registry}"), format!("GET /v2/faults-fail/big/blobs/{layer}"), "after 3 tries".into(), "503 Service Unavailable".into()]),
        ("429 asking for an hour", Fault::TooManyRequests { retry_after: 3600 }, vec![format!("registry {registry}"), "429 Too Many Requests".into(), "retry after 3600 s".into()]),
        ("reset before any byte, every time", Fault::ResetMidBody { bytes: 0 }, vec![format!("registry {registry}"), format!("/v2/faults-fail/big/blobs/{layer}")]),
        ("stall every time", Fault::Stall { bytes: 0, for_: Duration::from_secs(3) }, vec![format!("registry {registry}"), format!("/v2/faults-fail/big/blobs/{layer}")]),
    ];
    for (i, (what, fault, expected)) in cases.into_iter().enumerate() {
        proxy.reset();
        proxy.inject(Rule::new("GET", &blob_path, fault, 1000));
        let dir = site.env.path().join(format!("tp-{i}"));
        let (code, stderr) = install(&site, &dir, "big", &env);
        assert_eq!(code, Some(1), "{what}: should fail: {stderr}");
        for e in &expected {
            assert!(stderr.contains(e.as_str()), "{what}: message lacks `{e}`:\n{stderr}");
        }
        assert!(stderr.contains("help:") || stderr.contains("run the command again"), "{what}: no advice:\n{stderr}");
        assert_nothing_left(&dir, &layer);
        // Once the registry recovers, the same command completes.
        proxy.reset();
        let (code, stderr) = install(&site, &dir, "big", &env);
        assert_eq!(code, Some(0), "{what}: re-run failed: {stderr}");
    }
}

#[test]
fn bundle_push_and_copy_retry_uploads() {
    let (site, proxy) = site_behind_proxy("faults-src");
    site.publish("alpha", "1.0.0", "");
    site.publish_random("big", 300_000);
    let bundle = site.env.path().join("bundle.tar");
    site.env.ok(&["-q", "bundle", "create", "alpha", "big", "--from", &site.store, "-o", bundle.to_str().unwrap()]);

    // Upload sessions refused, a blob PUT failed and one whose answer was lost, a rate-limited
    // manifest PUT: the push completes and installs verify from it.
    proxy.reset();
    proxy.inject(Rule::new("POST", "/blobs/uploads/", Fault::Status(503), 2));
    proxy.inject(Rule::new("PUT", "/blobs/uploads/", Fault::Status(500), 1));
    proxy.inject(Rule { skip: 1, ..Rule::new("PUT", "/blobs/uploads/", Fault::ResetMidBody { bytes: 0 }, 1) });
    proxy.inject(Rule::new("PUT", "/manifests/", Fault::TooManyRequests { retry_after: 1 }, 1));
    let dest = proxy.store("faults-pushed");
    site.env.ok(&["-q", "bundle", "push", bundle.to_str().unwrap(), "--to", &dest]);
    assert!(proxy.requests().iter().filter(|l| l.fault.is_some()).count() >= 5, "{:#?}", proxy.requests());
    let mut c = site.aibox();
    c.env("AIBOX_STORE", &dest).env("AIBOX_TOOLPACKS_DIR", site.env.path().join("tp-pushed"));
    std::fs::write(&site.policy, format!("trust:\n  - store: {dest}\n    keys: [{}]\n", site.public)).unwrap();
    common::ok(c, &["-q", "install", "alpha", "big"]);

    // A registry that fails every blob upload: the push fails naming the request; re-run
    // without the fault, it completes.
    proxy.reset();
    proxy.inject(Rule::new("PUT", "/blobs/uploads/", Fault::Status(500), 1000));
    let dest2 = proxy.store("faults-pushed-2");
    let mut c = site.env.aibox();
    c.env("AIBOX_REGISTRY_RETRIES", "2");
    let err = common::fails(c, &["bundle", "push", bundle.to_str().unwrap(), "--to", &dest2]);
    assert!(err.contains(&format!("registry {}", proxy.addr)) && err.contains("PUT /v2/faults-pushed-2/") && err.contains("500 Internal Server Error"), "{err}");
    proxy.reset();
    site.env.ok(&["-q", "bundle", "push", bundle.to_str().unwrap(), "--to", &dest2]);

    // A copy between two proxies of the registry (two registries to aibox, so blobs are
    // streamed, not mounted): a download reset mid-blob resumes, and a failed streamed upload
    // is sent again from the source.
    proxy.reset();
    let target = FaultProxy::start(&REGISTRY.addr);
    let layer = layer_digest(&site.store, "big");
    proxy.inject(Rule::new("GET", &format!("/blobs/{layer}"), Fault::ResetMidBody { bytes: 1000 }, 1));
    target.inject(Rule::new("PUT", "/blobs/uploads/", Fault::Status(502), 2));
    let out = json(&site.env.ok(&["--json", "copy", &site.store, &target.store("faults-copied"), "big"]));
    assert!(out["blobs_sent"].as_u64().unwrap() >= 2, "{out}");
    assert!(proxy.requests().iter().any(|l| l.range.is_some()), "the reset download was resumed: {:#?}", proxy.requests());
    let puts = target.requests().iter().filter(|l| l.method == "PUT" && l.path.contains("/blobs/uploads/")).count();
    assert!(puts >= 4, "failed uploads were sent again: {puts}");
    site.env.ok(&["pack", "verify", &format!("{}/big:1.0.0", target.store("faults-copied")), "--key", &site.public]);
}
