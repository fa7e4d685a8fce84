//! Pack authoring end to end against the real distribution registry and OCI layouts, with the
//! artifacts read back by independent clients (skopeo, the ORAS Python SDK).

mod common;

use common::{Env, REGISTRY, json, run, workspace};

#[test]
fn publish_sign_verify_round_trip_on_registry() {
    let env = Env::new();
    let (key, public) = env.keys("cosign");
    let pack = env.pack("roundtrip", "1.2.3");
    let store = REGISTRY.store("toolpacks");
    let out = json(&env.ok(&["--json", "pack", "publish", pack.to_str().unwrap(), "--to", &store, "--key", &key]));
    let digest = out["published"]["digest"].as_str().unwrap().to_owned();
    assert!(digest.starts_with("sha256:"));
    assert_eq!(out["signature"]["added"], true);

    let reference = format!("{store}/roundtrip:1.2.3");
    let verified = json(&env.ok(&["--json", "pack", "verify", &reference, "--key", &public]));
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["digest"], digest.as_str());
    assert_eq!(verified["signatures"][0]["docker_reference"], format!("{}/toolpacks/roundtrip", REGISTRY.addr));

    // By digest too.
    env.ok(&["pack", "verify", &format!("{store}/roundtrip@{digest}"), "--key", &public]);

    // Inspect shows manifest, annotations, the pack manifest and the verified signature.
    let inspected = json(&env.ok(&["--json", "pack", "inspect", &reference, "--key", &public]));
    assert_eq!(inspected["artifact_type"], "application/vnd.aibox.toolpack.v1");
    assert_eq!(inspected["config"]["media_type"], "application/vnd.aibox.toolpack.config.v1+json");
    assert_eq!(inspected["layers"][0]["media_type"], "application/vnd.oci.image.layer.v1.tar+zstd");
    assert_eq!(inspected["annotations"]["org.opencontainers.image.title"], "roundtrip");
    assert_eq!(inspected["annotations"]["org.opencontainers.image.version"], "1.2.3");
    assert_eq!(inspected["pack"]["path"][0], "bin");
    assert!(inspected["signatures"][0]["verified_by"].as_str().unwrap().starts_with("sha256:"));

    // Re-publishing the same content changes nothing; signing again adds nothing.
    let again = json(&env.ok(&["--json", "pack", "publish", pack.to_str().unwrap(), "--to", &store, "--key", &key]));
    assert_eq!(again["published"]["unchanged"], true);
    assert_eq!(again["signature"]["added"], false);
}

#[test]
fn publish_sign_verify_round_trip_on_oci_layout() {
    let env = Env::new();
    let (key, public) = env.keys("cosign");
    let pack = env.pack("layoutpack", "0.1.0");
    let layout = env.path().join("layout");
    let store = format!("oci:{}", layout.display());
    env.ok(&["pack", "publish", pack.to_str().unwrap(), "--to", &store, "--key", &key]);
    env.ok(&["pack", "verify", &format!("{store}:layoutpack:0.1.0"), "--key", &public]);

    // Spec-conformant layout: oci-layout, index.json with ref names.
    let index = json(&std::fs::read_to_string(layout.join("index.json")).unwrap());
    let refs: Vec<&str> = index["manifests"].as_array().unwrap().iter().filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str()).collect();
    assert!(refs.contains(&"layoutpack:0.1.0"), "{refs:?}");
    assert!(refs.iter().any(|r| r.starts_with("layoutpack:sha256-") && r.ends_with(".sig")), "{refs:?}");
    assert_eq!(std::fs::read_to_string(layout.join("oci-layout")).unwrap(), r#"{"imageLayoutVersion":"1.0.0"}"#);

    // skopeo reads it and umoci unpacks the layer to the expected path.
    let raw = run("skopeo", &["inspect", "--raw", &format!("oci:{}:layoutpack:0.1.0", layout.display())]);
    assert_eq!(json(&raw)["artifactType"], "application/vnd.aibox.toolpack.v1");
}

#[test]
fn skopeo_and_oras_read_published_packs() {
    let env = Env::new();
    let (key, _) = env.keys("cosign");
    let pack = env.pack("peerread", "2.0.0");
    let store = REGISTRY.store("peers");
    env.ok(&["pack", "publish", pack.to_str().unwrap(), "--to", &store, "--key", &key]);

    let raw = run("skopeo", &["inspect", "--tls-verify=false", "--raw", &format!("docker://{}/peers/peerread:2.0.0", REGISTRY.addr)]);
    let manifest = json(&raw);
    assert_eq!(manifest["artifactType"], "application/vnd.aibox.toolpack.v1");
    let tags = json(&run("skopeo", &["list-tags", "--tls-verify=false", &format!("docker://{}/peers/peerread", REGISTRY.addr)]));
    assert!(tags["Tags"].as_array().unwrap().iter().any(|t| t.as_str().unwrap().ends_with(".sig")));

    // The ORAS Python SDK pulls the layer; its content is the pack tree under opt/toolpacks.
    let out_dir = env.path().join("oras-out");
    let script = workspace().join("tests/peers/oras_pull.py");
    let pulled = run("python3", &[script.to_str().unwrap(), &format!("{}/peers/peerread:2.0.0", REGISTRY.addr), out_dir.to_str().unwrap()]);
    assert!(pulled.contains("opt/toolpacks/peerread/2.0.0/bin/peerread"), "{pulled}");
}

