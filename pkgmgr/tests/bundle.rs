//! Air-gap bundles and mirroring: a bundle made from a real registry installs with no network
//! at all (`unshare -n`), tampering with any part is refused, and bundles load into a TLS +
//! basic-auth registry that installs then verify from.

mod common;

use std::sync::LazyLock;

use common::{Registry, Site, json, run, workspace};

static SECURE: LazyLock<Registry> = LazyLock::new(|| Registry::start_tls_auth("robot", "s3cret"));

fn tamper(bundle: &std::path::Path, out: &std::path::Path, args: &[&str]) {
    let script = workspace().join("tests/peers/tamper_bundle.py");
    let mut all = vec![script.to_str().unwrap(), bundle.to_str().unwrap(), out.to_str().unwrap()];
    all.extend_from_slice(args);
    run("python3", &all);
}

/// A site trusting `oci-archive:BUNDLE` with the publisher's key.
fn trust_bundle(site: &Site, bundle: &std::path::Path) {
    std::fs::write(&site.policy, format!("trust:\n  - store: oci-archive:{}\n    keys: [{}]\n", bundle.display(), site.public)).unwrap();
}

#[test]
fn bundle_from_a_registry_installs_with_no_network() {
    let site = Site::registry("bundle-src");
    site.publish("base", "1.0.0", "");
    site.publish("base", "2.0.0", "");
    site.publish("tool", "1.3.0", "depends: [base@1]\n");
    let bundle = site.env.path().join("aibox-bundle.tar");
    let out = json(&site.env.ok(&["--json", "bundle", "create", "tool@1", "--from", &site.store, "-o", bundle.to_str().unwrap(), "--include-keys", &site.public]));
    let names: Vec<&str> = out["packs"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["base", "tool"], "dependencies are bundled, first");
    assert!(out["packs"].as_array().unwrap().iter().all(|p| p["signatures"] == 1), "signatures travel with the packs");

    let inspected = json(&site.env.ok(&["--json", "bundle", "inspect", bundle.to_str().unwrap()]));
    assert_eq!(inspected["packs"].as_array().unwrap().len(), 2);
    // --include-keys ships the public key and a policy fragment naming its fingerprint.
    assert_eq!(inspected["keys"][0]["file"], "aibox/keys/publisher.pub");
    let fingerprint = inspected["keys"][0]["fingerprint"].as_str().unwrap().to_owned();
    assert_eq!(out["keys"][0]["fingerprint"], fingerprint.as_str());
    let fragment = run("tar", &["-xOf", bundle.to_str().unwrap(), "aibox/policy.yaml"]);
    assert!(fragment.contains(&fingerprint) && fragment.contains("/etc/aibox/keys/publisher.pub"), "{fragment}");
    let verified = json(&site.env.ok(&["--json", "bundle", "verify", bundle.to_str().unwrap(), "--key", &site.public]));
    assert_eq!(verified["verified"], true);

    // Mirroring within one registry mounts blobs instead of sending them.
    let mirrored = json(&site.env.ok(&["--json", "copy", &site.store, &common::REGISTRY.store("bundle-mirror"), "tool@1"]));
    assert_eq!(mirrored["blobs_sent"], 0, "{mirrored}");
    assert_eq!(mirrored["blobs_mounted"], 8, "{mirrored}");
    site.env.ok(&["pack", "verify", &format!("{}/tool:1.3.0", common::REGISTRY.store("bundle-mirror")), "--key", &site.public]);

    // skopeo reads the bundle as an oci-archive.
    let raw = run("skopeo", &["inspect", "--raw", &format!("oci-archive:{}:tool:1.3.0", bundle.display())]);
    assert_eq!(json(&raw)["artifactType"], "application/vnd.aibox.toolpack.v1");

    // Inside a network namespace with no interfaces: @1 resolves from the bundle's index.
    trust_bundle(&site, &bundle);
    let mut cmd = std::process::Command::new("unshare");
    cmd.arg("-n").arg(env!("CARGO_BIN_EXE_aibox"));
    for (k, v) in site.aibox().get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.args(["--offline", "--store", &format!("oci-archive:{}", bundle.display()), "--json", "install", "tool@1"]).output().unwrap();
    common::assert_success(&out, &["unshare -n aibox install"]);
    assert_eq!(run("sh", &["-c", &format!(". {}/env.sh && tool && base", site.toolpacks.display())]), "tool 1.3.0\nbase 1.0.0\n");
}

#[test]
fn tampered_bundles_are_refused_naming_the_pack() {
    let site = Site::layout();
    site.publish("alpha", "1.0.0", "");
    site.publish("beta", "1.0.0", "");
    let bundle = site.env.path().join("b.tar");
    site.env.ok(&["bundle", "create", "alpha,beta", "--from", &site.store, "-o", bundle.to_str().unwrap()]);
    let inspected = json(&site.env.ok(&["--json", "pack", "inspect", &format!("{}:alpha:1.0.0", site.store)]));
    let layer = inspected["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();

    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("flipped", vec!["flip-blob", &layer], "tampered or damaged"),
        ("unsigned", vec!["remove-signatures"], "is not signed"),
        // alpha:1.0.0 pointed at beta's manifest: no signature of alpha covers that digest.
        ("swapped", vec!["swap", "alpha:1.0.0", "beta:1.0.0"], "is not signed"),
    ];
    for (label, args, expected) in cases {
        let bad = site.env.path().join(format!("{label}.tar"));
        tamper(&bundle, &bad, &args);
        let err = site.env.fails(&["bundle", "verify", bad.to_str().unwrap(), "--key", &site.public]);
        assert!(err.contains(expected) && err.contains("alpha"), "{label}: {err}");
        trust_bundle(&site, &bad);
        let out = site.aibox().args(["--store", &format!("oci-archive:{}", bad.display()), "install", "alpha"]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{label} installed");
        assert!(site.pack_dirs().is_empty(), "{label} left {:?}", site.pack_dirs());
    }

    // Mirroring a tampered bundle stops at the bad blob, and a bundle made from it is never
    // written.
    let flipped = site.env.path().join("flipped.tar");
    let mirror = site.env.path().join("mirror");
    let err = site.env.fails(&["bundle", "push", flipped.to_str().unwrap(), "--to", &format!("oci:{}", mirror.display()), "--key", &site.public]);
    assert!(err.contains("tampered or damaged") && err.contains("alpha"), "{err}");
    assert!(!mirror.exists(), "a bundle that does not verify was pushed");
    let err = site.env.fails(&["bundle", "push", flipped.to_str().unwrap(), "--to", &format!("oci:{}", mirror.display())]);
    assert!(err.contains("tampered or damaged"), "{err}");
    assert!(!mirror.join("blobs/sha256").join(&layer).exists());
    let copy = site.env.path().join("copy.tar");
    let err = site.env.fails(&["copy", &format!("oci-archive:{}", flipped.display()), &format!("oci-archive:{}", copy.display()), "alpha"]);
    assert!(err.contains("tampered or damaged"), "{err}");
    assert!(!copy.exists());
}

#[test]
fn bundle_push_into_a_secure_registry_then_install_verifies() {
    let site = Site::layout();
    site.publish("mirrored", "1.0.0", "");
    site.publish("mirrored", "1.1.0", "");
    let bundle = site.env.path().join("b.tar");
    site.env.ok(&["bundle", "create", "mirrored@1.0,mirrored@1.1", "--from", &site.store, "-o", bundle.to_str().unwrap()]);

    let auth = run("sh", &["-c", "printf '%s' 'robot:s3cret' | base64 -w0"]);
    std::fs::write(site.env.path().join("home/.docker/config.json"), format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, SECURE.addr)).unwrap();
    let ca = SECURE.ca_cert.as_ref().unwrap();
    let dest = SECURE.store("site");
    let out = site.aibox().env("SSL_CERT_FILE", ca).args(["--json", "bundle", "push", bundle.to_str().unwrap(), "--to", &dest, "--key", &site.public]).output().unwrap();
    common::assert_success(&out, &["bundle push"]);
    let first = json(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(first["packs"].as_array().unwrap().len(), 2);
    assert!(first["blobs_sent"].as_u64().unwrap() >= 4);

    // Pushing again sends nothing new: a resumed push only sends what is missing.
    let out = site.aibox().env("SSL_CERT_FILE", ca).args(["--json", "bundle", "push", bundle.to_str().unwrap(), "--to", &dest]).output().unwrap();
    common::assert_success(&out, &["bundle push again"]);
    let again = json(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(again["blobs_sent"], 0);
    assert!(again["blobs_skipped"].as_u64().unwrap() >= 4);

    // The site installs from its registry, verifying the publisher's signature.
    std::fs::write(&site.policy, format!("trust:\n  - store: {dest}\n    keys: [{}]\n", site.public)).unwrap();
    let out = site.aibox().env("SSL_CERT_FILE", ca).args(["--json", "--store", &dest, "install", "mirrored@1"]).output().unwrap();
    common::assert_success(&out, &["install from the site registry"]);
    assert_eq!(site.state()["packs"]["mirrored"]["version"], "1.1.0");
    // The signature names where the pack was signed (the publisher's layout), not this registry.
    assert_eq!(site.state()["packs"]["mirrored"]["signed_as"], "mirrored");

    // Registry to registry with `aibox copy`, same code.
    let plain = common::REGISTRY.store("copied");
    let out = site.aibox().env("SSL_CERT_FILE", ca).args(["--json", "copy", &dest, &plain, "mirrored@1.0"]).output().unwrap();
    common::assert_success(&out, &["copy"]);
    site.env.ok(&["pack", "verify", &format!("{plain}/mirrored:1.0.0"), "--key", &site.public]);
}

#[test]
fn an_interrupted_push_resumes_without_resending_what_arrived() {
    let site = Site::layout();
    let names: Vec<String> = (0..10).map(|i| site.publish_random(&format!("chunk{i}"), 8 << 20)).collect();
    let bundle = site.env.path().join("big.tar");
    site.env.ok(&["-q", "bundle", "create", &names.join(","), "--from", &site.store, "-o", bundle.to_str().unwrap()]);
    let total_blobs = 10 * 4; // config, layer, signature payload, signature config, per pack

    // Kill pushes at growing delays until one is caught half-way, then resume it.
    for (attempt, delay_ms) in [60u64, 120, 200, 300, 450, 700, 1000].iter().enumerate() {
        let dest = common::REGISTRY.store(&format!("resume{attempt}"));
        let mut child = site.aibox().args(["-q", "bundle", "push", bundle.to_str().unwrap(), "--to", &dest]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(*delay_ms));
        let _ = std::process::Command::new("kill").args(["-9", &child.id().to_string()]).status();
        let _ = child.wait();
        let resumed = json(&site.ok(&["--json", "bundle", "push", bundle.to_str().unwrap(), "--to", &dest]));
        let (sent, skipped) = (resumed["blobs_sent"].as_u64().unwrap(), resumed["blobs_skipped"].as_u64().unwrap());
        assert_eq!(sent + skipped, total_blobs, "{resumed}");
        if sent > 0 && skipped > 0 {
            assert!(resumed["bytes_sent"].as_u64().unwrap() < 10 * 8_400_000, "{resumed}");
            for name in &names {
                site.env.ok(&["pack", "verify", &format!("{dest}/{name}:1.0.0"), "--key", &site.public]);
            }
            return;
        }
    }
    panic!("no push was interrupted half-way; adjust the delays");
}

#[test]
fn a_bundle_split_across_media_reads_as_one() {
    let site = Site::layout();
    let names: Vec<String> = (0..3).map(|i| site.publish_random(&format!("part{i}"), 1_500_000)).collect();
    let bundle = site.env.path().join("split.tar");
    let out = json(&site.env.ok(&["--json", "bundle", "create", &names.join(","), "--from", &site.store, "-o", bundle.to_str().unwrap(), "--max-size", "1M"]));
    let files: Vec<String> = out["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_owned()).collect();
    assert!(files.len() >= 4, "{files:?}");
    assert!(!bundle.exists());
    for f in &files {
        assert!(std::fs::metadata(f).unwrap().len() <= 1 << 20, "{f} is larger than --max-size");
    }

    // aibox reads the parts as one bundle: verify, install.
    site.env.ok(&["bundle", "verify", bundle.to_str().unwrap(), "--key", &site.public]);
    trust_bundle(&site, &bundle);
    site.ok(&["--offline", "--store", &format!("oci-archive:{}", bundle.display()), "install", "part0", "part2"]);
    assert_eq!(run("sh", &["-c", &format!(". {}/env.sh && part0 && part2", site.toolpacks.display())]), "part0\npart2\n");

    // `cat` rebuilds the single tar other tools read.
    let whole = site.env.path().join("whole.tar");
    run("sh", &["-c", &format!("cat {}.0* > {}", bundle.display(), whole.display())]);
    let raw = run("skopeo", &["inspect", "--raw", &format!("oci-archive:{}:part1:1.0.0", whole.display())]);
    assert_eq!(json(&raw)["artifactType"], "application/vnd.aibox.toolpack.v1");

    // A missing part is a clear error, not a silent partial bundle.
    std::fs::remove_file(&files[files.len() - 1]).unwrap();
    let err = site.env.fails(&["bundle", "verify", bundle.to_str().unwrap(), "--key", &site.public]);
    assert!(err.contains("split.tar"), "{err}");
}