#[test]
fn builds_are_reproducible() {
    let a = Env::new();
    let b = Env::new();
    let digests: Vec<String> = [&a, &b]
        .iter()
        .map(|env| {
            let pack = env.pack("repro", "1.0.0");
            std::fs::write(pack.join("root/README"), "same content\n").unwrap();
            let out = env.ok(&["--json", "pack", "build", pack.to_str().unwrap(), "-o", &format!("oci:{}", env.path().join("out").display()), "--source", "packs/repro/1"]);
            json(&out)["digest"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(digests[0], digests[1], "same source built in two places gives two digests");

    // A different mtime on disk changes nothing; SOURCE_DATE_EPOCH does.
    let pack = a.path().join("packs/repro/1.0.0");
    run("touch", &["-d", "2001-01-01", pack.join("root/README").to_str().unwrap()]);
    let again = json(&a.ok(&["--json", "pack", "build", pack.to_str().unwrap(), "-o", &format!("oci:{}", a.path().join("out2").display()), "--source", "packs/repro/1"]));
    assert_eq!(again["digest"].as_str().unwrap(), digests[0]);
    let out = a.aibox().env("SOURCE_DATE_EPOCH", "1700000000").args(["--json", "pack", "build", pack.to_str().unwrap(), "-o", &format!("oci:{}", a.path().join("out3").display()), "--source", "packs/repro/1"]).output().unwrap();
    assert_ne!(json(&String::from_utf8(out.stdout).unwrap())["digest"].as_str().unwrap(), digests[0]);
}

#[test]
fn layer_is_deterministic_tar_under_opt_toolpacks() {
    let env = Env::new();
    let pack = env.pack("layered", "3.1.4");
    let layout = env.path().join("out");
    env.ok(&["pack", "build", pack.to_str().unwrap(), "-o", &format!("oci:{}", layout.display())]);
    let manifest = json(&run("skopeo", &["inspect", "--raw", &format!("oci:{}:layered:3.1.4", layout.display())]));
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    let blob = layout.join("blobs/sha256").join(layer);
    let listing = run("sh", &["-c", &format!("zstd -dc {} | tar -tvf -", blob.display())]);
    assert!(listing.contains("opt/toolpacks/layered/3.1.4/bin/layered"), "{listing}");
    for line in listing.lines() {
        assert!(line.contains(" 0/0 ") || line.contains(" root/root "), "owner not 0/0: {line}");
        assert!(line.contains("1970-01-01"), "mtime not fixed: {line}");
    }
    assert!(listing.lines().any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("bin/layered")), "{listing}");
}

#[test]
fn unsigned_publish_warns_and_verify_refuses() {
    let env = Env::new();
    let (_, public) = env.keys("cosign");
    let pack = env.pack("unsigned", "1.0.0");
    let store = REGISTRY.store("toolpacks");
    let out = env.aibox().args(["pack", "publish", pack.to_str().unwrap(), "--to", &store]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning") && stderr.contains("unsigned"), "{stderr}");

    let err = env.fails(&["pack", "verify", &format!("{store}/unsigned:1.0.0"), "--key", &public]);
    assert!(err.contains("is not signed"), "{err}");
    assert!(err.contains("aibox pack sign"), "{err}");

    // Signing afterwards makes it verify.
    let (key2, public2) = env.keys("second");
    env.ok(&["pack", "sign", &format!("{store}/unsigned:1.0.0"), "--key", &key2]);
    env.ok(&["pack", "verify", &format!("{store}/unsigned:1.0.0"), "--key", &public2]);
}

#[test]
fn wrong_key_and_tampered_signature_are_refused() {
    let env = Env::new();
    let (key, public) = env.keys("signer");
    let (_, other_public) = env.keys("stranger");
    let pack = env.pack("tamper", "1.0.0");
    let layout = env.path().join("layout");
    let store = format!("oci:{}", layout.display());
    env.ok(&["pack", "publish", pack.to_str().unwrap(), "--to", &store, "--key", &key]);
    let reference = format!("{store}:tamper:1.0.0");

    let err = env.fails(&["pack", "verify", &reference, "--key", &other_public]);
    assert!(err.contains("no valid signature") && err.contains("does not verify with"), "{err}");

    // Flip the signature annotation in the signature manifest (re-tagged in index.json).
    let index_path = layout.join("index.json");
    let mut index = json(&std::fs::read_to_string(&index_path).unwrap());
    let sig_entry = index["manifests"].as_array_mut().unwrap().iter_mut().find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().ends_with(".sig")).unwrap();
    let sig_hex = sig_entry["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    let mut sig_manifest = json(&std::fs::read_to_string(layout.join("blobs/sha256").join(&sig_hex)).unwrap());
    let annotation = sig_manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"].as_str().unwrap().to_owned();
    let mut bytes = annotation.into_bytes();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    sig_manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] = String::from_utf8(bytes).unwrap().into();
    let new_body = serde_json::to_vec(&sig_manifest).unwrap();
    let new_hex = sha256_hex(&new_body);
    std::fs::write(layout.join("blobs/sha256").join(&new_hex), &new_body).unwrap();
    sig_entry["digest"] = format!("sha256:{new_hex}").into();
    sig_entry["size"] = new_body.len().into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();

    let err = env.fails(&["pack", "verify", &reference, "--key", &public]);
    assert!(err.contains("no valid signature"), "{err}");

    // A tampered payload blob (same name, other bytes) is caught by its digest.
    let payload_hex = sig_manifest["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    std::fs::write(layout.join("blobs/sha256").join(&payload_hex), b"{\"critical\":{}}").unwrap();
    let err = env.fails(&["pack", "verify", &reference, "--key", &public]);
    assert!(err.contains("tampered or damaged"), "{err}");
}

#[test]
fn signature_for_another_manifest_is_refused() {
    // A valid signature copied from one pack to another must not verify the second.
    let env = Env::new();
    let (key, public) = env.keys("signer");
    let layout = env.path().join("layout");
    let store = format!("oci:{}", layout.display());
    let a = env.pack("alpha", "1.0.0");
    let b = env.pack("beta", "1.0.0");
    env.ok(&["pack", "publish", a.to_str().unwrap(), "--to", &store, "--key", &key]);
    env.ok(&["pack", "publish", b.to_str().unwrap(), "--to", &store]);
    let index_path = layout.join("index.json");
    let mut index = json(&std::fs::read_to_string(&index_path).unwrap());
    let entries = index["manifests"].as_array_mut().unwrap();
    let digest_of = |entries: &Vec<serde_json::Value>, name: &str| entries.iter().find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name).unwrap()["digest"].as_str().unwrap().to_owned();
    let beta = digest_of(entries, "beta:1.0.0");
    let mut alpha_sig = entries.iter().find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().starts_with("alpha:sha256-")).unwrap().clone();
    alpha_sig["annotations"]["org.opencontainers.image.ref.name"] = format!("beta:sha256-{}.sig", beta.trim_start_matches("sha256:")).into();
    entries.push(alpha_sig);
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let err = env.fails(&["pack", "verify", &format!("{store}:beta:1.0.0"), "--key", &public]);
    assert!(err.contains("signature is for manifest"), "{err}");
}

#[test]
fn key_errors_are_clear() {
    let env = Env::new();
    let (key, public) = env.keys("cosign");
    let pack = env.pack("keyerr", "1.0.0");
    let store = format!("oci:{}", env.path().join("layout").display());

    let out = env.aibox().env("COSIGN_PASSWORD", "not-the-password").args(["pack", "publish", pack.to_str().unwrap(), "--to", &store, "--key", &key]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong password") && err.contains("COSIGN_PASSWORD"), "{err}");
    assert!(!env.path().join("layout").exists(), "a failed publish wrote to the store");

    let not_a_key = env.path().join("notakey.key");
    std::fs::write(&not_a_key, "hello\n").unwrap();
    let err = env.fails(&["pack", "publish", pack.to_str().unwrap(), "--to", &store, "--key", not_a_key.to_str().unwrap()]);
    assert!(err.contains("not a Cosign private key"), "{err}");

    let err = env.fails(&["pack", "publish", pack.to_str().unwrap(), "--to", &store, "--key", &public]);
    assert!(err.contains("public key"), "{err}");

    let err = env.fails(&["pack", "verify", &format!("{store}:keyerr:1.0.0"), "--key", &key]);
    assert!(err.contains("private key"), "{err}");

    // No password and no terminal: refuse with what to set.
    let out = env.aibox().env_remove("COSIGN_PASSWORD").args(["key", "generate", "--output-key-prefix", "x"]).stdin(std::process::Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("COSIGN_PASSWORD"));
    // Existing keys are not overwritten.
    let err = env.fails(&["key", "generate", "--output-key-prefix", env.path().join("cosign").to_str().unwrap()]);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn lint_reports_file_line_and_column() {
    let env = Env::new();
    let dir = env.path().join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pack.yaml"), "name: bad\nversion: 1.0.0\ndescription: x\nmaintainer: y\nnetwrk:\n  endpoints: []\n").unwrap();
    let err = env.fails(&["pack", "lint", dir.to_str().unwrap()]);
    assert!(err.contains("pack.yaml:5:1"), "{err}");
    assert!(err.contains("netwrk"), "{err}");

    std::fs::write(dir.join("pack.yaml"), "name: Bad_Name\nversion: 1.0.0\ndescription: x\nmaintainer: y\n").unwrap();
    let err = env.fails(&["pack", "lint", dir.to_str().unwrap()]);
    assert!(err.contains("pack.yaml:1:") && err.contains("Bad_Name"), "{err}");

    std::fs::write(dir.join("pack.yaml"), "name: ok\nversion: one\ndescription: x\nmaintainer: y\n").unwrap();
    let err = env.fails(&["pack", "lint", dir.to_str().unwrap()]);
    assert!(err.contains("pack.yaml:2:") && err.contains("semantic version"), "{err}");

    std::fs::write(dir.join("pack.yaml"), "name: ok\nversion: 1.0.0\ndescription: x\n").unwrap();
    let err = env.fails(&["pack", "lint", dir.to_str().unwrap()]);
    assert!(err.contains("maintainer"), "{err}");

    std::fs::write(dir.join("pack.yaml"), "name: ok\nversion: 1.0.0\ndescription: x\nmaintainer: y\nnetwork:\n  endpoints: [\"nexus.internal\"]\n").unwrap();
    let err = env.fails(&["pack", "lint", dir.to_str().unwrap()]);
    assert!(err.contains("host:port"), "{err}");

    let err = env.fails(&["pack", "lint", env.path().join("missing").to_str().unwrap()]);
    assert!(err.contains("cannot read") && err.contains("pack.yaml"), "{err}");

    // The sample pack and its JSON output.
    let out = json(&env.ok(&["--json", "pack", "lint", workspace().join("packs/hello/1").to_str().unwrap()]));
    assert_eq!(out["packs"][0]["ok"], true);
}

#[test]
fn escaping_symlink_in_root_is_refused_and_nothing_written() {
    let env = Env::new();
    let pack = env.pack("escape", "1.0.0");
    std::os::unix::fs::symlink("../../../../etc/passwd", pack.join("root/bin/passwd")).unwrap();
    let layout = env.path().join("layout");
    let err = env.fails(&["pack", "build", pack.to_str().unwrap(), "-o", &format!("oci:{}", layout.display())]);
    assert!(err.contains("bin/passwd") && err.contains("outside the pack root"), "{err}");
    assert!(!layout.exists());
    // A symlink that stays inside is fine.
    std::fs::remove_file(pack.join("root/bin/passwd")).unwrap();
    std::os::unix::fs::symlink("escape", pack.join("root/bin/alias")).unwrap();
    env.ok(&["pack", "build", pack.to_str().unwrap(), "-o", &format!("oci:{}", layout.display())]);
}

#[test]
fn store_errors_are_clear() {
    let env = Env::new();
    let pack = env.pack("storeerr", "1.0.0");
    let err = env.fails(&["pack", "publish", pack.to_str().unwrap(), "--to", "s3://bucket/packs"]);
    assert!(err.contains("unknown store `s3://bucket/packs`") && err.contains("docker://"), "{err}");

    let port = aibox_test_harness::free_port();
    let err = env.fails(&["pack", "publish", pack.to_str().unwrap(), "--to", &format!("docker://127.0.0.1:{port}/toolpacks")]);
    assert!(err.contains(&format!("cannot reach registry 127.0.0.1:{port}")), "{err}");

    let err = env.fails(&["pack", "inspect", &format!("{}/nothing-here:1.0.0", REGISTRY.store("toolpacks"))]);
    assert!(err.contains("not found"), "{err}");

    // Publishing a different build under an existing version is refused.
    let store = REGISTRY.store("immutable");
    env.ok(&["pack", "publish", pack.to_str().unwrap(), "--to", &store]);
    std::fs::write(pack.join("root/extra"), "changed").unwrap();
    let err = env.fails(&["pack", "publish", pack.to_str().unwrap(), "--to", &store]);
    assert!(err.contains("already published"), "{err}");
    env.ok(&["pack", "publish", pack.to_str().unwrap(), "--to", &store, "--force"]);

    // Usage errors exit 2.
    let out = env.aibox().args(["pack", "publish"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

fn sha256_hex(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
}
